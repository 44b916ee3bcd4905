import ControlAPI
import Foundation
import KMIP
import LockManager
import LockState
import SedSimulator
import Testing

/// The key service through its connector seam: the lock manager's KMIP and RDL paths against
/// simulated key servers in this process (no TLS, no child process, the manual clock), and the
/// three answers a key lookup can give.
@Suite("Key service with in-process key servers")
struct KeyServiceTests {
    /// Two in-process key servers, an array set up with its AK on both.
    private func kmipArray(drives: Int = 2, servers: Int = 2) async throws -> (LockManagerFixture, InProcessKeyServers) {
        let kms = try InProcessKeyServers(count: servers)
        let f = try LockManagerFixture(drives: drives, connector: kms)
        try kms.add(to: f.manager)
        let setup = try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-1"))
        #expect(setup.allSucceeded, "\(setup)")
        return (f, kms)
    }

    /// In-process key servers, all added, and an array set up with a local key.
    private func localArray(drives: Int, servers: Int) async throws -> (LockManagerFixture, InProcessKeyServers) {
        let kms = try InProcessKeyServers(count: servers)
        let f = try LockManagerFixture(drives: drives, connector: kms)
        try kms.add(to: f.manager)
        #expect(try await f.setUpArray().allSucceeded)
        return (f, kms)
    }

