import ControlAPI
import Foundation
import KMIP
import KMIPTestSupport
import Keys
import LockManager
import Opal
import TestSupport
import Testing

/// Rapid Data Locking with the token on a real PyKMIP server.
@Suite("Rapid Data Locking with PyKMIP", .serialized)
struct RDLPyKMIPTests {
    @Test("enable, reboot unlocked; the server's CA swapped (client no longer trusted): locked with 0 attempts; restored: unlocked; token revoked and destroyed: locked for good")
    func caSwapAndDestroyedToken() async throws {
        var server = try PyKMIPServer()
        let tls = try server.client("rdl-array")
        let f = try LockManagerFixture(drives: 2)
        _ = try f.manager.keyServerAdd(KeyServerAddRequest(addresses: [server.address.description], name: "pykmip",
                                                           certificatePath: tls.certificatePath, privateKeyPath: tls.privateKeyPath,
                                                           caPath: tls.caPath))
        #expect(try await f.setUpArray().allSucceeded)
        let test = try f.manager.rdlTest(server: "pykmip")
        #expect(test.test?.ok == true, "\(String(describing: test.test))")
        let enable = try await f.manager.rdlEnable(RDLEnableRequest(server: "pykmip"))
        #expect(enable.allSucceeded, "\(enable)")
        let tokenID = try #require(try f.manager.rdlStatus().tokenID)

        try f.reboot()
        let firstBoot = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(firstBoot.allSucceeded)
        // PyKMIP takes the batch too: the version negotiation, then Get + GetAttributes of the token by its identifier.
        #expect(firstBoot.keyServerRoundTrips == 2 && firstBoot.keyServerConnections == 1, "\(firstBoot)")

        // A thief with the drive and the AK (the key file) but not the token: the PIN the AK alone
        // gives is refused by the drive; the AK followed by the token (read from the server) opens it.
        try f.reboot()
        let activeKey = try #require(try f.manager.keysList().keys.first { $0.state == "active" }?.keyID)
        let fields = try String(contentsOfFile: f.keyDirectory + "/\(activeKey).ak", encoding: .utf8).split(separator: " ")
        let ak = Secret(Array(try #require(Data(base64Encoded: fields[3].trimmingCharacters(in: .whitespacesAndNewlines)))))
        let id = f.drive(0).identity
        let identity = DrivePIN.driveIdentity(wwn: id.wwn, serial: id.serial)
        let opal = try OpalDrive(transport: f.drives.transport(0), timeout: 5)
        #expect(throws: OpalError.self) {
            try opal.setLocked(false, range: 0, as: .admin(1),
                               pin: try DrivePIN.derive(ak: ak, driveIdentity: identity, authority: .admin1))
        }
        #expect(f.isLocked(0))
        let reader = KMIPClient(connection: KMIPConnection(server: server.address, configuration: tls))
        let tokenObject = try #require(try reader.locate([.name(tokenID)]).first)
        let token = try reader.get(tokenObject).material
        try opal.setLocked(false, range: 0, as: .admin(1),
                           pin: try DrivePIN.derive(ak: ak, token: token, driveIdentity: identity, authority: .admin1))
        #expect(!f.isLocked(0))
        #expect(try await f.manager.unlock(UnlockRequest(drives: .all)).allSucceeded)

        // The server now trusts another CA only: the appliance's certificate is refused.
        let original = server.directory + "/ca.pem"
        try shell("cp '\(original)' '\(server.directory)/ca.pem.saved'")
        let other = try TestPKI(directory: server.directory, caName: "other-ca")
        try shell("cp '\(other.caPath)' '\(original)'")
        server.stop()
        server = try server.restart()
        try f.reboot()
        let refused = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(refused.drives.allSatisfy { $0.result == .keyUnavailable && $0.attempts == 0 }, "\(refused)")
        #expect((0..<2).allSatisfy { f.driveFailures($0).consecutive == 0 })
        #expect(try f.manager.rdlTest(server: "pykmip").test?.ok == false)
        #expect(try f.manager.faults().open.contains { $0.name == "RdlTokenUnavailable" })

        // The CA restored (the certificate setup redone): the next boot unlocks.
        try shell("cp '\(server.directory)/ca.pem.saved' '\(original)'")
        server.stop()
        server = try server.restart()
        try f.reboot()
        let booted = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(booted.allSucceeded)
        // PyKMIP takes the batch too: the version negotiation, then Get + GetAttributes of the token by its identifier.
        #expect(booted.keyServerRoundTrips == 2 && booted.keyServerConnections == 1, "\(booted)")

        // Revoke and Destroy the token on the server: from the next restart on, locked for good.
        let client = KMIPClient(connection: KMIPConnection(server: server.address, configuration: tls))
        let ids = try client.locate([.name(tokenID)])
        #expect(ids.count == 1)
        for id in ids {
            try client.revoke(id, reason: .keyCompromise)
            try client.destroy(id)
        }
        try f.reboot()
        let gone = try await f.manager.unlock(UnlockRequest(drives: .all, boot: true))
        #expect(gone.drives.allSatisfy { $0.result == .keyUnavailable && $0.attempts == 0 }, "\(gone)")
        #expect((0..<2).allSatisfy { f.isLocked($0) && f.driveFailures($0).consecutive == 0 })
        #expect(try f.manager.rdlStatus().state.contains("the drives are locked for good"))
    }
}
