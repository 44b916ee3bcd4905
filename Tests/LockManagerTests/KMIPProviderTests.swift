import ControlAPI
import Foundation
import Keys
import KMIP
import KMIPTestSupport
import LockManager
import LockState
import TestSupport
import Testing

/// The kmip key provider against two real PyKMIP servers that trust the same client.
@Suite("Lock manager with PyKMIP key servers", .serialized)
struct KMIPProviderTests {
    @Test("setup stores the AK on both servers; one down at unlock, the other serves; query, restore and destroyed keys")
    func twoServers() async throws {
        let (servers, tls) = try PyKMIPServer.trustingOneClient(count: 2, commonName: "array-1")
        let first = servers[0], secondRestarted = servers[1]
        let bundle = tls.caPath

        let f = try LockManagerFixture(drives: 2)
        let add = { (name: String, server: PyKMIPServer) in
            try f.manager.keyServerAdd(KeyServerAddRequest(addresses: [server.address.description], name: name,
                                                           certificatePath: tls.certificatePath, privateKeyPath: tls.privateKeyPath,
                                                           caPath: bundle))
        }
        _ = try add("ks-a", first)
        let both = try add("ks-b", secondRestarted)
        #expect(both.servers.map(\.name) == ["ks-a", "ks-b"])
        // The state records the certificates' fingerprints (the CA bundle holds two), never the private key.
        f.manager.releaseState()
        let recorded = try StateDatabase(directory: f.configuration.stateDirectory, access: .read).certificates()
        #expect(recorded.filter { $0.role == "client" }.count == 1 && recorded.filter { $0.role == "ca" }.count == 2)
        #expect(recorded.allSatisfy { $0.fingerprint.count == 95 && $0.notAfter != nil })
        let database = try Data(contentsOf: URL(fileURLWithPath: f.configuration.stateDirectory.databasePath))
        let keyText = try String(contentsOfFile: tls.privateKeyPath, encoding: .utf8)
        let keyBody = try #require(keyText.split(separator: "\n").dropFirst().first)
        #expect(database.range(of: Data(keyBody.utf8)) == nil)
        // A server that fails its test is not added.
        await #expect { try f.manager.keyServerAdd(KeyServerAddRequest(
            addresses: ["127.0.0.1:\(try PyKMIPServer.freePort())"], name: "nobody", certificatePath: tls.certificatePath,
            privateKeyPath: tls.privateKeyPath, caPath: bundle)) } throws: {
                ($0 as? ControlError)?.code == .unreachable && ($0 as? ControlError)?.reason == Refusal.keyServerTestFailed.rawValue
            }

        let setup = try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-1"))
        #expect(setup.allSucceeded, "\(setup)")
        let keyID = try #require(try f.manager.keysList().keys.first?.keyID)
        #expect(FileManager.default.fileExists(atPath: f.keyDirectory) == false)  // nothing kept locally

        let query = try f.manager.keyServerQuery()
        #expect(query.servers.allSatisfy { $0.reachable == true && $0.keys?.contains { $0.keyID == keyID && $0.tag == "array-1" && $0.inKeytable } == true })

        // Reboot with the first server down: the key comes from the second.
        first.stop()
        try f.reboot()
        let unlock = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(unlock.allSucceeded, "\(unlock)")
        let status = try f.manager.keyServerStatus()
        #expect(status.servers.map(\.reachable) == [false, true])
        // status shows it at a glance, with the KmipServerFault the test raised.
        let glance = try await f.manager.status()
        #expect(glance.keyServers.map(\.reachable) == [false, true])
        #expect(glance.faults.map(\.name) == ["KmipServerFault"] && glance.faults.first?.object == "ks-a")

        // A rekey needs every key server: with the first down, the new key is taken back and nothing changes.
        await #expect { try await f.manager.rekey(RekeyRequest()) } throws: { ($0 as? ControlError)?.code == .unreachable }
        #expect(try f.manager.keysList().keys.count == 1)
        let firstAgain = try first.restart()
        let rekeyed = try await f.manager.rekey(RekeyRequest())
        #expect(rekeyed.allSucceeded, "\(rekeyed)")
        let newKeyID = try #require(try f.manager.keysList().keys.first { $0.state == "active" }?.keyID)
        #expect(newKeyID != keyID)

        // The key destroyed on the second server: query shows it gone there, restore --all still
        // finds it on the first; destroyed there too, restore --all drops it.
        let clientTLS = tls
        func destroy(on server: PyKMIPServer) throws {
            let client = KMIPClient(connection: KMIPConnection(server: server.address, configuration: clientTLS))
            for id in try client.locate([.name(newKeyID)]) {
                try client.revoke(id, reason: .cessationOfOperation)
                try client.destroy(id)
            }
        }
        try destroy(on: secondRestarted)
        let afterDestroy = try f.manager.keyServerQuery()
        #expect(afterDestroy.servers[1].keys?.contains { $0.keyID == newKeyID } == false)
        #expect(afterDestroy.servers[0].keys?.contains { $0.keyID == newKeyID } == true)
        #expect(try f.manager.keysRestore(KeysRestoreRequest(all: true)).keys.first { $0.keyID == newKeyID }?.inKeytable == true)
        try destroy(on: firstAgain)
        let restore = try f.manager.keysRestore(KeysRestoreRequest(all: true))
        let dropped = try #require(restore.keys.first { $0.keyID == newKeyID })
        #expect(!dropped.inKeytable && dropped.detail.contains("not on any key server"))
        try f.reboot()
        let noKey = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(noKey.drives.allSatisfy { $0.result == .keyUnavailable && $0.attempts == 0 })
        #expect((0..<2).allSatisfy { f.driveFailures($0).consecutive == 0 })
    }

    @Test("threshold 2 of 3: each server holds a share pycryptodome can recombine; one down unlocks, two down stays locked and says why")
    func thresholdShares() async throws {
        let (servers, tls) = try PyKMIPServer.trustingOneClient(count: 3, commonName: "array-2")
        let f = try LockManagerFixture(drives: 2)
        for (n, server) in servers.enumerated() {
            _ = try f.manager.keyServerAdd(KeyServerAddRequest(addresses: [server.address.description], name: "ks-\(n)",
                                                               certificatePath: tls.certificatePath,
                                                               privateKeyPath: tls.privateKeyPath, caPath: tls.caPath))
        }
        await #expect { try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, threshold: 4)) } throws: {
            ($0 as? ControlError)?.code == .badRequest
        }
        let setup = try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, threshold: 2))
        #expect(setup.allSucceeded, "\(setup)")
        let keyID = try #require(try f.manager.keysList().keys.first?.keyID)

        // Every server holds a 35-byte share, none the key; pycryptodome rebuilds the AK from two of them,
        // and that AK gives the PIN whose check value the state recorded.
        var shares: [[UInt8]] = []
        for server in servers {
            let client = KMIPClient(connection: KMIPConnection(server: server.address, configuration: tls))
            let ids = try client.locate([.name(keyID)])
            let object = try client.get(try #require(ids.first))
            #expect(object.material.count == 35)
            shares.append(object.material.copyBytes())
        }
        func hex(_ b: ArraySlice<UInt8>) -> String { b.map { String(format: "%02x", $0) }.joined() }
        let combine = """
        import sys
        from Crypto.Protocol.SecretSharing import Shamir
        parts = [a.split(":") for a in sys.argv[1:]]
        print(b"".join(Shamir.combine([(int(p[0]), bytes.fromhex(p[1 + b])) for p in parts]) for b in range(2)).hex())
        """
        let arguments = [shares[2], shares[0]].map { "\($0[2]):\(hex($0[3..<19])):\(hex($0[19..<35]))" }
        let python = packageRoot.appendingPathComponent(".venv/bin/python").path
        let akHex = try ProcessRunner.run(python, ["-c", combine] + arguments).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(akHex.count == 64)
        let ak = Secret(stride(from: 0, to: akHex.count, by: 2).map {
            UInt8(akHex[akHex.index(akHex.startIndex, offsetBy: $0)..<akHex.index(akHex.startIndex, offsetBy: $0 + 2)], radix: 16) ?? 0
        })
        let state = try StateDatabase(directory: f.configuration.stateDirectory, access: .read)
        let drive = try #require(try state.drives().first)
        let generation = try #require(try state.generations().first?.id)
        let pin = try DrivePIN.derive(ak: ak, driveIdentity: drive.identity, authority: .admin1)
        let driveID = try #require(drive.id)
        let stored = try #require(try state.checkValue(driveID: driveID, generationID: generation, authority: "Admin1"))
        #expect(DrivePIN.matches(pin, checkValue: Array(stored.value)))

        servers[1].stop()
        try f.reboot()
        let oneDown = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(oneDown.allSucceeded, "\(oneDown)")
        servers[2].stop()
        try f.reboot()
        let twoDown = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(twoDown.drives.allSatisfy { $0.result == .keyUnavailable && $0.attempts == 0 && $0.detail.contains("1 of the 2 key shares") },
                "\(twoDown)")
    }
}