    @Test("setup stores the AK on every in-process server by identifier; a boot with one server refusing unlocks from the other")
    func kmipThroughTheSeam() async throws {
        let (f, kms) = try await kmipArray()
        let generation = try #require(try f.manager.keysList().keys.first)
        let status = try await f.manager.status()
        #expect(status.keyServers.map(\.name) == ["ks0", "ks1"])
        // Both copies were stored and are recorded by identifier on each server.
        for n in 0..<2 {
            #expect(try kms.client(n).locate([.name(generation.keyID)]).count == 1)
        }

        try kms.set(0) { $0.refuse = true }
        try f.reboot()
        let boot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true, waitSeconds: 60))
        #expect(boot.allSucceeded, "\(boot)")
        #expect(boot.drives.allSatisfy { $0.attempts == 1 })
    }

    @Test("every server refusing the appliance's certificate is a hard error: the boot stops waiting at once, 0 attempts")
    func refusedCertificateStopsTheWait() async throws {
        let (f, kms) = try await kmipArray()
        for n in 0..<2 { try kms.set(n) { $0.distrusted = [kms.identity] } }
        try f.reboot()
        let before = f.time.uptimeNanoseconds
        let boot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true, waitSeconds: 300))
        #expect(boot.drives.allSatisfy { $0.result == .keyUnavailable && $0.attempts == 0 }, "\(boot)")
        #expect(f.time.uptimeNanoseconds - before < 1_000_000_000, "a refusal is not waited for")
        #expect((0..<2).allSatisfy { f.driveFailures($0).consecutive == 0 && f.isLocked($0) })
    }

    @Test("servers that cannot be reached are waited for until the deadline (the manual clock), then the boot is left locked")
    func unreachableServersAreWaitedFor() async throws {
        let (f, kms) = try await kmipArray()
        for n in 0..<2 { try kms.set(n) { $0.hang = true } }
        try f.reboot()
        let before = f.time.uptimeNanoseconds
        let boot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true, waitSeconds: 30))
        #expect(boot.drives.allSatisfy { $0.result == .keyUnavailable && $0.attempts == 0 }, "\(boot)")
        // Asked again until less than a round's second was left, never past the wait.
        #expect((29_000_000_000...30_000_000_000).contains(f.time.uptimeNanoseconds - before), "\(f.time.uptimeNanoseconds - before)")

        // One server back within the wait: the next boot unlocks.
        try kms.set(1) { $0.hang = false }
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true, waitSeconds: 30)).allSucceeded)
    }

    @Test("RDL through the seam: enable, reboot unlocked; the token revoked: the boot is locked at once with 0 attempts and the fault names it")
    func rdlTokenRevoked() async throws {
        let (f, kms) = try await kmipArray(servers: 1)
        #expect(try f.manager.rdlTest(server: "ks0").test?.ok == true)
        let enable = try await f.manager.rdlEnable(RDLEnableRequest(server: "ks0"))
        #expect(enable.allSucceeded, "\(enable)")
        let tokenID = try #require(try f.manager.rdlStatus().tokenID)
        try f.reboot()
        let first = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(first.allSucceeded, "\(first)")

        let client = try kms.client(0)
        for id in try client.locate([.name(tokenID)]) { try client.revoke(id, reason: .keyCompromise) }
        try f.reboot()
        let before = f.time.uptimeNanoseconds
        let locked = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true, waitSeconds: 300))
        #expect(locked.drives.allSatisfy { $0.result == .keyUnavailable && $0.attempts == 0 }, "\(locked)")
        #expect(f.time.uptimeNanoseconds - before < 1_000_000_000, "a revoked token is not waited for")
        let fault = try #require(try f.manager.faults().open.first { $0.name == "RdlTokenUnavailable" })
        #expect(fault.detail.contains("token is lost"))
        #expect((0..<2).allSatisfy { f.driveFailures($0).consecutive == 0 && f.isLocked($0) })
    }

    @Test("removing a key server never strands a key: shares below the threshold and the last token holder are refused; a removal that is safe destroys what the server held")
    func removalNeverStrands() async throws {
        let kms = try InProcessKeyServers(count: 3)
        let f = try LockManagerFixture(drives: 2, connector: kms)
        try kms.add(to: f.manager)
        #expect(try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-1", threshold: 2)).allSucceeded)
        let keyID = try #require(try f.manager.keysList().keys.first?.keyID)
        // Two of three together are checked as a set: one share would be left of the two needed.
        #expect { try f.manager.keyServerRemove(names: ["ks1", "ks2"]) } throws: {
            ($0 as? ControlError)?.reason == Refusal.removalStrands.rawValue
        }
        #expect(try f.manager.keyServerShow().servers.count == 3, "a refused removal changes nothing")
        // One server of three may go: two shares are left, K = 2. Its share is destroyed there.
        let removed = try f.manager.keyServerRemove(name: "ks2")
        #expect(removed.servers.map(\.name) == ["ks0", "ks1"])
        #expect(removed.note?.contains("destroyed there") == true, "\(String(describing: removed.note))")
        #expect(try kms.client(2).locate([.name(keyID)]).isEmpty)
        // A second would leave one share of the two needed: refused, nothing changed.
        #expect { try f.manager.keyServerRemove(name: "ks1") } throws: {
            let error = $0 as? ControlError
            return error?.reason == Refusal.removalStrands.rawValue && error?.message.contains("1 of the 2 shares") == true
        }
        #expect(try f.manager.keyServerShow().servers.map(\.name) == ["ks0", "ks1"])
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
        // The same address under a second name is refused.
        #expect { try f.manager.keyServerAdd(KeyServerAddRequest(
            addresses: [kms.address(0)], name: "ks0-again", certificatePath: kms.root.appendingPathComponent("client.pem").path,
            privateKeyPath: kms.root.appendingPathComponent("client.key").path, caPath: kms.root.appendingPathComponent("ca.pem").path))
        } throws: { ($0 as? ControlError)?.reason == Refusal.duplicateAddress.rawValue }
    }

    @Test("keyserver add of several servers: all get the key, or (one refusing) none is kept and the copies are destroyed again")
    func severalServersAllOrNone() async throws {
        let kms = try InProcessKeyServers(count: 4)
        let f = try LockManagerFixture(drives: 1, connector: kms)
        try kms.add(to: f.manager, [0])
        #expect(try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-1")).allSucceeded)
        let keyID = try #require(try f.manager.keysList().keys.first?.keyID)
        let request = kms.addRequest
        try kms.set(2) { $0.refuse = true }
        #expect { try f.manager.keyServersAdd([request(1), request(2)]) } throws: { ($0 as? ControlError)?.code == .unreachable }
        #expect(try f.manager.keyServerShow().servers.map(\.name) == ["ks0"], "none of the set is kept")
        #expect(try kms.holds(1, keyID) == 0, "the copy ks1 got is destroyed again")
        try kms.set(2) { $0.refuse = false }
        let added = try f.manager.keyServersAdd([request(1), request(2), request(3)])
        #expect(added.servers.map(\.name) == ["ks0", "ks1", "ks2", "ks3"])
        #expect(try (1...3).allSatisfy { try kms.holds($0, keyID) == 1 })
    }

    @Test("keyserver modify keeps a change only after the server as modified passes its test and still holds the array's objects")
    func modifyIsTestedFirst() async throws {
        let kms = try InProcessKeyServers(count: 3)
        let f = try LockManagerFixture(drives: 1, connector: kms)
        try kms.add(to: f.manager, [0, 1])
        #expect(try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-1")).allSucceeded)
        // A renewed client certificate: tested, the key found there, kept.
        let renewed = kms.root.appendingPathComponent("client-renewed.pem").path
        try Data("renewed, not used in-process\n".utf8).write(to: URL(fileURLWithPath: renewed))
        let modified = try f.manager.keyServerModify(KeyServerModifyRequest(name: "ks0", certificatePath: renewed))
        #expect(modified.note?.contains("holding the array's 1 object(s)") == true, "\(String(describing: modified.note))")
        let stored = try StateDatabase(directory: f.configuration.stateDirectory, access: .read)
        #expect(try stored.keyServers().first { $0.name == "ks0" }?.certificatePath == renewed)
        // Pointed at another server's address: refused as a duplicate.
        #expect { try f.manager.keyServerModify(KeyServerModifyRequest(name: "ks0", addresses: [kms.address(1)])) } throws: {
            ($0 as? ControlError)?.reason == Refusal.duplicateAddress.rawValue
        }
        // Pointed at a server that answers but lacks the array's key: refused, nothing changed.
        #expect { try f.manager.keyServerModify(KeyServerModifyRequest(name: "ks0", addresses: [kms.address(2)])) } throws: {
            ($0 as? ControlError)?.reason == Refusal.keyServerTestFailed.rawValue && "\($0)".contains("is missing there")
        }
        // Pointed at nothing: the test fails, nothing changed.
        #expect { try f.manager.keyServerModify(KeyServerModifyRequest(name: "ks0", addresses: ["nowhere.in-process:5696"])) } throws: {
            ($0 as? ControlError)?.code == .unreachable
        }
        #expect(try stored.keyServers().first { $0.name == "ks0" }?.addresses == [kms.address(0)])
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
    }

    @Test("with the AK kept locally, the only server holding the RDL token cannot be removed")
    func lastTokenHolderStays() async throws {
        let (f, _) = try await localArray(drives: 1, servers: 1)
        #expect(try await f.manager.rdlEnable(RDLEnableRequest(server: "ks0")).allSucceeded)
        #expect { try f.manager.keyServerRemove(name: "ks0") } throws: {
            ($0 as? ControlError)?.reason == Refusal.removalStrands.rawValue && "\($0)".contains("Rapid Data Locking token")
        }
    }

    @Test("a new key server gets the keys: a full copy, proven; the old servers removed, a boot unlocks from it alone")
    func addedServerGetsTheKey() async throws {
        let kms = try InProcessKeyServers(count: 3)
        let f = try LockManagerFixture(drives: 2, connector: kms)
        try kms.add(to: f.manager, [0, 1])
        #expect(try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-1")).allSucceeded)
        let keyID = try #require(try f.manager.keysList().keys.first?.keyID)
        let added = try #require(try kms.add(to: f.manager, [2]))
        #expect(added.note?.contains("the AK of key generation \(keyID) (a copy)") == true, "\(String(describing: added.note))")
        #expect(try kms.holds(2, keyID) == 1)
        // Both old servers at once: the new one keeps a copy, so the set may go; each destroys its copy.
        let removed = try f.manager.keyServerRemove(names: ["ks0", "ks1"])
        let left = (try kms.holds(0, keyID), try kms.holds(1, keyID))
        #expect(removed.servers.map(\.name) == ["ks2"] && left == (0, 0), "\(String(describing: removed.note))")
        try f.reboot()
        let boot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(boot.allSucceeded, "\(boot)")
    }

    @Test("a new key server of a threshold array gets a share of the same split: with the first two removed, the new one and the last old one unlock")
    func addedServerGetsAShare() async throws {
        let kms = try InProcessKeyServers(count: 4)
        let f = try LockManagerFixture(drives: 2, connector: kms)
        try kms.add(to: f.manager, [0, 1, 2])
        #expect(try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-1", threshold: 2)).allSucceeded)
        // One old server away: a new share's index must differ from every other's, so nothing is added.
        try kms.set(1) { $0.refuse = true }
        #expect { try kms.add(to: f.manager, [3]) } throws: { ($0 as? ControlError)?.code == .unreachable }
        #expect(try f.manager.keyServerShow().servers.count == 3)
        let keyID = try #require(try f.manager.keysList().keys.first?.keyID)
        #expect(try kms.holds(3, keyID) == 0)
        try kms.set(1) { $0.refuse = false }
        let added = try #require(try kms.add(to: f.manager, [3]))
        #expect(added.note?.contains("share 4 of the 2-of-4 split") == true, "\(String(describing: added.note))")
        _ = try f.manager.keyServerRemove(name: "ks0")
        _ = try f.manager.keyServerRemove(name: "ks1")
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
    }

    @Test("RDL with a local AK: a new server gets the token; then the first may go and a boot unlocks through the new one")
    func addedServerGetsTheToken() async throws {
        let kms = try InProcessKeyServers(count: 2)
        let f = try LockManagerFixture(drives: 1, connector: kms)
        try kms.add(to: f.manager, [0])
        #expect(try await f.setUpArray().allSucceeded)
        #expect(try await f.manager.rdlEnable(RDLEnableRequest(server: "ks0")).allSucceeded)
        let tokenID = try #require(try f.manager.rdlStatus().tokenID)
        let added = try #require(try kms.add(to: f.manager, [1]))
        #expect(added.note?.contains("the RDL token \(tokenID)") == true, "\(String(describing: added.note))")
        _ = try f.manager.keyServerRemove(name: "ks0")
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
    }

    @Test("retired generations are destroyed on every key server and leave the 128-limit; the active one and one a drive holds are refused; keep_retired destroys the older ones after a rekey")
    func destroyRetiredGenerations() async throws {
        let (f, kms) = try await kmipArray()
        for _ in 0..<2 { #expect(try await f.manager.rekey(RekeyRequest()).allSucceeded) }
        let keys = try f.manager.keysList().keys
        #expect(keys.map(\.state) == ["retired", "retired", "active"])
        let oldest = keys[0].keyID, active = keys[2].keyID
        #expect { try f.manager.keysDestroy(keyID: active) } throws: { ($0 as? ControlError)?.code == .badRequest }
        let after = try f.manager.keysDestroy(keyID: oldest)
        #expect(after.keys.first { $0.keyID == oldest }?.state == "destroyed")
        #expect(try kms.holds(0, oldest) == 0 && kms.holds(1, oldest) == 0)
        #expect(try kms.holds(0, keys[1].keyID) == 1, "the other retired one stays")
        // keep_retired = 0: the next rekey's finish destroys the one it retires and the one before.
        var configuration = f.manager.configuration
        configuration.keepRetiredGenerations = 0
        try f.manager.reconfigure(configuration)
        #expect(try await f.manager.rekey(RekeyRequest()).allSucceeded)
        #expect(try f.manager.keysList().keys.map(\.state) == ["destroyed", "destroyed", "destroyed", "active"])
        #expect(try kms.holds(0, active) == 0 && kms.holds(1, keys[1].keyID) == 0)
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
    }

    @Test("the 128-generation limit counts live generations: 127 destroyed ones do not stop a rekey, 127 retired ones do")
    func generationLimitCountsLiveOnes() async throws {
        for state in [KeyGenerationState.destroyed, .retired] {
            let f = try LockManagerFixture(drives: 1)
            #expect(try await f.setUpArray().allSucceeded)
            f.manager.releaseState()
            let store = try StateDatabase(directory: f.configuration.stateDirectory, access: .write)
            for _ in 0..<127 {
                try store.addGeneration(StoredKeyGeneration(keyID: UUID().uuidString.lowercased(), tag: "old", state: state,
                                                            provider: "local", locations: [], createdAt: f.time.wallTime))
            }
            store.close()
            f.restartManager()
            if state == .destroyed {
                #expect(try await f.manager.rekey(RekeyRequest()).allSucceeded)
            } else {
                await #expect { try await f.manager.rekey(RekeyRequest()) } throws: {
                    ($0 as? ControlError)?.reason == Refusal.generationLimit.rawValue
                }
            }
        }
    }

    @Test("a destroyed local generation's key file is removed")
    func destroyLocalGeneration() async throws {
        let f = try LockManagerFixture(drives: 1)
        #expect(try await f.setUpArray().allSucceeded)
        let first = try #require(try f.manager.keysList().keys.first?.keyID)
        #expect(try await f.manager.rekey(RekeyRequest()).allSucceeded)
        #expect(FileManager.default.fileExists(atPath: f.keyDirectory + "/\(first).ak"))
        _ = try f.manager.keysDestroy(keyID: first)
        #expect(!FileManager.default.fileExists(atPath: f.keyDirectory + "/\(first).ak"))
        #expect(try f.manager.keysList().keys.map(\.state) == ["destroyed", "active"])
    }

    @Test("custody converts through a journaled rekey: local → key servers → 2-of-3 shares → full copies → local, a boot unlocking after each")
    func custodyConversion() async throws {
        let (f, _) = try await localArray(drives: 2, servers: 3)
        let steps: [(KeyProviderKind, Int?, String)] = [(.kmip, nil, "kmip:"), (.kmip, 2, "kmip-share:"), (.kmip, 1, "kmip:"), (.local, nil, "local:")]
        for (provider, threshold, location) in steps {
            let rekeyed = try await f.manager.rekey(RekeyRequest(provider: provider, threshold: threshold))
            #expect(rekeyed.allSucceeded, "\(provider) \(String(describing: threshold)): \(rekeyed)")
            let active = try #require(try f.manager.keysList().keys.first { $0.state == "active" })
            #expect(active.provider == provider.rawValue)
            f.manager.releaseState()
            let stored = try StateDatabase(directory: f.configuration.stateDirectory, access: .read).generations().first { $0.keyID == active.keyID }
            #expect(stored?.locations.allSatisfy { $0.hasPrefix(location) } == true && stored?.locations.isEmpty == false,
                    "\(String(describing: stored?.locations))")
            #expect(stored?.locations.count == (provider == .local ? 1 : 3))
            try f.reboot()
            #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded, "after \(provider)")
        }
        await #expect { try await f.manager.rekey(RekeyRequest(provider: .local, threshold: 2)) } throws: {
            ($0 as? ControlError)?.code == .badRequest
        }
    }

    @Test("a key that vanished from a key server, or was revoked there, is noticed while running: KmipServerFault, critical, naming the server and the object")
    func vanishedKeyIsNoticed() async throws {
        let (f, kms) = try await kmipArray()
        let keyID = try #require(try f.manager.keysList().keys.first?.keyID)
        #expect(try f.manager.probeKeyServers().servers.allSatisfy { $0.reachable == true && $0.error == nil })
        #expect(try !f.manager.faults().open.contains { $0.name == "KmipServerFault" })
        let one = try kms.client(1)
        for id in try one.locate([.name(keyID)]) {
            try one.revoke(id, reason: .cessationOfOperation)
            try one.destroy(id)
        }
        let zero = try kms.client(0)
        for id in try zero.locate([.name(keyID)]) { try zero.revoke(id, reason: .keyCompromise) }
        let report = try f.manager.probeKeyServers()
        #expect(report.servers[1].error?.contains("the required key is unavailable: the AK of key generation \(keyID) is missing there") == true,
                "\(String(describing: report.servers[1].error))")
        #expect(report.servers[0].error?.contains("the required key is unavailable") == true && report.servers[0].error?.contains("Compromised") == true,
                "\(String(describing: report.servers[0].error))")
        let faults = try f.manager.faults().open.filter { $0.name == "KmipServerFault" }
        #expect(faults.map(\.object).sorted() == ["ks0", "ks1"] && faults.allSatisfy { $0.severity == "critical" })
    }

    /// The state directory lost: the manager restarted on an empty one, with the same key servers added again.
    private func loseState(_ f: LockManagerFixture, _ kms: InProcessKeyServers) throws {
        f.manager.releaseState()
        try FileManager.default.removeItem(atPath: f.configuration.stateDirectory.path)
        try f.reboot()
        try kms.add(to: f.manager)
    }

    private func succeeded(_ response: ControlResponse) -> Bool {
        if case .array(let report) = response { return report.allSucceeded }
        return false
    }

    @Test("a host that lost its state recovers the array from the key servers (RDL included): 0 failed authentications, then it unlocks")
    func recoverLostState() async throws {
        let kms = try InProcessKeyServers(count: 2)
        let f = try LockManagerFixture(drives: 3, connector: kms)
        try kms.add(to: f.manager)
        #expect(succeeded(await f.manager.respond(to: .setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-1")))))
        let first = try #require(try f.manager.keysList().keys.first?.keyID)
        #expect(try kms.holds(0, "sedlock-recovery:\(first)") == 1)
        #expect(succeeded(await f.manager.respond(to: .rdlEnable(RDLEnableRequest(server: "ks0")))))
        let active = try #require(try f.manager.keysList().keys.first { $0.state == "active" }?.keyID)
        #expect(try kms.holds(0, "sedlock-recovery:\(active)") == 1 && kms.holds(1, "sedlock-recovery:\(active)") == 1)
        // The record of the generation the drives left is gone: it can never be chosen.
        #expect(try kms.holds(0, "sedlock-recovery:\(first)") == 0 && kms.holds(1, "sedlock-recovery:\(first)") == 0)
        let before = (0..<3).map { f.driveFailures($0).tries }

        try loseState(f, kms)
        let recovered = await f.manager.respond(to: .recover(RecoverRequest(drives: f.addresses)))
        #expect(succeeded(recovered), "\(recovered)")
        #expect(try f.manager.rdlStatus().tokenID != nil, "RDL came back with the array")
        #expect((0..<3).map { f.driveFailures($0).tries } == before, "recover presented nothing to any drive")
        let unlock = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(unlock.allSucceeded && unlock.drives.allSatisfy { $0.attempts == 1 }, "\(unlock)")
        #expect((0..<3).allSatisfy { f.driveFailures($0).consecutive == 0 })
    }

    @Test("a host lost in the middle of a rekey: the record published before any drive moved names the new key; recover verifies both and the unlock finishes the rekey, at most one failed authentication per drive")
    func recoverMidRekey() async throws {
        let kms = try InProcessKeyServers(count: 2)
        let f = try LockManagerFixture(drives: 3, connector: kms)
        try kms.add(to: f.manager)
        #expect(succeeded(await f.manager.respond(to: .setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-1")))))
        let old = try #require(try f.manager.keysList().keys.first?.keyID)
        // Drive 1's answer is lost partway: drives 0 and 2 move to the new key, drive 1 is cut off.
        var plan = FaultPlan()
        plan.droppedResponses = 1
        plan.dropAfterResponses = 4
        f.drive(1).setFaults(plan)
        let rekey = await f.manager.respond(to: .rekey(RekeyRequest()))
        #expect(!succeeded(rekey), "the cut rekey finished: \(rekey)")
        let new = try #require(try f.manager.keysList().keys.first { $0.state == "pending" }?.keyID)
        #expect(try kms.holds(0, "sedlock-recovery:\(old)") == 1, "the record of the drives' key stays, naming the rekey")
        // (losing the state reboots the host: the power cycle ends the session the cut left open)

        try loseState(f, kms)
        let recovered = try await f.manager.recover(RecoverRequest(drives: f.addresses))
        #expect(recovered.allSucceeded && recovered.note.contains("a rekey to key \(new) was under way"), "\(recovered)")
        #expect(try f.manager.keysList().keys.map(\.state) == ["active", "pending"])
        try f.reboot()
        let unlock = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(unlock.allSucceeded, "\(unlock)")
        #expect(try f.manager.keysList().keys.map(\.keyID) == [old, new] && f.manager.keysList().keys.map(\.state) == ["retired", "active"])
        #expect((0..<3).allSatisfy { f.driveFailures($0).consecutive == 0 && f.driveFailures($0).tries <= 1 },
                "\((0..<3).map { f.driveFailures($0) })")
    }

    @Test("changes that ended before publishing the recovery record (a process killed after its last state write) leave the servers behind: the next unlock publishes it, and keys destroy brings it up to date before a key goes, so recover still finds the drives' key")
    func staleRecoveryRecordIsRepublished() async throws {
        let (f, kms) = try await kmipArray(drives: 2)
        // Setup through the manager itself, as a process killed right after it would leave it: no record.
        let first = try #require(try f.manager.keysList().keys.first?.keyID)
        #expect(try kms.holds(0, "sedlock-recovery:\(first)") == 0)
        _ = await f.manager.respond(to: .unlock(UnlockRequest(drives: .all)))
        #expect(try kms.holds(0, "sedlock-recovery:\(first)") == 1 && kms.holds(1, "sedlock-recovery:\(first)") == 1)
        // Current: another unlock leaves the very same object in place.
        let object = try kms.client(0).locate([.name("sedlock-recovery:\(first)")])
        _ = await f.manager.respond(to: .unlock(UnlockRequest(drives: .all)))
        #expect(try kms.client(0).locate([.name("sedlock-recovery:\(first)")]) == object, "a current record is not sent again")

        // A rekey that finished without its closing publish: the servers still name the old key (with the rekey under way).
        #expect(try await f.manager.rekey(RekeyRequest()).allSucceeded)
        let second = try #require(try f.manager.keysList().keys.first { $0.state == "active" }?.keyID)
        #expect(try kms.holds(0, "sedlock-recovery:\(first)") == 1 && kms.holds(0, "sedlock-recovery:\(second)") == 0)
        _ = try f.manager.keysRetire(keyID: first)
        _ = try f.manager.keysDestroy(keyID: first)
        for n in 0..<2 {
            #expect(try kms.holds(n, "sedlock-recovery:\(second)") == 1 && kms.holds(n, "sedlock-recovery:\(first)") == 0 && kms.holds(n, first) == 0)
        }
        // And a rekey finished by nothing but the unlock after it.
        #expect(try await f.manager.rekey(RekeyRequest()).allSucceeded)
        let third = try #require(try f.manager.keysList().keys.first { $0.state == "active" }?.keyID)
        _ = await f.manager.respond(to: .unlock(UnlockRequest(drives: .all)))
        #expect(try kms.holds(0, "sedlock-recovery:\(third)") == 1 && kms.holds(0, "sedlock-recovery:\(second)") == 0)

        try loseState(f, kms)
        let recovered = try await f.manager.recover(RecoverRequest(drives: f.addresses))
        #expect(recovered.allSucceeded && recovered.drives.allSatisfy { $0.detail.contains(third) }, "\(recovered)")
    }

    @Test("an array whose key is local still has a record on the key servers it uses (for the RDL token or none): it says the key is local, so recover on a new host says why it cannot, instead of taking an older record of a key the drives left")
    func localKeyRecordStopsRecover() async throws {
        let (f, kms) = try await kmipArray(drives: 2)
        let kept = try #require(try f.manager.keysList().keys.first?.keyID)
        #expect(succeeded(await f.manager.respond(to: .rekey(RekeyRequest(provider: .local)))))
        let local = try #require(try f.manager.keysList().keys.first { $0.state == "active" }?.keyID)
        #expect(try kms.holds(0, "sedlock-recovery:\(local)") == 1 && kms.holds(0, "sedlock-recovery:\(kept)") == 0)
        try loseState(f, kms)
        await #expect { try await f.manager.recover(RecoverRequest(drives: f.addresses)) } throws: { error in
            guard let error = error as? ControlError else { return false }
            return error.code == .held && error.message.contains("local key file") && error.message.contains(local)
        }
    }

    @Test("keys restore on a state put back from a backup older than a rekey adopts the generation it does not know from the newest recovery record: verified, nothing presented to a drive, then the unlock has 0 failed authentications")
    func restoreAdoptsNewerGeneration() async throws {
        let kms = try InProcessKeyServers(count: 2)
        let f = try LockManagerFixture(drives: 3, connector: kms)
        try kms.add(to: f.manager)
        #expect(succeeded(await f.manager.respond(to: .setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-1")))))
        let old = try #require(try f.manager.keysList().keys.first?.keyID)
        let state = f.configuration.stateDirectory.path
        let backup = f.root + "/backup"
        f.manager.releaseState()
        try FileManager.default.copyItem(atPath: state, toPath: backup)
        #expect(succeeded(await f.manager.respond(to: .rekey(RekeyRequest()))))
        let new = try #require(try f.manager.keysList().keys.first { $0.state == "active" }?.keyID)
        #expect(new != old)
        // The host's disk comes back from the backup: the state names the key the drives left.
        f.manager.releaseState()
        try FileManager.default.removeItem(atPath: state)
        try FileManager.default.copyItem(atPath: backup, toPath: state)
        try f.reboot()
        #expect(try f.manager.keysList().keys.map(\.keyID) == [old])
        let before = (0..<3).map { f.driveFailures($0).tries }
        let restored = try f.manager.keysRestore(KeysRestoreRequest(all: true))
        let row = try #require(restored.keys.first { $0.keyID == new }, "\(restored)")
        #expect(row.detail.contains("adopted from the newest recovery record: 3 drive(s) moved from key \(old)") && row.inKeytable, "\(row)")
        #expect(try f.manager.keysList().keys.map(\.keyID) == [old, new] && f.manager.keysList().keys.map(\.state) == ["retired", "active"])
        #expect((0..<3).map { f.driveFailures($0).tries } == before, "keys restore presented nothing to a drive")
        try f.reboot()
        let unlock = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(unlock.allSucceeded, "\(unlock)")
        #expect((0..<3).map { f.driveFailures($0).tries } == before, "0 failed authentications")
        // Once adopted, the record names a generation the state knows: nothing more to adopt.
        let again = try f.manager.keysRestore(KeysRestoreRequest(all: true))
        #expect(!again.keys.contains { $0.detail.contains("adopted") } && again.keys.count == 2, "\(again)")
    }

    @Test("keys restore does not adopt a record that leaves out a drive of the state, saying which, with nothing changed")
    func restoreRefusesPartialRecord() async throws {
        let kms = try InProcessKeyServers(count: 1)
        let f = try LockManagerFixture(drives: 3, connector: kms)
        try kms.add(to: f.manager)
        let two = Array(f.addresses.prefix(2))
        #expect(succeeded(await f.manager.respond(to: .setup(SetupRequest(drives: two, provider: .kmip, keyTag: "array-1")))))
        let state = f.configuration.stateDirectory.path
        f.manager.releaseState()
        try FileManager.default.copyItem(atPath: state, toPath: f.root + "/backup")
        // After the backup: drive 2 joins, the array rekeys, then drive 2 is taken out again.
        #expect(succeeded(await f.manager.respond(to: .arrayAdd(ArrayAddRequest(address: f.addresses[2])))))
        #expect(succeeded(await f.manager.respond(to: .rekey(RekeyRequest()))))
        #expect(succeeded(await f.manager.respond(to: .arrayRemove(address: f.addresses[0], revert: false))))
        let new = try #require(try f.manager.keysList().keys.first { $0.state == "active" }?.keyID)
        f.manager.releaseState()
        try FileManager.default.removeItem(atPath: state)
        try FileManager.default.copyItem(atPath: f.root + "/backup", toPath: state)
        try f.reboot()
        let listedBefore = try f.manager.keysList().keys.map(\.keyID)
        let restored = try f.manager.keysRestore(KeysRestoreRequest(all: true))
        let row = try #require(restored.keys.first { $0.keyID == new }, "\(restored)")
        #expect(row.detail.contains("does not list \(f.addresses[0])") && row.detail.contains("nothing was changed") && !row.inKeytable, "\(row)")
        #expect(try f.manager.keysList().keys.map(\.keyID) == listedBefore)
    }

    @Test("recover of a threshold array; a drive no record lists is refused with nothing presented to it; a state that holds an array is not recovered over")
    func recoverThresholdArray() async throws {
        let kms = try InProcessKeyServers(count: 3)
        let f = try LockManagerFixture(drives: 3, connector: kms)
        try kms.add(to: f.manager)
        let two = Array(f.addresses.prefix(2))
        #expect(succeeded(await f.manager.respond(to: .setup(SetupRequest(drives: two, provider: .kmip, keyTag: "array-1", threshold: 2)))))
        await #expect { try await f.manager.recover(RecoverRequest(drives: two)) } throws: { ($0 as? ControlError)?.code == .badRequest }
        try loseState(f, kms)
        let report = try await f.manager.recover(RecoverRequest(drives: f.addresses))
        #expect(report.drives.map(\.result) == [.setUp, .setUp, .keyUnavailable], "\(report)")
        #expect(f.driveFailures(2).tries == 0)
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
        #expect(try await f.manager.status().drives.map(\.address) == two)
    }

    @Test("key locations keep their recorded text, server names with colons included")
    func keyLocations() throws {
        let recorded = ["local:/var/lib/sedlock/keys/k.ak", "kmip:10.0.0.1:5696:42", "kmip-share:ks-b:0f3a"]
        let parsed = KeyLocation.parse(recorded)
        #expect(parsed == [.localFile(path: "/var/lib/sedlock/keys/k.ak"), .keyServer(server: "10.0.0.1:5696", objectID: "42"),
                           .keyServerShare(server: "ks-b", objectID: "0f3a")])
        #expect(parsed.map(\.description) == recorded)
        #expect(parsed[0].keyDirectory == "/var/lib/sedlock/keys" && parsed[1].keyDirectory == nil)
        #expect(KeyLocation.parse(["kmip:", "kmip:server-only", "local:", "s3:bucket"]).isEmpty)
    }
}
