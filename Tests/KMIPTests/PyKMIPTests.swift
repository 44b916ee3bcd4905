import Foundation
import Keys
import KMIP
import KMIPTestSupport
import Testing

/// The client against PyKMIP's real server: the SASED flow, per protocol version.
@Suite("Against PyKMIP's server", .serialized)
struct PyKMIPTests {
    @Test("SASED: register a Password secret, locate, get, activate, revoke, destroy",
          arguments: [ProtocolVersion.v1_2, .v1_4, .v2_0])
    func sasedFlow(version: ProtocolVersion) throws {
        let server = try PyKMIPServer()
        let client = KMIPClient(connection: KMIPConnection(server: server.address, configuration: try server.client("array-a")),
                                version: version)
        let versions = try client.discoverVersions()
        #expect(versions.contains(version))
        #expect(client.connection.tlsSummary?.hasPrefix("TLSv1.2") == true)

        let ak = Secret(Array("0123456789abcdef0123456789abcdef".utf8))
        let name = "sedlock-ak-\(UUID().uuidString.prefix(6))"
        let id = try client.registerSecret(ak, attributes: [.name(name), .objectGroup("sedlock")])
        #expect(try client.locate([.name(name), .objectType(.secretData)]) == [id])
        #expect(try client.locate([.objectGroup("sedlock")]).contains(id))

        let object = try client.get(id)
        #expect(object.objectType == .secretData && object.material == ak)
        #expect(try client.getAttributes(id, names: ["State"]) == [.state(.preActive)])

        try client.activate(id)
        #expect(try client.getAttributes(id, names: ["State"]) == [.state(.active)])
        // Destroy is refused while Active.
        #expect { try client.destroy(id) } throws: { ($0 as? KeyServerError)?.code == .keyServerInvalidAuth }
        try client.revoke(id, reason: .cessationOfOperation, message: "rekeyed")
        #expect(try client.getAttributes(id, names: ["State"]) == [.state(.deactivated)])
        try client.destroy(id)
        #expect { _ = try client.get(id) } throws: {
            ($0 as? KeyServerError)?.code == .keyServerFailed && ($0 as? KeyServerError)?.resultReason == .itemNotFound
        }
    }

    @Test("a second identity cannot read the first's objects; an untrusted client certificate fails fast")
    func identities() throws {
        let server = try PyKMIPServer()
        let alice = KMIPClient(connection: KMIPConnection(server: server.address, configuration: try server.client("alice")))
        let bob = KMIPClient(connection: KMIPConnection(server: server.address, configuration: try server.client("bob")))
        let id = try alice.registerSecret(Secret([1, 2, 3, 4]), attributes: [.name("alice-only")])
        #expect(try bob.locate([.name("alice-only")]).isEmpty)
        #expect { _ = try bob.get(id) } throws: { ($0 as? KeyServerError)?.code == .keyServerInvalidAuth }

        // A client certificate signed by another CA.
        let rogue = try TestPKI(directory: server.directory, caName: "rogue-ca")
        let (cert, key) = try rogue.issue("mallory", commonName: "mallory", extensions: "extendedKeyUsage=clientAuth")
        let untrusted = KMIPClient(connection: KMIPConnection(
            server: server.address,
            configuration: TLSConfiguration(certificatePath: cert, privateKeyPath: key, caPath: server.pki.caPath,
                                            connectTimeout: 5, ioTimeout: 5)))
        let start = Date()
        #expect { _ = try untrusted.locate([]) } throws: {
            let code = ($0 as? KeyServerError)?.code
            return code == .keyServerAuthFailed || code == .keyServerSslError
        }
        #expect(Date().timeIntervalSince(start) < 10)

        // A client that does not trust the server's CA refuses the server.
        let (cert2, key2) = try server.pki.issue("carol", commonName: "carol", extensions: "extendedKeyUsage=clientAuth")
        let distrustful = KMIPClient(connection: KMIPConnection(
            server: server.address,
            configuration: TLSConfiguration(certificatePath: cert2, privateKeyPath: key2, caPath: rogue.caPath)))
        #expect { _ = try distrustful.locate([]) } throws: { ($0 as? KeyServerError)?.code == .keyServerSslError }
    }

    @Test("create, query, attribute list, and a closed port")
    func createAndQuery() throws {
        let server = try PyKMIPServer()
        let client = KMIPClient(connection: KMIPConnection(server: server.address, configuration: try server.client("ops")),
                                version: .v1_4)
        let id = try client.createSymmetricKey(attributes: [.name("aes-key")])
        #expect(try client.getAttributes(id, names: ["Cryptographic Length"]) == [.cryptographicLength(256)])
        #expect(try client.getAttributeList(id).contains("State"))
        let key = try client.get(id)
        #expect(key.objectType == .symmetricKey && key.material.count == 32)
        let query = try client.query()
        #expect(query.operations.contains(.get) && query.operations.contains(.register))
        #expect(try client.negotiateVersion() == .v2_0)

        let closed = KMIPClient(connection: KMIPConnection(server: ServerAddress(host: "127.0.0.1", port: try PyKMIPServer.freePort()),
                                                           configuration: try server.client("nobody")))
        #expect { _ = try closed.locate([]) } throws: { ($0 as? KeyServerError)?.code == .keyServerUnavailable }
    }
}