extension KMIPProviderTests {
    @Test("PyKMIP: a server added after setup gets the AK (registered, activated, proven); with the first one stopped, a boot unlocks from it")
    func addedPyKMIPServerGetsTheKey() async throws {
        let (servers, tls) = try PyKMIPServer.trustingOneClient(count: 2, commonName: "array-2")
        let f = try LockManagerFixture(drives: 1)
        func add(_ name: String, _ server: PyKMIPServer) throws -> KeyServerReport {
            try f.manager.keyServerAdd(KeyServerAddRequest(addresses: [server.address.description], name: name,
                                                           certificatePath: tls.certificatePath, privateKeyPath: tls.privateKeyPath,
                                                           caPath: tls.caPath))
        }
        _ = try add("ks-a", servers[0])
        #expect(try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-2")).allSucceeded)
        let keyID = try #require(try f.manager.keysList().keys.first?.keyID)
        let added = try add("ks-b", servers[1])
        #expect(added.note?.contains("the AK of key generation \(keyID) (a copy)") == true, "\(String(describing: added.note))")
        let onB = KMIPClient(connection: KMIPConnection(server: servers[1].address, configuration: tls))
        #expect(try onB.locate([.name(keyID)]).count == 1)
        servers[0].stop()
        try f.reboot()
        let boot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(boot.allSucceeded, "\(boot)")
    }
}

