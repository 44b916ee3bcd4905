import KMIP
import LockState
import Platform

/// How the lock manager reaches its key servers: every KMIP conversation it has goes through a
/// pool made here. Production speaks mutual TLS (`TLSKeyServerConnector`); tests carry the same
/// KMIP messages to an in-process simulated key server, so the lock manager's KMIP and RDL paths
/// run without spawning a server.
public protocol KeyServerConnector: Sendable {
    /// The servers as one pool: each answer bounded by `timeout` seconds, and nothing asked of
    /// them running past `deadline` (on the system clock).
    func pool(_ servers: [StoredKeyServer], timeout: Double, deadline: Deadline) throws(KeyServerError) -> KeyServerPool
}

/// The configured servers over mutual TLS, each with its own CA and the shared client identity.
public struct TLSKeyServerConnector: KeyServerConnector {
    public init() {}

    public func pool(_ servers: [StoredKeyServer], timeout: Double, deadline: Deadline) throws(KeyServerError) -> KeyServerPool {
        var configurations: [ServerAddress: TLSConfiguration] = [:]
        let entries = try Self.entries(servers) { server, address in
            configurations[address] = TLSConfiguration(
                certificatePath: server.certificatePath, privateKeyPath: server.privateKeyPath, caPath: server.caPath,
                verifyServerName: server.verifyServerName, connectTimeout: timeout, ioTimeout: timeout)
        }
        let fallback = configurations.values.first
        return try KeyServerPool(servers: entries, deadline: deadline) { address in
            KMIPConnection(server: address, configuration: configurations[address]
                           ?? fallback ?? TLSConfiguration(certificatePath: "", privateKeyPath: "", caPath: ""))
        }
    }

    /// The pool's entries for `servers`, each member address parsed (a stored address that does
    /// not parse is a configuration error, named); `each` sees every member.
    public static func entries(_ servers: [StoredKeyServer],
                               each: (StoredKeyServer, ServerAddress) -> Void = { _, _ in }) throws(KeyServerError) -> [KeyServerEntry] {
        var entries: [KeyServerEntry] = []
        for server in servers {
            var members: [ServerAddress] = []
            for text in server.addresses {
                guard let address = ServerAddress(text) else {
                    throw KeyServerError(.keyServerConfigurationError, server: server.name, cause: "'\(text)' is not HOST:PORT",
                                         fix: "remove and add the key server again")
                }
                members.append(address)
                each(server, address)
            }
            entries.append(KeyServerEntry(name: server.name, addresses: members))
        }
        return entries
    }
}
