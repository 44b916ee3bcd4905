import ControlAPI
import Foundation
import Keys
import KMIP
import LockState
import Platform

/// AKs on the configured KMIP key servers, as NetApp keeps them: a SecretData (Password) on
/// **every** server, Name = key ID, Object Group = key tag, activated. Reads fail over from server
/// to server (and cluster member to member); writes must reach every server or none keeps a copy.
public struct KMIPKeySource: KeyStore {
    public let servers: [StoredKeyServer]
    /// Seconds for connecting and for each answer (bounded by the caller's deadline).
    public let timeout: Double

    public init(servers: [StoredKeyServer], timeout: Double) {
        self.servers = servers
        self.timeout = timeout
    }

    public var name: String { "key servers " + servers.map(\.name).joined(separator: ", ") }

    /// The servers as a pool, each with its own CA and the shared client identity.
    func pool(timeout: Double) throws(KeyServerError) -> KeyServerPool {
        var configurations: [String: TLSConfiguration] = [:]
        var entries: [KeyServerEntry] = []
        for server in servers {
            var members: [ServerAddress] = []
            for text in server.addresses {
                guard let address = ServerAddress(text) else {
                    throw KeyServerError(.keyServerConfigurationError, server: server.name, cause: "'\(text)' is not HOST:PORT",
                                         fix: "remove and add the key server again")
                }
                members.append(address)
                configurations[address.description] = TLSConfiguration(
                    certificatePath: server.certificatePath, privateKeyPath: server.privateKeyPath, caPath: server.caPath,
                    verifyServerName: server.verifyServerName, connectTimeout: timeout, ioTimeout: timeout)
            }
            entries.append(KeyServerEntry(name: server.name, addresses: members))
        }
        let fallback = configurations.values.first
        return try KeyServerPool(servers: entries) { address in
            KMIPConnection(server: address, configuration: configurations[address.description]
                           ?? fallback ?? TLSConfiguration(certificatePath: "", privateKeyPath: "", caPath: ""))
        }
    }

    public func fetch(keyID: String, deadline: Deadline) -> KeyLookup {
        guard !servers.isEmpty else { return .notHere("no key server is configured") }
        let bounded = max(1, min(timeout, deadline.remainingSeconds))
        do {
            let ak = try pool(timeout: bounded).read { (client) throws(KeyServerError) -> Secret in
                try client.negotiateVersion()
                for id in try client.locate([.name(keyID)]) {
                    let object = try client.get(id)
                    if object.objectType == .secretData, object.material.count == 32 { return object.material }
                }
                throw KeyServerError(.keyServerFailed, server: client.server, cause: "no 32-byte SecretData named \(keyID)",
                                     fix: "restore the key on this server, or check the client's identity (owner)")
            }
            return .found(ak)
        } catch {
            return .notHere(error.description)
        }
    }

    public func store(keyID: String, tag: String, ak: Secret) throws(ControlError) -> [String] {
        guard !servers.isEmpty else {
            throw ControlError(.badRequest, "no key server is configured", fix: "add one with `sedlock keyserver add`")
        }
        let pool: KeyServerPool
        do { pool = try self.pool(timeout: timeout) } catch { throw ControlError(.badRequest, error.description) }
        let outcome = pool.writeAll { (client) throws(KeyServerError) -> String in
            try client.negotiateVersion()
            let id = try client.registerSecret(ak, attributes: [.name(keyID), .objectGroup(tag)])
            try client.activate(id)
            return id
        }
        do {
            return try outcome.requireAll().map { "kmip:\($0.server):\($0.value)" }
        } catch {
            // A key on some servers only would be a key that some boots cannot find: take it back.
            var leftovers: [String] = []
            for written in outcome.written {
                do {
                    try pool.on(server: written.server) { (client) throws(KeyServerError) in
                        try client.negotiateVersion()
                        try client.revoke(written.value, reason: .cessationOfOperation, message: "sedlock: not stored on every server")
                        try client.destroy(written.value)
                    }
                } catch {
                    leftovers.append("\(written.server) still holds object \(written.value)")
                }
            }
            throw ControlError(error.code == .keyServerUnavailable || error.code == .keyServerSslError ? .unreachable : .failed,
                               "the new key could not be stored on every key server, so it was not used: \(error.cause)"
                               + (leftovers.isEmpty ? "" : "; " + leftovers.joined(separator: "; ")),
                               fix: error.fix)
        }
    }
}
