import Keys
import Opal
import SedSimulator
import SimulatorTestSupport
import TCGStorage
import Testing

/// A drive that reports the Opalite SSC (feature 0x0301): Opal's tables with the global range
/// alone and neither Single User Mode nor a DataStore — all sedlock needs, so it is driven as Opal.
@Suite("Opalite SSC drives")
struct OpaliteDriveTests {
    @Test("discovery names Opalite (Pyrite-layout descriptor; no Geometry, Single User Mode or DataStore descriptor); the drive is driven as Opal: ownership, activation, the global range locking at power cycle and opening with Admin1; range 1 does not exist")
    func opaliteIsOpalFamily() throws {
        var settings = DriveSettings()
        settings.ssc = .opalite
        let fixture = try ArrayFixture(drives: 1, settings: settings)
        let discovery = try OpalDrive.readDiscovery(fixture.transport())
        #expect(discovery.subsystemClasses.map(\.kind) == [.opalite], "\(discovery.subsystemClasses)")
        #expect(discovery.features.allSatisfy {
            switch $0 { case .singleUser, .dataStore, .geometry: false; default: true }
        }, "Opalite's Level 0: TPer, Locking, its own descriptor (and Block SID's)")
        let drive = try OpalDrive(transport: fixture.transport(), timeout: 5)
        #expect(drive.family == .opal && drive.encryptsMedia && drive.opal.kind == .opalite)
        let pin = Secret(Array("opalite-owner-pin".utf8))
        try drive.takeOwnership(newSIDPIN: pin)
        try drive.activateLockingSP(sidPIN: pin)
        try drive.configureRange(0, start: nil, length: nil, readLockEnabled: true, writeLockEnabled: true,
                                 lockOnReset: [.powerCycle], adminPIN: pin)
        #expect(throws: OpalError.self) {
            try drive.configureRange(1, start: 0, length: 1024, readLockEnabled: true, writeLockEnabled: true,
                                     lockOnReset: [.powerCycle], adminPIN: pin)
        }
        // Admin1, User1 and User2 alone: an Admin2 or User3 does not exist.
        #expect(throws: OpalError.self) { try drive.setPIN(of: .admin(2), newPIN: Secret(Array("x".utf8)), authorizer: .admin(1), authorizerPIN: pin) }
        #expect(throws: OpalError.self) { try drive.setPIN(of: .user(3), newPIN: Secret(Array("x".utf8)), authorizer: .admin(1), authorizerPIN: pin) }
        try drive.setPIN(of: .user(2), newPIN: Secret(Array("user-two".utf8)), authorizer: .admin(1), authorizerPIN: pin)
        try fixture.array.drives[0].powerCycle()
        #expect((try? fixture.array.drives[0].read(lba: 0, count: 1)) == nil, "locked after the power cycle")
        try drive.setLocked(false, range: 0, as: .admin(1), pin: pin)
        #expect((try? fixture.array.drives[0].read(lba: 0, count: 1)) != nil)
    }
}
