import ControlAPI
import Foundation
import Keys
import KMIP
import KMIPTestSupport
import LockManager
import Testing

/// The kmip key provider against two real PyKMIP servers that trust the same client.
@Suite("Lock manager with PyKMIP key servers", .serialized)
struct KMIPProviderTests {
    @Test("setup stores the AK on both servers; one down at unlock, the other serves; query, restore and destroyed keys")
    func twoServers() async throws {
        let first = try PyKMIPServer()
        let second = try PyKMIPServer()
        let tls = try first.client("array-1")
        let bundle = first.directory + "/both-cas.pem"
        try shell("cat '\(first.pki.caPath)' '\(second.pki.caPath)' > '\(bundle)'")
        try shell("cp '\(bundle)' '\(second.directory)/ca.pem'")
        second.stop()
        let secondRestarted = try second.restart()

        let f = try LockManagerFixture(drives: 2)
        let add = { (name: String, server: PyKMIPServer) in
            try f.manager.keyServerAdd(KeyServerAddRequest(addresses: [server.address.description], name: name,
                                                           certificatePath: tls.certificatePath, privateKeyPath: tls.privateKeyPath,
                                                           caPath: bundle))
        }
        _ = try add("ks-a", first)
        let both = try add("ks-b", secondRestarted)
        #expect(both.servers.map(\.name) == ["ks-a", "ks-b"])
        // A server that fails its test is not added.
        await #expect { try f.manager.keyServerAdd(KeyServerAddRequest(
            addresses: ["127.0.0.1:\(try PyKMIPServer.freePort())"], name: "nobody", certificatePath: tls.certificatePath,
            privateKeyPath: tls.privateKeyPath, caPath: bundle)) } throws: { ($0 as? ControlError)?.code == .unreachable }

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
        var clientTLS = tls
        clientTLS.caPath = bundle
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
}
