import ControlAPI
import Foundation
import Keys
import LockManager
import LockState
import Opal
import SedSimulator
import SimulatorTestSupport
import TestSupport
import Testing

@Suite("Lock manager: setup, unlock, lock, guards")
struct LockManagerTests {
    @Test("setup owns and configures every drive; a power cycle locks them; unlock opens them with one attempt each",
          arguments: ArrayMix.allCases)
    func setupUnlockLock(mix: ArrayMix) async throws {
        let f = try LockManagerFixture(drives: 4, subsystemClasses: mix.subsystemClasses)
        let setup = try await f.setUpArray()
        #expect(setup.allSucceeded, "\(setup)")
        for n in 0..<4 {
            #expect(f.drive(n).statusReport(index: n).owned)
            #expect(f.drive(n).statusReport(index: n).lockingSP == "Manufactured")
            #expect(f.driveFailures(n).consecutive == 0)
        }
        let keyFile = try f.keyFile()
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int
        #expect(mode == 0o400)

        try f.reboot()
        #expect((0..<4).allSatisfy { f.isLocked($0) })
        let unlock = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(unlock.allSucceeded, "\(unlock)")
        #expect(unlock.drives.map(\.attempts) == [1, 1, 1, 1])
        #expect((0..<4).allSatisfy { !f.isLocked($0) })

        let again = try await f.manager.unlock(UnlockRequest(drives: .all))
        #expect(again.allSucceeded && again.drives.allSatisfy { $0.attempts == 0 })  // already unlocked: nothing spent

        let lock = try await f.manager.lock(LockRequest(drives: .some([f.addresses[1]])))
        #expect(lock.allSucceeded && f.isLocked(1) && !f.isLocked(0))

        let status = try await f.manager.status()
        #expect(status.drives.map(\.locked) == [false, true, false, false])
        let names: [SimulatedSSC: String] = [.opal: "Opal v2", .enterprise: "Enterprise", .ruby: "Ruby", .opalite: "Opalite"]
        #expect(status.drives.map(\.family) == (0..<4).map { names[mix.subsystemClasses[$0 % mix.subsystemClasses.count]] })
        #expect(status.generations.map(\.state) == ["active"] && status.generations.first?.tag == "array-test")
        #expect(status.drives.allSatisfy { $0.tryLimit != nil && $0.failedAuthentications == 0 })

        // The state never holds a PIN or the AK.
        let database = try Data(contentsOf: URL(fileURLWithPath: f.root + "/state/state.sqlite"))
        let ak = try String(contentsOfFile: keyFile, encoding: .utf8).split(separator: " ")[3].trimmingCharacters(in: .whitespacesAndNewlines)
        let akBytes = try #require(Data(base64Encoded: ak))
        #expect(database.range(of: akBytes) == nil)
    }

