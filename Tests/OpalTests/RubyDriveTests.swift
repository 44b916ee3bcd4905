import Keys
import Opal
import SedSimulator
import SimulatorTestSupport
import TCGStorage
import Testing

/// A drive that reports the Ruby SSC (feature 0x0304) instead of Opal 2: an Opal-family drive to
/// sedlock, taken over and locked the Opal way.
@Suite("Ruby SSC drives")
struct RubyDriveTests {
    @Test("discovery names Ruby (not Opal 2); the drive is driven as Opal: ownership, activation, a locking range that locks at power cycle and opens with Admin1")
    func rubyIsOpalFamily() throws {
        var settings = DriveSettings()
        settings.ssc = .ruby
        let fixture = try ArrayFixture(drives: 1, settings: settings)
        let discovery = try OpalDrive.readDiscovery(fixture.transport())
        #expect(discovery.subsystemClasses.map(\.kind) == [.ruby], "\(discovery.subsystemClasses)")
        let drive = try OpalDrive(transport: fixture.transport(), timeout: 5)
        #expect(drive.family == .opal && drive.encryptsMedia)
        let pin = Secret(Array("ruby-owner-pin".utf8))
        try drive.takeOwnership(newSIDPIN: pin)
        try drive.activateLockingSP(sidPIN: pin)
        try drive.configureRange(0, start: nil, length: nil, readLockEnabled: true, writeLockEnabled: true,
                                 lockOnReset: [.powerCycle], adminPIN: pin)
        try fixture.array.drives[0].powerCycle()
        #expect((try? fixture.array.drives[0].read(lba: 0, count: 1)) == nil, "locked after the power cycle")
        try drive.setLocked(false, range: 0, as: .admin(1), pin: pin)
        #expect((try? fixture.array.drives[0].read(lba: 0, count: 1)) != nil)
    }
}