extension KMIPProviderTests {
    @Test("PyKMIP: two servers added together (all or none), setup; a renewed client certificate is taken by keyserver modify on each; one of another identity is refused with nothing changed; a boot unlocks with the renewed one")
    func addTogetherThenRenewCertificate() async throws {
        let (servers, tls) = try PyKMIPServer.trustingOneClient(count: 2, commonName: "array-3")
        let f = try LockManagerFixture(drives: 1)
        func request(_ name: String, _ address: String) -> KeyServerAddRequest {
            KeyServerAddRequest(addresses: [address], name: name, certificatePath: tls.certificatePath,
                                privateKeyPath: tls.privateKeyPath, caPath: tls.caPath)
        }
        // All or none: a second server that cannot be reached keeps the first out too.
        let nobody = "127.0.0.1:\(try PyKMIPServer.freePort())"
        await #expect(throws: ControlError.self) {
            try f.manager.keyServersAdd([request("ks-a", servers[0].address.description), request("nobody", nobody)])
        }
        #expect(try f.manager.keyServerShow().servers.isEmpty)
        let added = try f.manager.keyServersAdd([request("ks-a", servers[0].address.description), request("ks-b", servers[1].address.description)])
        #expect(added.servers.map(\.name) == ["ks-a", "ks-b"])
        #expect(try await f.manager.setup(SetupRequest(drives: f.addresses, provider: .kmip, keyTag: "array-3")).allSucceeded)

        // The client certificate renewed (same CA, same identity): each server takes it once it
        // passes its test and still shows the array's objects to it.
        let (renewed, renewedKey) = try servers[0].pki.issue("client-array-3-renewed", commonName: "array-3",
                                                             extensions: "extendedKeyUsage=clientAuth")
        for name in ["ks-a", "ks-b"] {
            let report = try f.manager.keyServerModify(KeyServerModifyRequest(name: name, certificatePath: renewed, privateKeyPath: renewedKey))
            #expect(report.note?.contains("holding the array's") == true, "\(String(describing: report.note))")
        }
        // Another identity of the same CA reaches the server, but PyKMIP shows it none of the
        // array's objects (they belong to array-3): refused, the renewed certificate kept.
        let (other, otherKey) = try servers[0].pki.issue("client-intruder", commonName: "intruder", extensions: "extendedKeyUsage=clientAuth")
        do {
            _ = try f.manager.keyServerModify(KeyServerModifyRequest(name: "ks-a", certificatePath: other, privateKeyPath: otherKey))
            Issue.record("a certificate of another identity was taken")
        } catch {
            #expect(error.message.contains("nothing was changed"), "\(error.message)")
        }
        let shown = try f.manager.keyServerShow().servers
        #expect(shown.allSatisfy { $0.certificatePath == renewed }, "\(shown.map(\.certificatePath))")

        // The old certificate's files gone: the boot needs the renewed ones, from either server.
        try FileManager.default.removeItem(atPath: tls.certificatePath)
        servers[0].stop()
        try f.reboot()
        let boot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(boot.allSucceeded, "\(boot)")
    }
}
