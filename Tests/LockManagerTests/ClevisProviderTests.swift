import ControlAPI
import Foundation
import LockManager
import Platform
import Testing
import TestSupport

/// The clevis key provider against Debian's real clevis and tang: tang servers on loopback, one
/// tangd per connection, stopped to play a server that is down.
@Suite("Keys sealed by clevis (real clevis, real tang)", .serialized)
struct ClevisProviderTests {
    private func setup(_ f: LockManagerFixture, _ policy: ClevisPolicy) async throws -> ArrayReport {
        var request = SetupRequest(drives: f.addresses, provider: .clevis, keyTag: "array-clevis")
        request.clevis = policy
        return try await f.manager.setup(request)
    }

    private func sealedFile(_ f: LockManagerFixture) throws -> String {
        let files = try FileManager.default.contentsOfDirectory(atPath: f.keyDirectory).filter { $0.hasSuffix(".jwe") }
        guard let file = files.first, files.count == 1 else { throw FixtureFailure("expected one sealed key, found \(files)") }
        return f.keyDirectory + "/" + file
    }

    @Test("setup seals the AK with one tang server: a root-only JWE that holds no copy of the key; after a reboot the unlock opens every drive with one attempt each; with tang down it holds, 0 attempts; back up, it opens")
    func tangRoundTrip() async throws {
        let tang = try TangServer()
        let f = try LockManagerFixture(drives: 2)
        let report = try await setup(f, ClevisPolicy(pin: "tang", config: tang.clevisConfig))
        #expect(report.allSucceeded, "\(report)")
        let path = try sealedFile(f)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o400)
        let sealed = try Data(contentsOf: URL(fileURLWithPath: path))
        let opened = try BoundedCommand.run("/usr/bin/clevis", ["decrypt"], input: [UInt8](sealed), deadline: .never, seconds: 10)
        #expect(opened.status == 0 && opened.output.count == 32)
        #expect(sealed.range(of: Data(opened.output)) == nil && !String(decoding: sealed, as: UTF8.self).contains(Data(opened.output).base64EncodedString()))
        let keys = try f.manager.keysList().keys
        #expect(keys.map(\.provider) == ["clevis"])

