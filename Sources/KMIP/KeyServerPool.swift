import Platform

/// One configured key server: a name and the hostnames of its cluster, tried in order.
public struct KeyServerEntry: Hashable, Sendable, Codable {
    public var name: String
    public var addresses: [ServerAddress]

    public init(name: String, addresses: [ServerAddress]) {
        self.name = name
        self.addresses = addresses
    }
}

/// Up to four key servers, as NetApp's key managers allow: reads fail over in order, writes go to every server.
public final class KeyServerPool: Sendable {
    public static let maximumServers = 4

    public let servers: [KeyServerEntry]
    private let clients: [[KMIPClient]]

    /// Servers reached over mutual TLS.
    public convenience init(servers: [KeyServerEntry], configuration: TLSConfiguration,
                            version: ProtocolVersion = .v1_2, deadline: Deadline = .never) throws(KeyServerError) {
        try self.init(servers: servers, version: version, deadline: deadline) { KMIPConnection(server: $0, configuration: configuration) }
    }

    /// Servers reached through `exchange` (one per cluster member); nothing asked of them runs
    /// past `deadline`.
    public init(servers: [KeyServerEntry], version: ProtocolVersion = .v1_2, deadline: Deadline = .never,
                exchange: (ServerAddress) -> any KMIPExchange) throws(KeyServerError) {
        guard !servers.isEmpty, servers.count <= Self.maximumServers else {
            throw KeyServerError(.keyServerConfigurationError, server: "pool",
                                 cause: "\(servers.count) key servers configured", fix: "configure one to four key servers")
        }
        guard servers.allSatisfy({ !$0.addresses.isEmpty }) else {
            throw KeyServerError(.keyServerConfigurationError, server: "pool", cause: "a key server has no address",
                                 fix: "give each key server at least one host:port")
        }
        self.servers = servers
        clients = servers.map { entry in
            entry.addresses.map { KMIPClient(connection: exchange($0), version: version, deadline: deadline) }
        }
    }

    /// Runs a read on the first server (and cluster member) that answers; every failure moves to the next.
    public func read<R>(_ body: (KMIPClient) throws(KeyServerError) -> R) throws(KeyServerError) -> R {
        var failures: [KeyServerError] = []
        for members in clients {
            for client in members {
                do { return try body(client) } catch { failures.append(error) }
            }
        }
        throw Self.combine(failures)
    }

    /// Runs a write on every server (first answering member of each cluster), and reports per server.
    public func writeAll<R: Sendable>(_ body: (KMIPClient) throws(KeyServerError) -> R) -> KeyServerWrite<R> {
        var written: [KeyServerWrite<R>.Written] = []
        var failed: [KeyServerError] = []
        for (entry, members) in zip(servers, clients) {
            var failures: [KeyServerError] = []
            var value: R?
            for client in members where value == nil {
                do throws(KeyServerError) { value = try body(client) } catch { failures.append(error) }
            }
            if let value { written.append(.init(server: entry.name, value: value)) } else { failed.append(Self.combine(failures)) }
        }
        return KeyServerWrite(written: written, failures: failed)
    }

    /// Runs `body` on the server named `name` (its first answering cluster member): cleaning up after
    /// a partial write, or asking one server in particular.
    public func on<R>(server name: String, _ body: (KMIPClient) throws(KeyServerError) -> R) throws(KeyServerError) -> R {
        guard let index = servers.firstIndex(where: { $0.name == name }) else {
            throw KeyServerError(.keyServerConfigurationError, server: name, cause: "no such key server in the pool",
                                 fix: "check the key server's name")
        }
        var failures: [KeyServerError] = []
        for client in clients[index] {
            do { return try body(client) } catch { failures.append(error) }
        }
        throw Self.combine(failures)
    }

    /// One error for several: the first failure's code, every server's cause.
    static func combine(_ failures: [KeyServerError]) -> KeyServerError {
        guard let first = failures.first else {
            return KeyServerError(.keyServerUnavailable, server: "pool", cause: "no key server configured", fix: "add a key server")
        }
        if failures.count == 1 { return first }
        let servers = failures.map(\.server).joined(separator: ", ")
        let causes = failures.map { "\($0.server): \($0.code.rawValue): \($0.cause)" }.joined(separator: "; ")
        return KeyServerError(first.code, server: servers, cause: "every key server failed — \(causes)", fix: first.fix,
                              resultReason: first.resultReason)
    }
}