    @Test("with the key missing or wrong, unlock presents nothing: 0 failed authentications on every drive",
          arguments: ArrayMix.allCases)
    func keysFirst(mix: ArrayMix) async throws {
        let f = try LockManagerFixture(drives: 3, subsystemClasses: mix.subsystemClasses)
        #expect(try await f.setUpArray().allSucceeded)
        let keyFile = try f.keyFile()
        let original = try Data(contentsOf: URL(fileURLWithPath: keyFile))
        try f.reboot()
        let before = (0..<3).map { f.driveFailures($0) }

        try FileManager.default.removeItem(atPath: keyFile)
        let waitedBefore = f.time.uptimeNanoseconds
        let missing = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true, waitSeconds: 30))
        #expect(missing.drives.allSatisfy { $0.result == .keyUnavailable && $0.attempts == 0 })
        // A key file that is not there will not appear by itself: no wait (on the manual clock).
        #expect(f.time.uptimeNanoseconds - waitedBefore < 1_000_000_000)

        // A key file with the right key ID but another key: verified against check values, refused.
        let fields = String(decoding: original, as: UTF8.self).split(separator: " ")
        let forged = "\(fields[0]) \(fields[1]) \(fields[2]) \(Data(repeating: 0x42, count: 32).base64EncodedString())\n"
        try Data(forged.utf8).write(to: URL(fileURLWithPath: keyFile))
        try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: keyFile)
        f.restartManager()
        let wrong = try await f.manager.unlock(UnlockRequest(drives: .all))
        #expect(wrong.drives.allSatisfy { $0.result == .keyMismatch && $0.attempts == 0 })

        // A key file others can read is refused.
        try original.write(to: URL(fileURLWithPath: keyFile))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile)
        f.restartManager()
        let exposed = try await f.manager.unlock(UnlockRequest(drives: .all))
        #expect(exposed.drives.allSatisfy { $0.result == .keyUnavailable && $0.detail.contains("can be read by others") })

        #expect((0..<3).map { f.driveFailures($0).tries } == before.map(\.tries))
        #expect((0..<3).map { f.driveFailures($0).consecutive } == before.map(\.consecutive))
        #expect((0..<3).allSatisfy { f.isLocked($0) })

        try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: keyFile)
        f.restartManager()
        let back = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(back.allSucceeded, "\(back)")
    }

    @Test("2,000 boots without the key, then 2,000 with a wrong key: 0 authentication attempts; key back: the next boot unlocks")
    func twoThousandBootsWithoutKeys() async throws {
        let f = try LockManagerFixture(drives: 3)
        #expect(try await f.setUpArray().allSucceeded)
        let keyFile = try f.keyFile()
        let original = try Data(contentsOf: URL(fileURLWithPath: keyFile))
        let before = (0..<3).map { f.driveFailures($0) }
        try FileManager.default.moveItem(atPath: keyFile, toPath: keyFile + ".away")
        var attempts = 0
        for _ in 0..<2_000 {
            try f.reboot()
            let boot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
            attempts += boot.drives.reduce(0) { $0 + $1.attempts }
            #expect(boot.drives.allSatisfy { $0.result == .keyUnavailable || $0.result == .held })
        }
        // The same with a key file that names the right key ID but holds another key.
        let fields = String(decoding: original, as: UTF8.self).split(separator: " ")
        let forged = "\(fields[0]) \(fields[1]) \(fields[2]) \(Data(repeating: 0x17, count: 32).base64EncodedString())\n"
        try Data(forged.utf8).write(to: URL(fileURLWithPath: keyFile))
        try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: keyFile)
        for _ in 0..<2_000 {
            try f.reboot()
            let boot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
            attempts += boot.drives.reduce(0) { $0 + $1.attempts }
            #expect(boot.drives.allSatisfy { $0.result == .keyMismatch || $0.result == .held })
        }
        #expect(attempts == 0)
        #expect((0..<3).map { f.driveFailures($0).tries } == before.map(\.tries))
        #expect((0..<3).map { f.driveFailures($0).consecutive } == before.map(\.consecutive))
        #expect(try f.manager.guardStatus(address: nil).bootLoopHold)

        try FileManager.default.removeItem(atPath: keyFile)
        try FileManager.default.moveItem(atPath: keyFile + ".away", toPath: keyFile)
        try f.reboot()
        let back = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(back.allSucceeded, "\(back)")
        #expect(try f.manager.guardStatus(address: nil).bootLoopHold == false)
    }

    @Test("after three boots that failed to unlock, a boot makes no attempt on a drive that refused sedlock before")
    func bootLoopGuard() async throws {
        var settings = DriveSettings()
        settings.tryLimit = 20  // so that the boot-loop guard, not the lockout guard, is what stops the attempts
        let f = try LockManagerFixture(drives: 2, settings: settings, lockoutLimit: 10)
        #expect(try await f.setUpArray().allSucceeded)
        // Drive 1's Admin1 PIN changes behind sedlock's back: verified keys, refused by the drive.
        let opal = try OpalDrive(transport: f.drives.transport(1), timeout: 5)
        let stranger = Secret(Array("someone else".utf8))
        try opal.setPIN(of: .admin(1), newPIN: stranger, authorizer: .admin(1), authorizerPIN: try adminPIN(f, 1))
        for boot in 1...3 {
            try f.reboot()
            let report = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
            #expect(report.drives.map(\.result) == [.unlocked, .notAuthorized], "boot \(boot)")
        }
        #expect(f.driveFailures(1).consecutive == 3)
        try f.reboot()
        let held = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(held.drives.map(\.result) == [.unlocked, .held])
        #expect(held.drives[1].attempts == 0 && held.note.contains("boot-loop guard"))
        #expect(f.driveFailures(1).consecutive == 3)  // the hold spent nothing on it
        #expect(f.isLocked(1) && !f.isLocked(0))
        let hold = try f.manager.guardStatus(address: nil)
        #expect(hold.bootLoopHold && hold.consecutiveFailedBoots == 4)

        // The operator puts sedlock's PIN back and unlocks by hand; that ends the hold.
        try opal.setPIN(of: .admin(1), newPIN: try adminPIN(f, 1), authorizer: .admin(1), authorizerPIN: stranger)
        let byHand = try await f.manager.unlock(UnlockRequest(drives: .all))
        #expect(byHand.allSucceeded, "\(byHand)")
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
    }

    @Test("a drive whose PIN changed behind sedlock's back is guarded after 3 failures, 2 below its TryLimit")
    func lockoutGuard() async throws {
        var settings = DriveSettings()
        settings.tryLimit = 10
        let f = try LockManagerFixture(drives: 2, settings: settings)
        #expect(try await f.setUpArray().allSucceeded)
        // Someone else (with the right Admin1 PIN) changes drive 1's Admin1 PIN. Its PIN from the
        // AK is no longer accepted, although its check value still matches.
        let opal = try OpalDrive(transport: f.drives.transport(1), timeout: 5)
        let stranger = Secret(Array("not-sedlock".utf8))
        try opal.revertKeepingGlobalRange(sidPIN: try sidPIN(f, 1), adminPIN: try adminPIN(f, 1))
        try opal.takeOwnership(newSIDPIN: stranger)
        try opal.activateLockingSP(sidPIN: stranger)
        try opal.configureRange(0, start: nil, length: nil, readLockEnabled: true, writeLockEnabled: true,
                                lockOnReset: [.powerCycle], adminPIN: stranger)
        try f.reboot()
        var attempts = 0
        for _ in 0..<5 {
            let report = try await f.manager.unlock(UnlockRequest(drives: .all))
            let one = try #require(report.drives.first { $0.address == f.addresses[1] })
            attempts += one.attempts
            #expect(report.drives.first { $0.address == f.addresses[0] }?.result == .unlocked)
        }
        #expect(attempts == 3)
        #expect(f.driveFailures(1).consecutive == 3)
        let guardState = try f.manager.guardStatus(address: f.addresses[1])
        #expect(guardState.drives.first?.guarded != nil && guardState.drives.first?.limit == 3)
        _ = try f.manager.guardReset(address: f.addresses[1])
        let afterReset = try await f.manager.unlock(UnlockRequest(drives: .some([f.addresses[1]])))
        #expect(afterReset.drives.first?.result == .notAuthorized && afterReset.drives.first?.attempts == 1)
    }

    @Test("setup refuses an owned drive without adoption and changes nothing; with the sedutil password it adopts it")
    func adoption() async throws {
        let f = try LockManagerFixture(drives: 2)
        let password = Secret(Array("sedutil password".utf8))
        let opal = try OpalDrive(transport: f.drives.transport(1), timeout: 5)
        let pin = try PinDerivation.sedutilSHA1.pin(from: password, serialNumberField: opal.identity.serialNumberField)
        try opal.takeOwnership(newSIDPIN: pin)
        try opal.activateLockingSP(sidPIN: pin)

        await #expect { try await f.setUpArray() } throws: {
            ($0 as? ControlError)?.reason == Refusal.drivesNotReady.rawValue && "\($0)".contains("already owned")
        }
        #expect(!f.drive(0).statusReport(index: 0).owned)
        #expect(f.driveFailures(1).consecutive == 0)

        // The serial salts two ways (padded or trimmed): without the variant, nothing is tried.
        await #expect { try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .local,
                                                               adoption: .init(derivation: "sedutil-sha1")),
                                                  adoptionPassword: password) } throws: {
            ($0 as? ControlError)?.reason == Refusal.drivesNotReady.rawValue && "\($0)".contains("reported, trimmed")
        }
        #expect(f.driveFailures(1).consecutive == 0)
        let adopted = try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .local,
                                                             adoption: .init(derivation: "sedutil-sha1", salt: "reported")),
                                                adoptionPassword: password)
        #expect(adopted.allSucceeded, "\(adopted)")
        #expect(adopted.drives.map(\.result) == [.setUp, .adopted])
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all)).allSucceeded)
        #expect(f.driveFailures(1).consecutive == 0)
    }

    @Test("a sedutil-set-up Enterprise SSC drive (SID, BandMaster0 and EraseMaster on one password) beside an Opal one: adopted with 0 failed authentications; a factory Enterprise drive adopted by mistake costs one")
    func enterpriseAdoption() async throws {
        let f = try LockManagerFixture(drives: 3, subsystemClasses: [.opal, .enterprise, .enterprise])
        let password = Secret(Array("sedutil password".utf8))
        let opal = try OpalDrive(transport: f.drives.transport(1), timeout: 5)
        let pin = try PinDerivation.sedutilSHA1.pin(from: password, serialNumberField: opal.identity.serialNumberField)
        try opal.takeOwnership(newSIDPIN: pin)
        try opal.activateLockingSP(sidPIN: pin)
        // Drive 2 is a factory Enterprise drive: without Block SID nothing tells it from an owned one.
        let adopted = try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .local, keyTag: "array-test",
                                                             adoption: .init(derivation: "sedutil-sha1", salt: "reported")),
                                                adoptionPassword: password)
        #expect(adopted.allSucceeded && adopted.drives.map(\.result) == [.setUp, .adopted, .setUp], "\(adopted)")
        #expect(f.drive(1).statusReport(index: 1).totalFailedAuthentications == 0)
        #expect(f.drive(2).statusReport(index: 2).totalFailedAuthentications == 1, "only SID tried the password, once")
        try f.reboot()
        let unlock = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(unlock.allSucceeded && unlock.drives.allSatisfy { $0.attempts == 1 }, "\(unlock)")
    }

    @Test("a setup cut off at any of its drive exchanges is finished by the next run, with at most one failed authentication",
          arguments: ArrayMix.cuts(opal: [0, 2, 4, 7, 10, 13, 16, 19, 22, 25, 28], enterprise: Array(0...38)))
    func setupResumes(mix: ArrayMix, cutAfter: Int) async throws {
        let f = try LockManagerFixture(drives: 2, subsystemClasses: mix.subsystemClasses)
        var plan = FaultPlan()
        plan.droppedResponses = 1
        plan.dropAfterResponses = cutAfter
        f.drive(1).setFaults(plan)
        let first = try await f.setUpArray()
        #expect(first.drives.first { $0.address == f.addresses[0] }?.result == .setUp)
        if !first.allSucceeded {
            #expect(try await f.manager.status().generations.first?.state == "pending")
            f.letDriveSessionsExpire()  // the session the cut left open would answer SP_BUSY
            let second = try await f.manager.setup(SetupRequest(drives: [], provider: .local))
            #expect(second.allSucceeded, "cut after \(cutAfter): \(second)")
        }
        #expect(f.driveFailures(1).consecutive <= 1, "cut after \(cutAfter)")
        #expect(try await f.manager.status().generations.first?.state == "active")
        try f.reboot()
        let unlock = try await f.manager.unlock(UnlockRequest(drives: .all))
        #expect(unlock.allSucceeded, "cut after \(cutAfter): \(unlock)")
    }

    @Test("rekey moves every drive to a new key; the old one is retired and kept; unlock uses the new one",
          arguments: ArrayMix.allCases)
    func rekey(mix: ArrayMix) async throws {
        let f = try LockManagerFixture(drives: 3, subsystemClasses: mix.subsystemClasses)
        #expect(try await f.setUpArray().allSucceeded)
        let oldKey = try f.keyFile()
        let report = try await f.manager.rekey(RekeyRequest())
        #expect(report.allSucceeded && report.drives.allSatisfy { $0.result == .rekeyed }, "\(report)")
        let keys = try f.manager.keysList().keys
        #expect(keys.map(\.state) == ["retired", "active"] && keys.allSatisfy { $0.tag == "array-test" })
        #expect(FileManager.default.fileExists(atPath: oldKey))
        try f.reboot()
        let unlock = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(unlock.allSucceeded, "\(unlock)")
        // Each outcome names the key its PINs came from: the new one (the journal's KEY_ID).
        #expect(unlock.drives.allSatisfy { $0.keyID == keys[1].keyID }, "\(unlock.drives.map(\.keyID))")
        // Without the new key, nothing is presented even though the old key is still there.
        try FileManager.default.removeItem(atPath: f.keyDirectory + "/" + keys[1].keyID + ".ak")
        try f.reboot()
        let without = try await f.manager.unlock(UnlockRequest(drives: .all))
        #expect(without.drives.allSatisfy { $0.result == .keyUnavailable && $0.attempts == 0 })
    }

    @Test("a rekey cut off at any of a drive's exchanges is rolled forward by the next unlock, with at most one failed authentication",
          arguments: ArrayMix.cuts(opal: Array(0...12), enterprise: Array(0...17)))
    func rekeyRollsForward(mix: ArrayMix, cutAfter: Int) async throws {
        let f = try LockManagerFixture(drives: 2, subsystemClasses: mix.subsystemClasses)
        #expect(try await f.setUpArray().allSucceeded)
        var plan = FaultPlan()
        plan.droppedResponses = 1
        plan.dropAfterResponses = cutAfter
        f.drive(1).setFaults(plan)
        let first = try await f.manager.rekey(RekeyRequest())
        if !first.allSucceeded {
            #expect(try f.manager.keysList().keys.map(\.state) == ["active", "pending"])
        }
        try f.reboot()
        let boot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(boot.allSucceeded, "cut after \(cutAfter): \(boot)")
        #expect(try f.manager.keysList().keys.map(\.state) == ["retired", "active"], "cut after \(cutAfter)")
        #expect(f.driveFailures(1).consecutive <= 1, "cut after \(cutAfter)")
    }

    @Test("a drive power-cycled alone is told from one an operator locked: only it is relocked, and ArrayLocked stays open until it is unlocked")
    func relockedDrives() async throws {
        let f = try LockManagerFixture(drives: 3)
        #expect(try await f.setUpArray().allSucceeded)
        #expect(try await f.manager.checkDrives().drives.allSatisfy { !$0.relocked })
        #expect(try await f.manager.lock(LockRequest(drives: .some([f.addresses[2]]))).allSucceeded)
        try f.drive(1).powerCycle()
        let report = try await f.manager.checkDrives()
        #expect(report.drives.filter(\.relocked).map(\.address) == [f.addresses[1]])
        #expect(report.drives[2].locked == true && report.drives[2].lockedOnPurpose == true)
        #expect(try f.manager.faults().open.contains { $0.name == "ArrayLocked" && $0.detail.contains(f.addresses[1]) })
        #expect(try await f.manager.unlock(UnlockRequest(drives: .some([f.addresses[1]]))).allSucceeded)
        #expect(try await f.manager.checkDrives().drives.allSatisfy { !$0.relocked })
        #expect(try !f.manager.faults().open.contains { $0.name == "ArrayLocked" })
        // An unlock ends a lock on purpose: a later power cycle of that drive is a relock again.
        #expect(try await f.manager.unlock(UnlockRequest(drives: .some([f.addresses[2]]))).allSucceeded)
        try f.drive(2).powerCycle()
        #expect(try await f.manager.checkDrives().drives.filter(\.relocked).map(\.address) == [f.addresses[2]])
    }

    @Test("the state deleted while the manager holds it: StateDatabaseLost (critical) and a fresh backup; restored from it, the array unlocks")
    func lostStateIsNoticedAndRestorable() async throws {
        let f = try LockManagerFixture(drives: 2)
        // Through the entry the CLI and sedlockd use, which backs the state up after a change set.
        let setup = await f.manager.respond(to: .setup(SetupRequest(drives: f.addresses, provider: .local)))
        guard case .array(let report) = setup, report.allSucceeded else { Issue.record("setup: \(setup)"); return }
        let directory = f.configuration.stateDirectory
        #expect(FileManager.default.fileExists(atPath: directory.backupPath), "a change set leaves a backup")
        try FileManager.default.removeItem(atPath: directory.backupPath)
        try FileManager.default.removeItem(atPath: directory.databasePath)
        let lost = try #require(try f.manager.faults().open.first { $0.name == "StateDatabaseLost" })
        #expect(lost.severity == "critical" && lost.detail.contains("was deleted"))
        #expect(FileManager.default.fileExists(atPath: directory.backupPath), "the open state was written out at once")
        f.manager.releaseState()
        try FileManager.default.moveItem(atPath: directory.backupPath, toPath: directory.databasePath)
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
    }

    @Test("a failure from below the lock manager keeps its kind and reason code on the way out: a state directory others may write")
    func failuresKeepTheirReason() async throws {
        let f = try LockManagerFixture(drives: 1)
        #expect(try await f.setUpArray().allSucceeded)
        f.manager.releaseState()
        let directory = f.configuration.stateDirectory.path
        #expect(chmod(directory, 0o777) == 0)
        defer { chmod(directory, 0o700) }
        f.restartManager()
        guard case .failure(let error) = await f.manager.respond(to: .status) else {
            Issue.record("a state directory others may write was accepted"); return
        }
        #expect(error.code == .failed && error.reason == "state.unsafeLocation", "\(error)")
        // The drive's own failures keep theirs too: an unknown drive address is the request's fault.
        chmod(directory, 0o700)
        f.restartManager()
        guard case .failure(let unknown) = await f.manager.respond(to: .lock(LockRequest(drives: .some(["sim:/nowhere/0"])))) else {
            Issue.record("an unknown drive was accepted"); return
        }
        #expect(unknown.code == .badRequest, "\(unknown)")
    }

    @Test("one drive's damaged record decides only that drive: the others unlock, it gets no attempt")
    func oneDamagedRecord() async throws {
        let f = try LockManagerFixture(drives: 3)
        #expect(try await f.setUpArray().allSucceeded)
        try f.reboot()
        f.manager.releaseState()
        let state = try StateDatabase(directory: f.configuration.stateDirectory, access: .write)
        var damaged = try #require(try state.drive(address: f.addresses[0]))
        damaged.identity = "wwn:0000000000000000"
        try state.updateDrive(damaged)
        state.close()
        f.restartManager()
        let unlock = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(unlock.drives.map(\.result) == [.keyMismatch, .unlocked, .unlocked], "\(unlock)")
        #expect(unlock.drives.first?.attempts == 0 && f.driveFailures(0).consecutive == 0)
        #expect(f.isLocked(0) && !f.isLocked(1) && !f.isLocked(2))
    }

    @Test("SP_BUSY (another session holds the drive, as one a killed host left open does) counts no failed authentication: unlocks meeting it many times in a row guard nothing, and the next one that gets through needs one attempt")
    func busyDriveCountsNothing() async throws {
        let f = try LockManagerFixture(drives: 2)
        #expect(try await f.setUpArray().allSucceeded)
        try f.reboot()
        var plan = FaultPlan()
        plan.busySessions = 10_000
        f.drive(1).setFaults(plan)
        for _ in 0..<5 {
            let report = try await f.manager.unlock(UnlockRequest(drives: .all))
            let busy = try #require(report.drives.first { $0.address == f.addresses[1] })
            #expect(busy.result == .failed && busy.detail.contains("SP_BUSY"), "\(busy)")
        }
        let status = try await f.manager.status()
        #expect(status.drives.allSatisfy { $0.guarded == nil && $0.failedAuthentications == 0 }, "\(status.drives)")
        f.drive(1).setFaults(FaultPlan())
        let unlocked = try await f.manager.unlock(UnlockRequest(drives: .some([f.addresses[1]])))
        #expect(unlocked.allSucceeded && unlocked.drives.first?.attempts == 1, "\(unlocked)")
        #expect(f.driveFailures(1).consecutive == 0)
    }

    /// Opal drive 1 cut at each of its rekey exchanges, then its rerun cut early; on the mixed
    /// array drive 1 is the Enterprise one, whose sessions take one exchange more (Authenticate).
    static let doubleCuts: [(ArrayMix, Int, Int)] =
        [2, 3, 4, 5, 6, 7, 8].flatMap { first in [0, 1, 2, 3].map { (ArrayMix.opal, first, $0) } }
        + [2, 4, 6, 8, 10, 12, 14, 16].flatMap { first in [0, 2].map { (ArrayMix.mixed, first, $0) } }

    @Test("a rekey cut off twice in a row (the rerun cut too) costs at most one failed authentication and guards no drive",
          .serialized, arguments: doubleCuts)
    func rekeyCutTwice(mix: ArrayMix, firstCut: Int, secondCut: Int) async throws {
        let f = try LockManagerFixture(drives: 2, subsystemClasses: mix.subsystemClasses)
        #expect(try await f.setUpArray().allSucceeded)
        for cut in [firstCut, secondCut] {
            var plan = FaultPlan()
            plan.droppedResponses = 1
            plan.dropAfterResponses = cut
            f.drive(1).setFaults(plan)
            _ = try? await f.manager.rekey(RekeyRequest())
            f.letDriveSessionsExpire()
        }
        f.drive(1).setFaults(FaultPlan())
        try f.reboot()
        let boot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        let cuts = "\(mix): cut after \(firstCut), then \(secondCut)"
        #expect(boot.allSucceeded, "\(cuts): \(boot)")
        #expect(try f.manager.keysList().keys.map(\.state) == ["retired", "active"], "\(cuts)")
        #expect(f.driveFailures(1).consecutive <= 1, "\(cuts): \(f.driveFailures(1))")
        let status = try await f.manager.status()
        #expect(status.drives.allSatisfy { $0.guarded == nil && $0.failedAuthentications == 0 }, "\(cuts): \(status.drives)")
    }

    @Test("a drive in reach that is not the array's is reported once (discovery only: no authentication, nothing changed), listed by status until it joins the array, and again once it leaves")
    func unmanagedDrives() async throws {
        let f = try LockManagerFixture(drives: 4)
        let two = Array(f.addresses.prefix(2))
        #expect(try await f.manager.setup(SetupRequest(drives: two, provider: .local)).allSucceeded)
        let seen = try f.manager.lookForUnmanagedDrives()
        #expect(seen.map(\.address) == [f.addresses[2], f.addresses[3]], "\(seen)")
        #expect(seen.allSatisfy { $0.subsystems.contains("Opal v2") && $0.owned == false && $0.model.hasPrefix("SEDSIM") })
        #expect(try f.manager.lookForUnmanagedDrives().isEmpty, "each is reported once")
        #expect(try await f.manager.status().unmanagedDrives?.map(\.address) == [f.addresses[2], f.addresses[3]])
        for n in 2...3 {
            let report = f.drive(n).statusReport(index: n)
            #expect(!report.owned && report.tries.allSatisfy { $0.tries == 0 } && report.consecutiveFailedAuthentications == 0)
        }
        #expect(try await f.manager.arrayAdd(ArrayAddRequest(address: f.addresses[2])).allSucceeded)
        #expect(try f.manager.lookForUnmanagedDrives().isEmpty)
        #expect(try await f.manager.status().unmanagedDrives?.map(\.address) == [f.addresses[3]])
        #expect(try await f.manager.arrayRemove(address: f.addresses[0], revert: false).drives.first?.result == .removed)
        let back = try f.manager.lookForUnmanagedDrives()
        #expect(back.map(\.address) == [f.addresses[0]] && back.first?.owned == true, "\(back)")
    }

    @Test("array add joins a factory drive to the active key; remove forgets one; remove --revert and erase --revert return drives to factory",
          arguments: ArrayMix.allCases)
    func membership(mix: ArrayMix) async throws {
        let f = try LockManagerFixture(drives: 4, subsystemClasses: mix.subsystemClasses)
        let three = Array(f.addresses.prefix(3))
        #expect(try await f.manager.setup(SetupRequest(drives: three, provider: .local)).allSucceeded)
        let added = try await f.manager.arrayAdd(ArrayAddRequest(address: f.addresses[3]))
        #expect(added.allSucceeded && added.drives.map(\.result) == [.setUp], "\(added)")
        await #expect { try await f.manager.arrayAdd(ArrayAddRequest(address: f.addresses[3])) } throws: {
            ($0 as? ControlError)?.code == .badRequest
        }
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all)).allSucceeded)

        let removed = try await f.manager.arrayRemove(address: f.addresses[3], revert: false)
        #expect(removed.drives.first?.result == .removed && f.drive(3).statusReport(index: 3).owned)
        let reverted = try await f.manager.arrayRemove(address: f.addresses[2], revert: true)
        #expect(reverted.drives.first?.result == .reverted, "\(reverted)")
        #expect(!f.drive(2).statusReport(index: 2).owned)
        let erased = try await f.manager.erase(EraseRequest(drives: [f.addresses[1]], method: .revert), psid: nil)
        #expect(erased.drives.first?.result == .reverted && !f.drive(1).statusReport(index: 1).owned)
        #expect(try await f.manager.status().drives.map(\.address) == [f.addresses[0]])
        #expect(f.driveFailures(1).consecutive == 0 && f.driveFailures(2).consecutive == 0)
    }

    @Test("a drive taken out with array remove (PINs kept) comes back with array add and no PSID revert: its PINs proven by the check values kept at removal, moved to the active key, 0 failed authentications; after a rekey in between too",
          arguments: ArrayMix.allCases)
    func takenBack(mix: ArrayMix) async throws {
        let f = try LockManagerFixture(drives: 3, subsystemClasses: mix.subsystemClasses)
        #expect(try await f.setUpArray().allSucceeded)
        let removed = try await f.manager.arrayRemove(address: f.addresses[1], revert: false)
        #expect(removed.drives.first?.detail.contains("array add") == true, "\(removed)")
        let back = try await f.manager.arrayAdd(ArrayAddRequest(address: f.addresses[1]))
        #expect(back.allSucceeded && back.drives.first?.result == .adopted, "\(back)")

        // Out again, and the array rekeyed while it is out: it comes back holding the retired key's PINs.
        #expect(try await f.manager.arrayRemove(address: f.addresses[2], revert: false).drives.first?.result == .removed)
        #expect(try await f.manager.rekey(RekeyRequest()).allSucceeded)
        let again = try await f.manager.arrayAdd(ArrayAddRequest(address: f.addresses[2]))
        #expect(again.allSucceeded && again.drives.first?.result == .adopted, "\(again)")
        #expect((0..<3).allSatisfy { f.drive($0).statusReport(index: $0).totalFailedAuthentications == 0 })
        let active = try #require(try f.manager.keysList().keys.first { $0.state == "active" }?.keyID)
        #expect(try await f.manager.status().drives.allSatisfy { $0.generation == active })
        try f.reboot()
        let unlock = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(unlock.allSucceeded && unlock.drives.allSatisfy { $0.attempts == 1 }, "\(unlock)")
        // Taken back once: a second add of the same drive is the array's own drive, refused.
        await #expect { try await f.manager.arrayAdd(ArrayAddRequest(address: f.addresses[2])) } throws: { ($0 as? ControlError)?.code == .badRequest }
    }

    @Test("setup and rekey from a passphrase: the AK is scrypt of it salted with the key ID, kept like any other; a weak one is refused with nothing changed")
    func passphraseKeys() async throws {
        let f = try LockManagerFixture(drives: 2)
        let weak = Secret(Array("abcabcabcabcabcabcabcabc".utf8))
        await #expect { try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .local, fromPassphrase: true), passphrase: weak) } throws: {
            ($0 as? ControlError)?.code == .badRequest && "\($0)".contains("too weak")
        }
        let keysAfterRefusal = try f.manager.keysList().keys
        #expect(!f.drive(0).statusReport(index: 0).owned && keysAfterRefusal.isEmpty)
        let passphrase = Secret(Array("correct horse battery staple, twice over".utf8))
        let setup = try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .local, fromPassphrase: true), passphrase: passphrase)
        #expect(setup.allSucceeded, "\(setup)")
        func expectDerived(_ when: String) throws {
            let keyID = try #require(try f.manager.keysList().keys.first { $0.state == "active" }?.keyID)
            let kept = try #require(try f.keyFileAK(keyID: keyID))
            let made = try KeyDerivation.scrypt(password: passphrase, salt: Array("sedlock passphrase v1".utf8) + [0] + Array(keyID.utf8),
                                                n: 1 << 17, r: 8, p: 1, length: 32)
            #expect(kept == made, "\(when): the kept AK is the passphrase's")
        }
        try expectDerived("setup")
        #expect(try await f.manager.rekey(RekeyRequest(fromPassphrase: true), passphrase: passphrase).allSucceeded)
        try expectDerived("rekey")
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
        // Asked for a passphrase and given none: refused before anything.
        await #expect { try await f.manager.rekey(RekeyRequest(fromPassphrase: true)) } throws: { ($0 as? ControlError)?.code == .badRequest }
    }

    @Test("release --keep-data returns a locked drive to an unowned state with its data readable after a power cycle; it leaves the array")
    func releaseKeepingData() async throws {
        let f = try LockManagerFixture(drives: 2)
        #expect(try await f.setUpArray().allSucceeded)
        let record = Array("ledger, keep it".utf8) + [UInt8](repeating: 0, count: 497)
        try f.drive(0).write(lba: 9, data: record)
        try f.reboot()  // locked again: the release must open it first
        #expect(f.isLocked(0))
        let released = try await f.manager.erase(EraseRequest(drives: [f.addresses[0]], method: .release), psid: nil)
        #expect(released.drives.map(\.result) == [.released] && released.drives.first?.attempts == 1, "\(released)")
        #expect(released.note.contains("readable by anyone"))
        let status = f.drive(0).statusReport(index: 0)
        #expect(!status.owned && status.lockingSP != "manufactured", "\(status.lockingSP)")
        try f.reboot()
        let after = try f.drive(0).read(lba: 9, count: 1)
        #expect(!f.isLocked(0) && after == record, "the data survives the release and a power cycle")
        #expect(try await f.manager.status().drives.map(\.address) == [f.addresses[1]])
        #expect(f.driveFailures(0).consecutive == 0)
    }

    @Test("crypto-erase makes the data unreadable and keeps the drive; a PSID revert needs the right PSID",
          arguments: ArrayMix.allCases)
    func cryptoEraseAndPSID(mix: ArrayMix) async throws {
        let f = try LockManagerFixture(drives: 2, subsystemClasses: mix.subsystemClasses)
        #expect(try await f.setUpArray().allSucceeded)
        let record = Array("payroll, do not lose".utf8) + [UInt8](repeating: 0, count: 492)
        try f.drive(0).write(lba: 7, data: record)
        let erased = try await f.manager.erase(EraseRequest(drives: [f.addresses[0]], method: .crypto), psid: nil)
        #expect(erased.drives.first?.result == .erased, "\(erased)")
        #expect(try f.drive(0).read(lba: 7, count: 1) != record)
        #expect(try await f.manager.status().drives.count == 2)

        let wrong = try await f.manager.erase(EraseRequest(drives: [f.addresses[1]], method: .psid), psid: Secret(Array("WRONG".utf8)))
        #expect(wrong.drives.first?.result == .notAuthorized)
        let psid = Secret(Array(f.drive(1).statusReport(index: 1).psid.utf8))
        let reverted = try await f.manager.erase(EraseRequest(drives: [f.addresses[1]], method: .psid), psid: psid)
        #expect(reverted.drives.first?.result == .reverted && !f.drive(1).statusReport(index: 1).owned)
        await #expect { try await f.manager.erase(EraseRequest(drives: f.addresses, method: .psid), psid: psid) } throws: {
            ($0 as? ControlError)?.code == .badRequest
        }
    }

    @Test("faults are raised by the conditions they name and clear themselves when the condition ends")
    func faults() async throws {
        var settings = DriveSettings()
        settings.tryLimit = 20
        let f = try LockManagerFixture(drives: 2, settings: settings)
        #expect(try await f.setUpArray().allSucceeded)
        #expect(try f.manager.faults().open.isEmpty)

        // A wrong key: KeyMismatch on every drive, until the right key is back.
        let keyFile = try f.keyFile()
        let original = try Data(contentsOf: URL(fileURLWithPath: keyFile))
        let fields = String(decoding: original, as: UTF8.self).split(separator: " ")
        try Data("\(fields[0]) \(fields[1]) \(fields[2]) \(Data(repeating: 9, count: 32).base64EncodedString())\n".utf8)
            .write(to: URL(fileURLWithPath: keyFile))
        try f.reboot()
        _ = try await f.manager.unlock(UnlockRequest(drives: .all))
        #expect(try f.manager.faults().open.map(\.name) == ["KeyMismatch", "KeyMismatch"])
        try original.write(to: URL(fileURLWithPath: keyFile))
        f.restartManager()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all)).allSucceeded)
        let afterKey = try f.manager.faults()
        #expect(afterKey.open.isEmpty && afterKey.recentlyCleared.filter { $0.name == "KeyMismatch" }.count == 2)

        // A guarded drive: DriveGuarded until the operator resets it.
        let opal = try OpalDrive(transport: f.drives.transport(1), timeout: 5)
        try opal.setPIN(of: .admin(1), newPIN: Secret(Array("other".utf8)), authorizer: .admin(1), authorizerPIN: try adminPIN(f, 1))
        try f.reboot()
        for _ in 0..<3 { _ = try await f.manager.unlock(UnlockRequest(drives: .some([f.addresses[1]]))) }
        let guarded = try f.manager.faults().open
        #expect(guarded.map(\.name) == ["DriveGuarded"] && guarded.first?.object == f.addresses[1])
        #expect(guarded.first?.action.contains("guard reset") == true)
        _ = try f.manager.guardReset(address: f.addresses[1])
        #expect(try f.manager.faults().open.isEmpty)

        // Key server certificates close to expiry or unreadable: KmipCertificateFault, by class.
        let pki = f.root + "/pki"
        try FileManager.default.createDirectory(atPath: pki, withIntermediateDirectories: false)
        try ProcessRunner.shell("cd '\(pki)' && openssl req -x509 -newkey rsa:2048 -nodes -keyout c.key -out c.pem -days 2 -subj /CN=soon")
        try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: pki + "/ca.pem"))
        f.manager.releaseState()
        let state = try StateDatabase(directory: f.configuration.stateDirectory, access: .write)
        try state.addKeyServer(name: "ks", addresses: ["127.0.0.1:5696"], certificatePath: pki + "/c.pem",
                               privateKeyPath: pki + "/c.key", caPath: pki + "/ca.pem", verifyServerName: true)
        state.close()
        let certificates = try f.manager.faults().open.filter { $0.name == "KmipCertificateFault" }
        #expect(certificates.map(\.object).sorted() == [pki + "/c.pem", pki + "/ca.pem"])
        #expect(certificates.allSatisfy { $0.severity == "critical" })
        // The fixture's clock is 2027-01-15: the 2-day certificate made today has expired, by so many days.
        let client = try #require(certificates.first { $0.object == pki + "/c.pem" })
        #expect(client.detail.contains("the client certificate expired") && client.detail.contains("day(s) ago"), "\(client.detail)")
        #expect(client.action.contains("issue a new one now"), "\(client.action)")
    }

    private func sidPIN(_ f: LockManagerFixture, _ n: Int) throws -> Secret { try pinFor(f, n, .sid) }
    private func adminPIN(_ f: LockManagerFixture, _ n: Int) throws -> Secret { try pinFor(f, n, .admin1) }

    /// Test-only: the PIN sedlock derived (from the key file the test can read), to act as another admin.
    private func pinFor(_ f: LockManagerFixture, _ n: Int, _ authority: PINAuthority) throws -> Secret {
        let fields = try String(contentsOfFile: try f.keyFile(), encoding: .utf8).split(separator: " ")
        let ak = Secret(Array(try #require(Data(base64Encoded: fields[3].trimmingCharacters(in: .whitespacesAndNewlines)))))
        let id = f.drive(n).identity
        return try DrivePIN.derive(ak: ak, driveIdentity: DrivePIN.driveIdentity(wwn: id.wwn, serial: id.serial), authority: authority)
    }
}

@Suite("Lock manager: what only Opal drives have")
struct OpalOnlyOperationsTests {
    @Test("release --keep-data on an Enterprise SSC drive (no RevertSP there) is refused before anything is sent: still owned, still the array's, data intact, no try spent")
    func releaseRefusedOnEnterprise() async throws {
        let f = try LockManagerFixture(drives: 2, subsystemClasses: ArrayMix.mixed.subsystemClasses)
        #expect(try await f.setUpArray().allSucceeded)
        let record = Array("keep me".utf8) + [UInt8](repeating: 0, count: 505)
        try f.drive(1).write(lba: 3, data: record)
        let before = f.drive(1).statusReport(index: 1).totalFailedAuthentications
        let released = try await f.manager.erase(EraseRequest(drives: [f.addresses[1]], method: .release), psid: nil)
        let outcome = try #require(released.drives.first)
        #expect(outcome.result != .released && outcome.detail.contains("Enterprise SSC"), "\(released)")
        #expect(f.drive(1).statusReport(index: 1).owned && f.drive(1).statusReport(index: 1).totalFailedAuthentications == before)
        #expect(try f.drive(1).read(lba: 3, count: 1) == record)
        #expect(try await f.manager.status().drives.map(\.address) == f.addresses)
    }
}

@Suite("Lock manager: drives that lock but do not encrypt (Pyrite)")
struct LockOnlyDriveTests {
    @Test("refused by setup and array add before anything but discovery is sent; with allowUnencrypted managed for its locking only: set up, locked by a power cycle, unlocked at boot, shown as such; crypto-erase and RDL refused, nothing sent")
    func pyriteLockOnly() async throws {
        let kms = try InProcessKeyServers(count: 1)
        let f = try LockManagerFixture(drives: 3, subsystemClasses: [.opal, .pyrite, .opal], connector: kms)
        try kms.add(to: f.manager)
        await #expect { try await f.setUpArray() } throws: {
            ($0 as? ControlError)?.reason == Refusal.drivesNotReady.rawValue && "\($0)".contains("Pyrite v2: the drive locks but does not encrypt")
                && "\($0)".contains("--allow-unencrypted")
        }
        #expect((0..<3).allSatisfy { !f.drive($0).statusReport(index: $0).owned && f.drive($0).statusReport(index: $0).totalFailedAuthentications == 0 })

        #expect(try await f.manager.setup(SetupRequest(drives: [f.addresses[0], f.addresses[2]], provider: .local)).allSucceeded)
        await #expect { try await f.manager.arrayAdd(ArrayAddRequest(address: f.addresses[1])) } throws: {
            "\($0)".contains("does not encrypt") && ($0 as? ControlError)?.reason == Refusal.drivesNotReady.rawValue
        }
        #expect(!f.drive(1).statusReport(index: 1).owned)
        let added = try await f.manager.arrayAdd(ArrayAddRequest(address: f.addresses[1], allowUnencrypted: true))
        #expect(added.allSucceeded, "\(added)")
        let status = try await f.manager.status()
        #expect(status.drives.map(\.mediaEncryption) == [true, true, false], "\(status.drives)")
        #expect(status.drives.map(\.family) == ["Opal v2", "Opal v2", "Pyrite v2"])

        try f.reboot()
        #expect(f.isLocked(1))
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
        #expect(!f.isLocked(1))

        let before = f.drive(1).statusReport(index: 1).totalFailedAuthentications
        let erase = try await f.manager.erase(EraseRequest(drives: [f.addresses[1]], method: .crypto), psid: nil)
        #expect(erase.drives.first?.result != .erased && erase.drives.first?.detail.contains("does not encrypt") == true, "\(erase)")
        await #expect { try await f.manager.rdlEnable(RDLEnableRequest(server: "ks0")) } throws: {
            "\($0)".contains("does not encrypt its media") && "\($0)".contains("Rapid Data Locking")
        }
        #expect(f.drive(1).statusReport(index: 1).totalFailedAuthentications == before)
        #expect(try f.manager.rdlStatus().tokenID == nil)
    }
}

