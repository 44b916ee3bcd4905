import Foundation
import Keys
import Opal
import Platform
import SecurityTransport
import SedSimulator
import TCGStorage
import SimulatorTestSupport
import Testing

func secret(_ text: String) -> Secret { Secret(Array(text.utf8)) }

/// Takes ownership and enables global-range locking; returns the opened drive.
func ownedDrive(_ fixture: ArrayFixture, pin: Secret, timeout: Double = 5) throws -> OpalDrive {
    let opal = try OpalDrive(transport: fixture.transport(), timeout: timeout)
    _ = try opal.exchangeProperties()
    try opal.takeOwnership(newSIDPIN: pin)
    try opal.activateLockingSP(sidPIN: pin)
    try opal.configureRange(0, start: nil, length: nil, readLockEnabled: true, writeLockEnabled: true,
                            lockOnReset: [.powerCycle], adminPIN: pin)
    return opal
}

let sample = Array("the quick brown fox jumps over the lazy dog".utf8) + [UInt8](repeating: 0x5A, count: 512 - 43)

@Suite("Opal operations against a simulated drive")
struct OpalFlowTests {
    @Test("take ownership, lock, power-cycle: data unreadable; unlock: data back")
    func lockCycle() throws {
        let fixture = try ArrayFixture()
        let pin = secret("array-pin-1")
        let opal = try ownedDrive(fixture, pin: pin)
        let drive = fixture.array.drives[0]
        try drive.write(lba: 10, data: sample)
        try opal.setLocked(true, range: 0, as: .admin(1), pin: pin)
        #expect(throws: SimulatedDrive.MediaError.dataProtect(range: 0)) { try drive.read(lba: 10, count: 1) }
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        try drive.powerCycle()
        #expect(throws: SimulatedDrive.MediaError.dataProtect(range: 0)) { try drive.read(lba: 10, count: 1) }
        #expect(try OpalDrive.readDiscovery(fixture.transport()).locking?.locked == true)
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        #expect(try drive.read(lba: 10, count: 1) == sample)
        // The on-disk media holds ciphertext only.
        let media = try Data(contentsOf: drive.directory.appendingPathComponent("media.img"))
        #expect(media.range(of: Data("the quick brown fox".utf8)) == nil)
        let ranges = try opal.readRanges(adminPIN: pin)
        #expect(ranges.first?.readLockEnabled == true && ranges.first?.isLocked == false)
    }

    @Test("state survives restarting the simulator; unlocked ranges relock on the restart's power-on")
    func persistence() throws {
        let fixture = try ArrayFixture()
        let pin = secret("persist-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        try fixture.array.drives[0].write(lba: 0, data: sample)
        let again = try fixture.reopened()
        #expect(throws: SimulatedDrive.MediaError.dataProtect(range: 0)) { try again.drives[0].read(lba: 0, count: 1) }
        let reopened = try OpalDrive(transport: InProcessTransport(again.drives[0]), timeout: 5)
        try reopened.setLocked(false, range: 0, as: .admin(1), pin: pin)
        #expect(try again.drives[0].read(lba: 0, count: 1) == sample)
    }

    @Test("wrong PINs lock the authority out; the status follows the drive's setting; power cycle resets Tries",
          arguments: [LockoutStatus.notAuthorized, LockoutStatus.lockedOut])
    func lockout(status: LockoutStatus) throws {
        var settings = DriveSettings()
        settings.tryLimit = 3
        settings.lockoutStatus = status
        let fixture = try ArrayFixture(settings: settings)
        let pin = secret("good-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        for _ in 0..<3 {
            #expect { try opal.setLocked(false, range: 0, as: .admin(1), pin: secret("bad")) } throws: {
                ($0 as? OpalError)?.code == .notAuthorized
            }
        }
        let tries = fixture.array.drives[0].statusReport(index: 0).tries.first { $0.authority == "Admin1" }
        #expect(tries?.tries == 3 && tries?.lockedOut == true)
        // Now even the right PIN is refused, with the drive's configured status.
        let expected: OpalError.Code = status == .lockedOut ? .authorityLockedOut : .notAuthorized
        #expect { try opal.setLocked(false, range: 0, as: .admin(1), pin: pin) } throws: { ($0 as? OpalError)?.code == expected }
        try fixture.array.drives[0].powerCycle()
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        let after = try opal.readTries(as: .admin(1), pin: pin)
        #expect(after.first { $0.authority == "Admin1" }?.tries == 0)
        #expect(after.first { $0.authority == "Admin1" }?.tryLimit == 3)
    }