/// A TCP listener that accepts connections and never answers (a hung key server).
final class SilentServer {
    let port: UInt16
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok, listen(fd, 8) == 0 else { throw FixtureError("cannot listen") }
        port = UInt16(bigEndian: addr.sin_port)
    }

    deinit { close(fd) }
}

@Suite("Key server pool", .serialized)
struct KeyServerPoolTests {
    @Test("reads fail over past a refusing and a hanging server; writes land on every server")
    func failover() throws {
        let first = try PyKMIPServer()
        let second = try PyKMIPServer()
        // Both servers trust the same client: issue it from the first CA and trust both CAs.
        let tls = try first.client("pool-client")
        let bundle = first.directory + "/both-cas.pem"
        try shell("cat '\(first.pki.caPath)' '\(second.pki.caPath)' > '\(bundle)'")
        try shell("cp '\(bundle)' '\(second.directory)/ca.pem'")
        // The second server must trust the first CA too: restart it with the bundle as its CA.
        second.stop()
        let restarted = try second.restart()
        var config = tls
        config.caPath = bundle
        config.connectTimeout = 1
        config.ioTimeout = 2
        let silent = try SilentServer()
        let refusing = ServerAddress(host: "127.0.0.1", port: try PyKMIPServer.freePort())
        let pool = try KeyServerPool(servers: [
            KeyServerEntry(name: "dead", addresses: [refusing, ServerAddress(host: "127.0.0.1", port: silent.port)]),
            KeyServerEntry(name: "a", addresses: [first.address]),
            KeyServerEntry(name: "b", addresses: [restarted.address]),
        ], configuration: config)

        let start = Date()
        let versions = try pool.read { c throws(KeyServerError) in try c.discoverVersions() }
        #expect(!versions.isEmpty)
        #expect(Date().timeIntervalSince(start) < 10)

        let outcome = pool.writeAll { c throws(KeyServerError) in
            try c.registerSecret(Secret([9, 9, 9, 9]), attributes: [.name("replicated")])
        }
        #expect(outcome.written.map(\.server) == ["a", "b"])
        #expect(outcome.failures.count == 1 && !outcome.isComplete)
        // A partial write is an error that names who holds a copy, so it can be cleaned up or retried.
        #expect { try outcome.requireAll() } throws: {
            let text = "\($0)"
            return text.contains("written on 2 of 3 key servers") && text.contains("a, b hold a copy")
        }
        let onA = try KMIPClient(connection: KMIPConnection(server: first.address, configuration: config)).locate([.name("replicated")])
        let onB = try KMIPClient(connection: KMIPConnection(server: restarted.address, configuration: config)).locate([.name("replicated")])
        #expect(onA.count == 1 && onB.count == 1)

        #expect(throws: KeyServerError.self) {
            _ = try KeyServerPool(servers: Array(repeating: KeyServerEntry(name: "x", addresses: [refusing]), count: 5), configuration: config)
        }
    }
}

extension PyKMIPTests {
    @Test("KMIP 2.0 ModifyAttribute of a Name on PyKMIP")
    func modifyAndDelete() throws {
        let server = try PyKMIPServer()
        let client = KMIPClient(connection: KMIPConnection(server: server.address, configuration: try server.client("editor")),
                                version: .v2_0)
        // PyKMIP refuses two Names in one 2.0 Register ("Attribute index missing"), so one Name.
        let id = try client.registerSecret(Secret([5, 6, 7, 8]), attributes: [.name("before")])
        try client.modifyAttribute(id, current: .name("before"), new: .name("after"))
        #expect(try client.locate([.name("after")]) == [id])
        #expect(try client.locate([.name("before")]).isEmpty)
        // PyKMIP 0.11.0 answers DeleteAttribute of a Name with General Failure; Delete is tested against the simulator.
    }
}