@Suite("Lock manager: dry runs")
struct DryRunTests {
    @Test("setup, array add and rekey --dry-run: every check made (drives probed, keys fetched and proven), each drive's plan said, nothing changed and nothing presented to a drive")
    func dryRuns() async throws {
        let f = try LockManagerFixture(drives: 3, subsystemClasses: [.opal, .enterprise])
        let two = Array(f.addresses.prefix(2))
        let planned = try await f.manager.setup(SetupRequest(drives: two, provider: .local).dryRun())
        #expect(planned.operation == "setup --dry-run" && planned.drives.map(\.result) == [.wouldChange, .wouldChange], "\(planned)")
        #expect(planned.drives.allSatisfy { $0.detail.contains("factory state") && $0.attempts == 0 } && planned.note.contains("nothing was changed"))
        #expect(try f.manager.keysList().keys.isEmpty && (0..<3).allSatisfy { !f.drive($0).statusReport(index: $0).owned })
        // A dry run still refuses what the real run would.
        await #expect { try await f.manager.setup(SetupRequest(drives: [f.addresses[0], f.addresses[0]], provider: .local).dryRun()) } throws: { _ in true }

        #expect(try await f.manager.setup(SetupRequest(drives: two, provider: .local)).allSucceeded)
        let keys = try f.manager.keysList().keys
        let add = try await f.manager.arrayAdd(ArrayAddRequest(address: f.addresses[2]).dryRun())
        #expect(add.drives.map(\.result) == [.wouldChange] && add.drives.first?.detail.contains("key \(keys[0].keyID)") == true, "\(add)")
        let arrayDrives = try await f.manager.status().drives.count
        #expect(!f.drive(2).statusReport(index: 2).owned && arrayDrives == 2)

        let rekey = try await f.manager.rekey(RekeyRequest().dryRun())
        #expect(rekey.drives.map(\.result) == [.wouldChange, .wouldChange] && rekey.drives.allSatisfy { $0.detail.contains("from key \(keys[0].keyID)") },
                "\(rekey)")
        #expect(try f.manager.keysList().keys == keys, "no key was made")
        #expect((0..<3).allSatisfy { f.drive($0).statusReport(index: $0).totalFailedAuthentications == 0 })
    }
}

