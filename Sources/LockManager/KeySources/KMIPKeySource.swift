import ControlAPI
import Foundation
import Keys
import KMIP
import LockState
import Platform

/// AKs on the configured KMIP key servers, as NetApp keeps them: a SecretData (Password) on
/// **every** server, Name = key ID, Object Group = key tag, activated. Reads fail over from server
/// to server (and cluster member to member); writes must reach every server or none keeps a copy.
///
/// With a threshold k, each server holds one Shamir share instead of the AK (`KeyShareMaterial`),
/// so that no single key server can reveal it and unlocking needs any k of them.
public struct KMIPKeySource: KeyStore {
    public let servers: [StoredKeyServer]
    /// Seconds for connecting and for each answer (bounded by the caller's deadline).
    public let timeout: Double
    /// Store k-of-n shares instead of full copies (nil: full copies).
    public let threshold: Int?
    /// Only an object in the Active state counts (the RDL token: a revoked one must not unlock).
    public let requireActive: Bool

    public init(servers: [StoredKeyServer], timeout: Double, threshold: Int? = nil, requireActive: Bool = false) {
        self.servers = servers
        self.timeout = timeout
        self.threshold = threshold
        self.requireActive = requireActive
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

    /// Full copies: the first server that has one answers. Shares: servers are asked in order
    /// until enough shares are in hand.
    public func fetch(keyID: String, deadline: Deadline) -> KeyLookup {
        guard !servers.isEmpty else { return .notHere("no key server is configured") }
        let bounded = max(1, min(timeout, deadline.remainingSeconds))
        let pool: KeyServerPool
        do { pool = try self.pool(timeout: bounded) } catch { return .notHere(error.description) }
        var shares: [ShamirSharing.Share] = []
        var needed: Int?
        var reasons: [String] = []
        for server in servers {
            do {
                let material = try pool.on(server: server.name) { (client) throws(KeyServerError) -> Secret in
                    try client.negotiateVersion()
                    for id in try client.locate([.name(keyID)]) {
                        if requireActive {
                            let state = try client.state(of: id)
                            guard state == .active else {
                                throw KeyServerError(.keyServerFailed, server: client.server,
                                                     cause: "the object named \(keyID) is not Active (\(state?.name ?? "no state"))",
                                                     fix: "a revoked or deactivated key cannot unlock: restore it on the server if that was a mistake")
                            }
                        }
                        let object = try client.get(id)
                        if object.objectType == .secretData { return object.material }
                    }
                    throw KeyServerError(.keyServerFailed, server: client.server, cause: "no SecretData named \(keyID)",
                                         fix: "restore the key on this server, or check the client's identity (owner)")
                }
                if material.count == 32 { return .found(material) }
                guard let share = KeyShareMaterial.decode(material) else {
                    reasons.append("\(server.name): the object named \(keyID) is neither a key nor a sedlock key share")
                    continue
                }
                needed = share.threshold
                if !shares.contains(where: { $0.index == share.share.index }) { shares.append(share.share) }
                if shares.count >= share.threshold {
                    do { return .found(try ShamirSharing.combine(shares)) } catch {
                        return .notHere("the key shares do not combine: \(error)")
                    }
                }
            } catch {
                reasons.append(error.description)
            }
        }
        if let needed {
            return .notHere("\(shares.count) of the \(needed) key shares needed could be fetched (\(reasons.joined(separator: "; ")))")
        }
        return .notHere(reasons.joined(separator: "; "))
    }

    public func store(keyID: String, tag: String, ak: Secret) throws(ControlError) -> [String] {
        guard !servers.isEmpty else {
            throw ControlError(.badRequest, "no key server is configured", fix: "add one with `sedlock keyserver add`")
        }
        let pool: KeyServerPool
        do { pool = try self.pool(timeout: timeout) } catch { throw ControlError(.badRequest, error.description) }
        // What each server keeps: the AK, or its own share.
        var materials: [String: Secret] = [:]
        if let threshold {
            let shares: [ShamirSharing.Share]
            do { shares = try ShamirSharing.split(ak, threshold: threshold, shares: servers.count) } catch {
                throw ControlError(.badRequest, "cannot split the key \(threshold) of \(servers.count): \(error)")
            }
            for (server, share) in zip(servers, shares) {
                materials[server.name] = KeyShareMaterial.encode(share, threshold: threshold)
            }
        }
        var written: [KeyServerWrite<String>.Written] = []
        var failures: [KeyServerError] = []
        for server in servers {
            let material = materials[server.name] ?? ak
            do {
                let id = try pool.on(server: server.name) { (client) throws(KeyServerError) -> String in
                    try client.negotiateVersion()
                    let id = try client.registerSecret(material, attributes: [.name(keyID), .objectGroup(tag)])
                    try client.activate(id)
                    return id
                }
                written.append(.init(server: server.name, value: id))
            } catch {
                failures.append(error)
            }
        }
        let outcome = KeyServerWrite(written: written, failures: failures)
        do {
            return try outcome.requireAll().map { "\(threshold == nil ? "kmip" : "kmip-share"):\($0.server):\($0.value)" }
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