    @Test("the lifetime failure limit erases the drive and refuses authentication for good")
    func lifetimeLimit() throws {
        var settings = DriveSettings()
        settings.tryLimit = 0
        settings.lifetimeFailureLimit = 4
        let fixture = try ArrayFixture(settings: settings)
        let pin = secret("life-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        let drive = fixture.array.drives[0]
        try drive.write(lba: 3, data: sample)
        for _ in 0..<4 { #expect(throws: OpalError.self) { try opal.setLocked(false, range: 0, as: .admin(1), pin: secret("x")) } }
        let report = drive.statusReport(index: 0)
        #expect(report.erasedItself && report.consecutiveFailedAuthentications == 4)
        #expect(throws: OpalError.self) { try opal.setLocked(false, range: 0, as: .admin(1), pin: pin) }
        #expect(throws: OpalError.self) { try opal.readTries(as: .sid, pin: pin) }
    }

    @Test("crypto-erase makes old data unreadable")
    func cryptoErase() throws {
        let fixture = try ArrayFixture()
        let pin = secret("erase-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        let drive = fixture.array.drives[0]
        try drive.write(lba: 7, data: sample)
        #expect(try drive.read(lba: 7, count: 1) == sample)
        try opal.eraseRange(0, adminPIN: pin)
        let after = try drive.read(lba: 7, count: 1)
        #expect(after != sample && after.count == 512)
        #expect(drive.statusReport(index: 0).ranges[0].keyGeneration == 2)
    }

    @Test("PSID revert restores factory state and destroys data")
    func psidRevert() throws {
        let fixture = try ArrayFixture()
        let pin = secret("psid-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        let drive = fixture.array.drives[0]
        try drive.write(lba: 1, data: sample)
        let psid = drive.statusReport(index: 0).psid
        #expect(throws: OpalError.self) { try opal.revert(as: .psid, pin: secret("WRONGPSID")) }
        try opal.revert(as: .psid, pin: secret(psid))
        let report = drive.statusReport(index: 0)
        #expect(!report.owned && report.lockingSP == "Manufactured-Inactive")
        #expect(try drive.read(lba: 1, count: 1) != sample)
        // Factory again: ownership can be taken with the MSID.
        let fresh = try OpalDrive(transport: fixture.transport(), timeout: 5)
        #expect(fresh.discovery.blockSID?.sidValueState == false)
        try fresh.takeOwnership(newSIDPIN: secret("second-owner"))
    }

    @Test("Block SID's SID Value State follows the SID PIN: 1 while it differs from the MSID, 0 once it is set back")
    func sidValueStateFollowsThePIN() throws {
        let fixture = try ArrayFixture()
        let opal = try OpalDrive(transport: fixture.transport(), timeout: 5)
        let msid = try opal.readMSID()
        try opal.takeOwnership(newSIDPIN: secret("owner-pin"))
        #expect(try OpalDrive.readDiscovery(fixture.transport()).blockSID?.sidValueState == true)
        #expect(fixture.array.drives[0].statusReport(index: 0).owned)
        // Given up (TCGstorageAPI's giveupownership): SID is the MSID again.
        try opal.setPIN(of: .sid, newPIN: msid, authorizer: .sid, authorizerPIN: secret("owner-pin"))
        #expect(try OpalDrive.readDiscovery(fixture.transport()).blockSID?.sidValueState == false)
        #expect(!fixture.array.drives[0].statusReport(index: 0).owned)
        try opal.takeOwnership(newSIDPIN: secret("owner-again"))
    }

    @Test("RevertSP keeps the global range's data only when it is not read- and write-locked")
    func revertSPKeepData() throws {
        let fixture = try ArrayFixture()
        let pin = secret("keep-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        let drive = fixture.array.drives[0]
        // Locked for read and write: KeepGlobalRangeKey must fail with no state change.
        try opal.setLocked(true, range: 0, as: .admin(1), pin: pin)
        #expect { try opal.revertLockingSP(adminPIN: pin, keepGlobalRangeKey: true) } throws: {
            ($0 as? OpalError)?.code == .methodFailed(.fail)
        }
        #expect(drive.statusReport(index: 0).lockingSP == "Manufactured")
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        try drive.write(lba: 2, data: sample)
        try opal.revertLockingSP(adminPIN: pin, keepGlobalRangeKey: true)
        #expect(drive.statusReport(index: 0).lockingSP == "Manufactured-Inactive")
        #expect(try drive.read(lba: 2, count: 1) == sample)
        // Then a SID revert of a drive whose Locking SP is inactive keeps the data too.
        try opal.revert(as: .sid, pin: pin)
        #expect(try drive.read(lba: 2, count: 1) == sample)
        #expect(!drive.statusReport(index: 0).owned)
    }

    @Test("revert keeping data proves the SID PIN before reverting the Locking SP: a wrong SID PIN changes nothing")
    func revertKeepingDataProvesSIDFirst() throws {
        let fixture = try ArrayFixture()
        let pin = secret("keep-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        let drive = fixture.array.drives[0]
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        try drive.write(lba: 2, data: sample)
        #expect { try opal.revertKeepingGlobalRange(sidPIN: secret("WRONG"), adminPIN: pin) } throws: {
            ($0 as? OpalError)?.code == .notAuthorized
        }
        // Before the fix the Locking SP was already reverted here (locking off, other ranges gone).
        #expect(drive.statusReport(index: 0).lockingSP == "Manufactured")
        #expect(drive.statusReport(index: 0).owned)
        #expect { try opal.revertKeepingGlobalRange(sidPIN: pin, adminPIN: secret("WRONG-ADMIN")) } throws: {
            ($0 as? OpalError)?.code == .notAuthorized
        }
        #expect(drive.statusReport(index: 0).lockingSP == "Manufactured")
        try opal.revertKeepingGlobalRange(sidPIN: pin, adminPIN: pin)
        #expect(drive.statusReport(index: 0).lockingSP == "Manufactured-Inactive")
        #expect(!drive.statusReport(index: 0).owned)
        #expect(try drive.read(lba: 2, count: 1) == sample)
    }

    @Test("taking ownership of an owned drive is refused before any authentication (no SID try spent)")
    func takeOwnershipRefusesOwnedDrive() throws {
        let fixture = try ArrayFixture()
        let pin = secret("owner-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        let drive = fixture.array.drives[0]
        let failuresBefore = drive.statusReport(index: 0).consecutiveFailedAuthentications
        let sidTriesBefore = drive.statusReport(index: 0).tries.first { $0.authority == "SID" }?.tries
        #expect { try opal.takeOwnership(newSIDPIN: secret("another")) } throws: {
            ($0 as? OpalError)?.code == .invalidState && "\($0)".contains("already owned")
        }
        #expect(drive.statusReport(index: 0).consecutiveFailedAuthentications == failuresBefore)
        #expect(drive.statusReport(index: 0).tries.first { $0.authority == "SID" }?.tries == sidTriesBefore)
        try opal.verifyPIN(.sid, pin: pin)
    }

    @Test("MBR shadow: reads below the MBR size come from the MBR table while enabled and not done")
    func mbrShadow() throws {
        let fixture = try ArrayFixture()
        let pin = secret("mbr-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        let drive = fixture.array.drives[0]
        try drive.write(lba: 0, data: sample)
        let image = [UInt8](repeating: 0xEB, count: 3000)
        try opal.loadMBR(image: image, adminPIN: pin)
        try opal.setMBR(enable: true, adminPIN: pin)
        let shadow = try drive.read(lba: 0, count: 6)
        #expect(Array(shadow.prefix(3000)) == image && shadow[3000] == 0)
        #expect(throws: SimulatedDrive.MediaError.self) { try drive.write(lba: 0, data: sample) }
        try opal.setMBR(done: true, adminPIN: pin)
        #expect(try drive.read(lba: 0, count: 1) == sample)
        // DoneOnReset = power cycle: the shadow is back after a power cycle.
        try drive.powerCycle()
        #expect(try OpalDrive.readDiscovery(fixture.transport()).locking?.mbrDone == false)
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        #expect(try drive.read(lba: 0, count: 1) == Array(image.prefix(512)))
    }

    @Test("an MBR image larger than the drive's shadow MBR (the Table table's Rows) is refused before a byte is written")
    func mbrImageTooLarge() throws {
        var settings = DriveSettings()
        settings.mbrTableSize = 64 << 10
        let fixture = try ArrayFixture(settings: settings)
        let pin = secret("mbr-size")
        let opal = try ownedDrive(fixture, pin: pin)
        #expect {
            try opal.loadMBR(image: [UInt8](repeating: 0xEB, count: (64 << 10) + 1), adminPIN: pin)
        } throws: { ($0 as? OpalError)?.code == .doesNotFit && "\($0)".contains("holds 65536") }
        try opal.setMBR(enable: true, adminPIN: pin)
        #expect(try fixture.array.drives[0].read(lba: 0, count: 1) == [UInt8](repeating: 0, count: 512), "nothing was written")
        try opal.loadMBR(image: [UInt8](repeating: 0xEB, count: 64 << 10), adminPIN: pin)
        #expect(try fixture.array.drives[0].read(lba: 0, count: 1) == [UInt8](repeating: 0xEB, count: 512))
    }

    @Test("Block SID refuses SID authentication until the next power cycle")
    func blockSID() throws {
        let fixture = try ArrayFixture()
        let pin = secret("bsid-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        let transport = fixture.transport()
        try transport.securityProtocolOut(protocolID: 0x02, spSpecific: 0x0005, payload: [0] + [UInt8](repeating: 0, count: 511))
        #expect(try OpalDrive.readDiscovery(transport).blockSID?.sidAuthenticationBlocked == true)
        #expect { try opal.readTries(as: .sid, pin: pin) } throws: { ($0 as? OpalError)?.code == .notAuthorized }
        // Blocked attempts do not count as tries.
        #expect(fixture.array.drives[0].statusReport(index: 0).tries.first { $0.authority == "SID" }?.tries == 0)
        try fixture.array.drives[0].hardwareReset()
        #expect(throws: OpalError.self) { try opal.readTries(as: .sid, pin: pin) }
        try fixture.array.drives[0].powerCycle()
        #expect(try opal.readTries(as: .sid, pin: pin).first?.tries == 0)
    }

    @Test("a second read-write session on the same SP gets SP_BUSY once the wait for it runs out")
    func spBusy() throws {
        let fixture = try ArrayFixture()
        let pin = secret("busy-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        let time = ManualTime()
        let other = try OpalDrive(transport: fixture.transport(), timeout: 5, time: time)
        try opal.withSession(.lockingSP, as: .lockingAdmin(1), credential: pin, write: true) { _ throws(OpalError) in
            #expect { try other.setLocked(true, range: 0, as: .admin(1), pin: pin) } throws: { ($0 as? OpalError)?.code == .spBusy }
            #expect(time.uptimeNanoseconds >= 5_000_000_000)  // it waited the command timeout (on the manual clock)
        }
        try other.setLocked(true, range: 0, as: .admin(1), pin: pin)
    }

    @Test("users lock and unlock only the ranges granted to them")
    func userACL() throws {
        let fixture = try ArrayFixture()
        let pin = secret("admin-pin")
        let userPIN = secret("user-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        try opal.configureRange(1, start: 2048, length: 2048, readLockEnabled: true, writeLockEnabled: true,
                                lockOnReset: [.powerCycle], adminPIN: pin)
        try opal.setPIN(of: .user(1), newPIN: userPIN, authorizer: .admin(1), authorizerPIN: pin)
        #expect { try opal.setLocked(true, range: 1, as: .user(1), pin: userPIN) } throws: { ($0 as? OpalError)?.code == .notAuthorized }
        try opal.grantRangeControl(range: 1, to: .user(1), adminPIN: pin)
        try opal.setLocked(true, range: 1, as: .user(1), pin: userPIN)
        try opal.setLocked(false, range: 1, as: .user(1), pin: userPIN)
        #expect { try opal.setLocked(false, range: 0, as: .user(1), pin: userPIN) } throws: { ($0 as? OpalError)?.code == .notAuthorized }
        // Users cannot read the Locking table or change another's PIN.
        #expect(throws: OpalError.self) { try opal.setPIN(of: .user(2), newPIN: userPIN, authorizer: .user(1), authorizerPIN: userPIN) }
        // A user may change its own PIN.
        try opal.setPIN(of: .user(1), newPIN: secret("user-pin-2"), authorizer: .user(1), authorizerPIN: userPIN)
        try opal.setLocked(true, range: 1, as: .user(1), pin: secret("user-pin-2"))
    }

    @Test("overlapping ranges and bad columns are refused")
    func rangeValidation() throws {
        let fixture = try ArrayFixture()
        let pin = secret("range-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        try opal.configureRange(1, start: 0, length: 1000, readLockEnabled: true, writeLockEnabled: true,
                                lockOnReset: [.powerCycle], adminPIN: pin)
        #expect { try opal.configureRange(2, start: 500, length: 1000, readLockEnabled: true, writeLockEnabled: true,
                                          lockOnReset: [.powerCycle], adminPIN: pin) }
            throws: { ($0 as? OpalError)?.code == .methodFailed(.invalidParameter) }
        #expect(throws: OpalError.self) {
            try opal.configureRange(3, start: 1 << 40, length: 8, readLockEnabled: true, writeLockEnabled: true,
                                    lockOnReset: [.powerCycle], adminPIN: pin)
        }
    }
}

@Suite("Drive vendor variations")
struct VendorVariationTests {
    @Test("with C_PIN Persistence, a lockout survives power cycles; without it, a power cycle clears it")
    func persistentTries() throws {
        var settings = DriveSettings()
        settings.tryLimit = 2
        settings.triesPersistent = true
        let fixture = try ArrayFixture(settings: settings)
        let pin = secret("persistent-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        for _ in 0..<2 { #expect(throws: OpalError.self) { try opal.setLocked(false, range: 0, as: .admin(1), pin: secret("no")) } }
        try fixture.array.drives[0].powerCycle()
        #expect(throws: OpalError.self) { try opal.setLocked(false, range: 0, as: .admin(1), pin: pin) }
        let reopened = try fixture.reopened()
        #expect(reopened.drives[0].statusReport(index: 0).tries.first { $0.authority == "Admin1" }?.lockedOut == true)
    }

    @Test("a host packet for a session the drive aborted gets CloseSession")
    func closeSession() throws {
        var settings = DriveSettings()
        settings.sessionTimeoutSeconds = 1
        let fixture = try ArrayFixture(settings: settings)
        let pin = secret("close-pin")
        let opal = try ownedDrive(fixture, pin: pin)
        #expect {
            try opal.withSession(.lockingSP, as: .lockingAdmin(1), credential: pin, write: true) { s throws(OpalError) in
                Thread.sleep(forTimeInterval: 1.2)
                _ = try s.get(.lockingGlobalRange, columns: 3...4, operation: "read after timeout")
            }
        } throws: { ($0 as? OpalError)?.code == .invalidState && "\($0)".contains("CloseSession") }
    }
}
