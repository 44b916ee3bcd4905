import Foundation
import KMIPTestSupport
import TestSupport
import Testing

/// `sedlock kmip …` as an operator runs it, against PyKMIP.
@Suite("sedlock kmip against PyKMIP", .serialized)
struct KMIPCommandLineTests {
    static var sedlock: String { builtExecutable("sedlock") }

    func run(_ args: [String], stdin: String? = nil) throws -> (Int32, String, String) {
        let r = try ProcessRunner.run(Self.sedlock, args, stdin: stdin.map { Data($0.utf8) })
        return (r.status, r.output, r.stderr)
    }

    @Test("test, register-secret, locate, get --output, activate, destroy refused, revoke, destroy")
    func lifecycle() throws {
        let server = try PyKMIPServer()
        let tls = try server.client("operator")
        let options = ["--server", server.address.description, "--cert", tls.certificatePath, "--key", tls.privateKeyPath,
                       "--ca", tls.caPath]
        let secret = "drive-ak-\(UUID().uuidString)"

        let test = try run(["kmip", "test"] + options)
        #expect(test.0 == 0 && test.1.hasPrefix("OK"))
        let registered = try run(["kmip", "register-secret", "--name", "ak-7", "--group", "sedlock", "--secret-file", "-"] + options,
                                 stdin: secret)
        #expect(registered.0 == 0)
        let id = try #require(registered.1.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines))
        let located = try run(["kmip", "locate", "--name", "ak-7", "--json"] + options)
        #expect(located.0 == 0 && located.1.contains("\"\(id)\""))

        let output = server.directory + "/fetched"
        let get = try run(["kmip", "get", id, "--output", output] + options)
        #expect(get.0 == 0 && get.1.contains("SecretData"))
        #expect(try String(contentsOfFile: output, encoding: .utf8) == secret)
        let mode = (try FileManager.default.attributesOfItem(atPath: output)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)

        #expect(try run(["kmip", "activate", id] + options).0 == 0)
        let refused = try run(["kmip", "destroy", id] + options)
        #expect(refused.0 == 10 && refused.2.contains("revoke an Active object"))
        #expect(try run(["kmip", "revoke", id, "--reason", "key-compromise"] + options).0 == 0)
        #expect(try run(["kmip", "destroy", id] + options).0 == 0)
        let gone = try run(["kmip", "get", id] + options)
        #expect(gone.0 == 13 && gone.2.contains("Item Not Found"))

        // No secret in any output.
        for text in [test.1, registered.1, located.1, get.1, refused.2, gone.2] { #expect(!text.contains(secret)) }
        // Bad arguments and an unreachable server have their own exit statuses.
        #expect(try run(["kmip", "test", "--server", "nonsense:port"] + options.dropFirst(2)).0 == 64)
        let unreachable = try run(["kmip", "test", "--server", "127.0.0.1:\(try PyKMIPServer.freePort())"] + options.dropFirst(2))
        #expect(unreachable.0 == 12 && unreachable.1.contains("KeyServerUnavailable"))
    }
}

extension KMIPCommandLineTests {
    @Test("cert create-keypair → csr → signed by the server's CA → import → kmip test succeeds")
    func certificateWorkflow() throws {
        let server = try PyKMIPServer()
        let dir = server.directory + "/operator"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        #expect(try run(["cert", "create-keypair", "--type", "ec-p256", "--out", dir + "/key.pem"]).0 == 0)
        #expect(try run(["cert", "csr", "--key", dir + "/key.pem", "--cn", "array-cert-flow", "--out", dir + "/req.csr"]).0 == 0)
        // The key server's administrator signs the request with the server's CA.
        try shell("""
            cd '\(server.directory)' && openssl x509 -req -in operator/req.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
              -out operator/signed.pem -days 60 -copy_extensions copy 2>/dev/null
            """)
        let imported = try run(["cert", "import", "--cert", dir + "/signed.pem", "--key", dir + "/key.pem",
                                "--ca", server.pki.caPath, "--dest", dir + "/installed", "--json"])
        let written = try JSONSerialization.jsonObject(with: Data(imported.1.utf8)) as? [String: Any]
        #expect(imported.0 == 0 && (written?["subject"] as? String)?.contains("array-cert-flow") == true
                && written?["files"] as? [String] == ["client.pem", "client.key", "ca.pem"].map { dir + "/installed/" + $0 }, "\(imported.1)")
        let test = try run(["kmip", "test", "--server", server.address.description, "--cert", dir + "/installed/client.pem",
                            "--key", dir + "/installed/client.key", "--ca", dir + "/installed/ca.pem"])
        #expect(test.0 == 0 && test.1.hasPrefix("OK"))
        // A key that does not belong to the certificate is refused at import.
        #expect(try run(["cert", "create-keypair", "--out", dir + "/other.pem"]).0 == 0)
        let mismatch = try run(["cert", "import", "--cert", dir + "/signed.pem", "--key", dir + "/other.pem",
                                "--ca", server.pki.caPath, "--dest", dir + "/wrong"])
        #expect(mismatch.0 == 64 && mismatch.2.contains("does not belong"))
    }
}
