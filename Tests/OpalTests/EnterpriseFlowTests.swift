import Foundation
import Keys
import Opal
import SecurityTransport
import SedSimulator
import SimulatorTestSupport
import TCGStorage
import Testing

/// An Enterprise SSC drive (sedsim's, as the Enterprise SSC 1.01 has it) driven through the
/// family layer: sessions authenticated by the Authenticate method, columns by name, bands and
/// BandMasters, Erase by the EraseMaster, Revert by SID or PSID.
@Suite("Enterprise SSC drives")
struct EnterpriseFlowTests {
    static func enterpriseArray(drives: Int = 1) throws -> ArrayFixture {
        var settings = DriveSettings()
        settings.ssc = .enterprise
        return try ArrayFixture(drives: drives, settings: settings)
    }

    /// A drive owned with `pin` (SID, BandMaster0 and the EraseMaster) and Band0 locking on power loss.
    static func ownedWithBand0Locking(pin: Secret) throws -> (ArrayFixture, OpalDrive) {
        let fixture = try enterpriseArray()
        let opal = try OpalDrive(transport: fixture.transport(), timeout: 5)
        try opal.takeOwnership(newSIDPIN: pin)
        try opal.activateLockingSP(sidPIN: pin)
        try opal.configureRange(0, start: nil, length: nil, readLockEnabled: true, writeLockEnabled: true,
                                lockOnReset: [.powerCycle], adminPIN: pin)
        return (fixture, opal)
    }

    @Test("factory state: the Enterprise feature, the Locking SP always active, every master holding the MSID")
    func factoryState() throws {
        let fixture = try Self.enterpriseArray()
        let discovery = try OpalDrive.readDiscovery(fixture.transport())
        #expect(discovery.subsystemClasses.map(\.kind) == [.enterprise] && discovery.opal == nil)
        #expect(discovery.locking?.lockingEnabled == true && discovery.locking?.mediaEncryption == true)
        let drive = try OpalDrive(transport: fixture.transport(), timeout: 5)
        #expect(drive.family == .enterprise)
        #expect(try drive.lockingSPLifeCycle() == .manufactured)
        // Properties with HostProperties named by its name, as the Enterprise SSC has it.
        #expect(try drive.exchangeProperties()["MaxComPacketSize"] == 65536)
        let msid = try drive.readMSID()
        try drive.verifyPIN(.admin(1), pin: msid)
        try drive.verifyPIN(.user(1), pin: msid)
        try drive.verifyPIN(.sid, pin: msid)
    }

    @Test("take ownership, configure and lock Band0 as BandMaster0, power cycle: locked; unlock: the data back, ciphertext on the media")
    func lockCycle() throws {
        let pin = secret("enterprise-pin")
        let (fixture, opal) = try Self.ownedWithBand0Locking(pin: pin)
        let drive = fixture.array.drives[0]
        try drive.write(lba: 10, data: sample)
        try drive.powerCycle()
        #expect(throws: SimulatedDrive.MediaError.dataProtect(range: 0)) { try drive.read(lba: 10, count: 1) }
        #expect(try OpalDrive.readDiscovery(fixture.transport()).locking?.locked == true)
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        #expect(try drive.read(lba: 10, count: 1) == sample)
        let media = try Data(contentsOf: drive.directory.appendingPathComponent("media.img"))
        #expect(media.range(of: Data("the quick brown fox".utf8)) == nil)
        let bands = try opal.readRanges(adminPIN: pin)
        #expect(bands.first?.readLockEnabled == true && bands.first?.isLocked == false && bands.count == 9)
        try opal.setLocked(true, range: 0, as: .admin(1), pin: pin)
        #expect(throws: SimulatedDrive.MediaError.dataProtect(range: 0)) { try drive.read(lba: 10, count: 1) }
    }

    @Test("a wrong PIN is Authenticate → False, counted as a try; the EraseMaster's PIN cannot be set by BandMaster0, and nothing is sent")
    func triesAndAccess() throws {
        let fixture = try Self.enterpriseArray()
        let pin = secret("enterprise-pin")
        let opal = try OpalDrive(transport: fixture.transport(), timeout: 5)
        try opal.takeOwnership(newSIDPIN: pin)
        try opal.activateLockingSP(sidPIN: pin)
        #expect { try opal.verifyPIN(.admin(1), pin: secret("wrong")) } throws: { ($0 as? OpalError)?.code == .notAuthorized }
        let tries = try opal.readTries(as: .admin(1), pin: pin)
        #expect(tries.map(\.authority) == ["BandMaster0", "EraseMaster"], "\(tries)")
        // The successful authentication that read them reset BandMaster0's count.
        #expect(fixture.array.drives[0].statusReport(index: 0).totalFailedAuthentications == 1)
        let before = fixture.array.drives[0].statusReport(index: 0).totalFailedAuthentications
        #expect { try opal.setPIN(of: .user(1), newPIN: secret("x"), authorizer: .admin(1), authorizerPIN: pin) } throws: {
            ($0 as? OpalError)?.message.contains("changes only its own PIN") == true
        }
        #expect(fixture.array.drives[0].statusReport(index: 0).totalFailedAuthentications == before)
        // Opal's Get is not an Enterprise method.
        #expect { try opal.withSession(.enterpriseLockingSP) { s throws(OpalError) in
            _ = try s.call(.lockingGlobalRange, MethodID.get, [.list([])], operation: "opal get")
        } } throws: { _ in true }
    }

    @Test("Erase by the EraseMaster: the band's data gone, its lock configuration and BandMaster0's PIN put back; PSID revert: factory state with the MSID")
    func eraseAndRevert() throws {
        let pin = secret("enterprise-pin")
        let (fixture, opal) = try Self.ownedWithBand0Locking(pin: pin)
        let drive = fixture.array.drives[0]
        try drive.write(lba: 3, data: sample)
        #expect { try opal.eraseRange(0, adminPIN: pin) } throws: { ($0 as? OpalError)?.message.contains("EraseMaster") == true }
        try opal.eraseRange(0, adminPIN: pin, erasePIN: pin)
        #expect(try drive.read(lba: 3, count: 1) != sample)
        try opal.verifyPIN(.admin(1), pin: pin)
        #expect(try opal.readRanges(adminPIN: pin).first?.readLockEnabled == true)
        #expect(drive.statusReport(index: 0).ranges[0].keyGeneration == 2)
        // Only Opal has RevertSP and a shadow MBR: refused before anything is sent.
        #expect { try opal.revertKeepingGlobalRange(sidPIN: pin, adminPIN: pin) } throws: { ($0 as? OpalError)?.code == .unsupportedDrive }
        try opal.revert(as: .psid, pin: secret(drive.identity.psid))
        let fresh = try OpalDrive(transport: fixture.transport(), timeout: 5)
        let msid = try fresh.readMSID()
        try fresh.verifyPIN(.sid, pin: msid)
        try fresh.verifyPIN(.admin(1), pin: msid)
        #expect(!drive.statusReport(index: 0).owned)
    }
}