        try f.reboot()
        tang.stop()
        let held = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(!held.allSucceeded && held.drives.allSatisfy { $0.attempts == 0 && $0.result == .keyUnavailable }, "\(held)")
        #expect(held.drives.first?.detail.contains("clevis decrypt") == true, "\(held)")
        #expect((0..<2).allSatisfy { f.driveFailures($0).tries == 0 })
        try tang.start()
        let unlocked = try await f.manager.unlock(UnlockRequest(drives: .all))
        #expect(unlocked.allSucceeded && unlocked.drives.allSatisfy { $0.attempts == 1 }, "\(unlocked)")
    }

    @Test("an sss threshold of tang servers, 2 of 3: one down still unlocks; two down hold with 0 attempts")
    func sssThreshold() async throws {
        let servers = try (0..<3).map { _ in try TangServer() }
        let config = #"{"t":2,"pins":{"tang":["# + servers.map(\.clevisConfig).joined(separator: ",") + "]}}"
        let f = try LockManagerFixture(drives: 2)
        #expect(try await setup(f, ClevisPolicy(pin: "sss", config: config)).allSucceeded)
        servers[0].stop()
        try f.reboot()
        let one = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(one.allSucceeded, "\(one)")
        servers[1].stop()
        try f.reboot()
        let two = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(two.drives.allSatisfy { $0.attempts == 0 && $0.result == .keyUnavailable }, "\(two)")
        #expect((0..<2).allSatisfy { f.driveFailures($0).tries == 0 })
    }

    @Test("a rekey keeps the policy; custody converts clevis → local → clevis on another tang server, a reboot unlocking after each")
    func rekeyAndConvert() async throws {
        let first = try TangServer(), second = try TangServer()
        let f = try LockManagerFixture(drives: 2)
        #expect(try await setup(f, ClevisPolicy(pin: "tang", config: first.clevisConfig)).allSucceeded)
        #expect(try await f.manager.rekey(RekeyRequest()).allSucceeded)
        let kept = try #require(try f.manager.keysList().keys.first { $0.state == "active" })
        #expect(kept.provider == "clevis")
        #expect(try await f.manager.rekey(RekeyRequest(provider: .local)).allSucceeded)
        try f.reboot()
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all, boot: true)).allSucceeded)
        var back = RekeyRequest(provider: .clevis)
        back.clevis = ClevisPolicy(pin: "tang", config: second.clevisConfig)
        #expect(try await f.manager.rekey(back).allSucceeded)
        // Only the second server can open the active key now.
        first.stop()
        try f.reboot()
        let unlocked = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(unlocked.allSucceeded && unlocked.drives.allSatisfy { $0.attempts == 1 }, "\(unlocked)")
        #expect(try f.manager.keysList().keys.map(\.provider) == ["clevis", "clevis", "local", "clevis"])
    }

    @Test("a tang server that accepts and never answers costs the command timeout and no more: clevis and its children are killed, the unlock holds with 0 attempts")
    func hungTangServer() async throws {
        let tang = try TangServer()
        let f = try LockManagerFixture(drives: 1)
        #expect(try await setup(f, ClevisPolicy(pin: "tang", config: tang.clevisConfig)).allSucceeded)
        try f.reboot()
        tang.hang(true)
        let held = try await f.manager.unlock(UnlockRequest(drives: .all))
        #expect(held.drives.allSatisfy { $0.attempts == 0 && $0.result == .keyUnavailable && $0.detail.contains("did not finish within") },
                "\(held)")
        // Killed ones wait as zombies for whoever reaps them (init, here this test's process): only live ones count.
        let processes = try ProcessRunner.run("/usr/bin/ps", ["-eo", "stat=,args="]).output.split(separator: "\n")
        let left = processes.filter { $0.contains("clevis-decrypt") || $0.contains("curl -sfg") }.filter { !$0.hasPrefix("Z") }
        #expect(left.isEmpty, "clevis processes outlived their deadline: \(left)")
        tang.hang(false)
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all)).allSucceeded)
    }

    @Test("a policy whose tang server is down, or a policy clevis cannot read, makes no key: setup refuses before any drive is touched")
    func refusedPolicy() async throws {
        let tang = try TangServer()
        tang.stop()
        let f = try LockManagerFixture(drives: 2)
        await #expect { try await setup(f, ClevisPolicy(pin: "tang", config: tang.clevisConfig)) } throws: {
            ($0 as? ControlError)?.code == .unreachable
        }
        await #expect { try await setup(f, ClevisPolicy(pin: "tang", config: "not json")) } throws: {
            ($0 as? ControlError)?.message.contains("JSON object") == true
        }
        await #expect { try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .clevis)) } throws: {
            ($0 as? ControlError)?.message.contains("needs its policy") == true
        }
        #expect((0..<2).allSatisfy { !f.drive($0).statusReport(index: $0).owned })
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: f.keyDirectory)) ?? []).isEmpty)
    }

    @Test("a sealed file that is missing, changed by others or not a JWE is refused at once (not waited for); the location's text form keeps the policy")
    func sealedFileChecks() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("clevis-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let policy = ClevisPolicy(pin: "sss", config: #"{"t":1,"pins":{"tang":[{"url":"http://a:1"}]}}"#)
        let source = ClevisKeySource(command: "/usr/bin/clevis", directory: directory, policy: nil, timeout: 5)
        let id = UUID().uuidString.lowercased()
        guard case .refused(let missing) = source.fetch(keyID: id, deadline: .never) else { Issue.record("a missing file is waited for"); return }
        #expect(missing.contains("not there"))
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: directory + "/\(id).jwe"))
        chmod(directory + "/\(id).jwe", 0o400)
        guard case .refused(let garbage) = source.fetch(keyID: id, deadline: .never) else { Issue.record("garbage accepted"); return }
        #expect(garbage.contains("not a clevis-sealed key"))
        chmod(directory + "/\(id).jwe", 0o666)
        guard case .refused(let writable) = source.fetch(keyID: id, deadline: .never) else { Issue.record("a writable file accepted"); return }
        #expect(writable.contains("others may change it"))

        let location = KeyLocation.clevisFile(path: "/var/lib/sedlock/keys:odd/\(id).jwe", policy: policy)
        #expect(KeyLocation(recorded: location.description) == location)
        #expect(KeyLocation(recorded: "clevis:tang:!!:/x") == nil && KeyLocation(recorded: "clevis:tang") == nil)
        #expect(ClevisPolicy(pin: "Tang;rm", config: "{}").problem != nil && ClevisPolicy(pin: "tpm2", config: "[]").problem != nil)
        #expect(ClevisPolicy(pin: "tpm2", config: "{}").problem == nil)
    }
}