extension DryRunTests {
    @Test("erase (crypto, revert, PSID), release, array remove (with and without --revert) and rdl enable --dry-run: keys fetched and PINs proven, the key server tested, each drive's fate said; no data erased, no token made, no try spent")
    func destructiveDryRuns() async throws {
        let kms = try InProcessKeyServers(count: 1)
        let f = try LockManagerFixture(drives: 2, subsystemClasses: [.opal, .enterprise], connector: kms)
        try kms.add(to: f.manager)
        #expect(try await f.setUpArray().allSucceeded)
        let record = Array("still here".utf8) + [UInt8](repeating: 0, count: 502)
        try f.drive(0).write(lba: 8, data: record)
        for method in EraseRequest.Method.allCases {
            var request = EraseRequest(drives: method == .psid ? [f.addresses[0]] : f.addresses, method: method)
            request.dryRun = true
            let report = try await f.manager.erase(request, psid: method == .psid ? Secret(Array("WRONG".utf8)) : nil)
            #expect(report.allSucceeded && report.drives.allSatisfy { $0.result == .wouldChange && $0.attempts == 0 }
                    && report.operation.hasSuffix("--dry-run"), "\(method): \(report)")
        }
        var enable = RDLEnableRequest(server: "ks0")
        enable.dryRun = true
        let rdl = try await f.manager.rdlEnable(enable)
        #expect(rdl.drives.map(\.result) == [.wouldChange, .wouldChange] && rdl.note.contains("ks0 passed its test"), "\(rdl)")
        #expect(try f.manager.rdlStatus().tokenID == nil)
        for revert in [false, true] {
            let remove = try await f.manager.arrayRemove(address: f.addresses[1], revert: revert, dryRun: true)
            #expect(remove.drives.map(\.result) == [.wouldChange] && remove.operation.hasSuffix("--dry-run")
                    && remove.drives.first?.detail.contains(revert ? "reverted" : "keeping its PINs") == true, "\(remove)")
        }
        await #expect { try await f.manager.arrayRemove(address: "sim:/not/ours/0", revert: false, dryRun: true) } throws: {
            ($0 as? ControlError)?.message.contains("not a drive of the array") == true
        }
        #expect(try f.drive(0).read(lba: 8, count: 1) == record)
        #expect(try await f.manager.status().drives.count == 2 && f.drive(1).statusReport(index: 1).owned)
        #expect((0..<2).allSatisfy { f.drive($0).statusReport(index: $0).totalFailedAuthentications == 0 })
    }
}

extension SetupRequest {
    func dryRun() -> SetupRequest { var copy = self; copy.dryRun = true; return copy }
}

extension ArrayAddRequest {
    func dryRun() -> ArrayAddRequest { var copy = self; copy.dryRun = true; return copy }
}

extension RekeyRequest {
    func dryRun() -> RekeyRequest { var copy = self; copy.dryRun = true; return copy }
}
