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
    /// How the servers are reached (mutual TLS in production).
    public let connector: any KeyServerConnector

    public init(servers: [StoredKeyServer], timeout: Double, threshold: Int? = nil, requireActive: Bool = false,
                connector: any KeyServerConnector = TLSKeyServerConnector()) {
        self.servers = servers
        self.timeout = timeout
        self.threshold = threshold
        self.requireActive = requireActive
        self.connector = connector
    }

    public var name: String { "key servers " + servers.map(\.name).joined(separator: ", ") }
    public var answersMayChange: Bool { true }

    /// The servers as a pool whose every exchange ends by `deadline` (carried over to the system
    /// clock, which TLS waits run on, whatever clock the caller counts in).
    func pool(deadline: Deadline) throws(KeyServerError) -> KeyServerPool {
        try connector.pool(servers, timeout: timeout, deadline: Deadline.after(seconds: deadline.remainingSeconds))
    }

    /// Full copies: the first server that has one answers. Shares: servers are asked in order
    /// until enough shares are in hand.
    public func fetch(keyID: String, deadline: Deadline) -> KeyLookup {
        fetchAll([WantedKey(keyID: keyID, requireActive: requireActive)], deadline: deadline)[keyID] ?? .notHere("not asked")
    }

    /// Every key in `keys` at once: per server one connection, the version negotiation, and one
    /// batched message getting each key by the Unique Identifier recorded when it was stored,
    /// with its Name (the identifier must still mean that key) and State (where only an Active
    /// object counts) — two round trips per server for a whole boot. A key with no identifier
    /// recorded for a server, or whose identifier now means nothing or something else, is located
    /// by name (more round trips, on that path only).
    public func fetchAll(_ keys: [WantedKey], deadline: Deadline) -> [String: KeyLookup] {
        assemble(keys, deadline: deadline).mapValues(\.lookup)
    }

    /// As `fetchAll`, keeping what each key was put together from (a full copy, or the shares).
    func assemble(_ keys: [WantedKey], deadline: Deadline) -> [String: KeyAssembly] {
        guard !servers.isEmpty else {
            return Dictionary(keys.map { key in
                var assembly = KeyAssembly(keyID: key.keyID)
                assembly.fail("no key server is configured")
                return (key.keyID, assembly)
            }) { a, _ in a }
        }
        let pool: KeyServerPool
        do { pool = try self.pool(deadline: deadline) } catch {
            return Dictionary(keys.map { key in
                var assembly = KeyAssembly(keyID: key.keyID)
                assembly.fail(error.description, hard: Self.isHard(error))
                return (key.keyID, assembly)
            }) { a, _ in a }
        }
        // Servers are asked with staggered starts (enough of them at once for a share set), so a
        // hung or slow server costs at most a head start, never the whole wait.
        let servers = self.servers
        let meter = KMIPTraffic.meter
        let atOnce = threshold ?? 1
        let race = StaggeredRace<[ServerAnswer]>(stagger: Self.headStart)
        let answers = race.run(count: servers.count, deadline: deadline, stillNeeded: { answers in
            Self.merge(answers, keys: keys).values.map { $0.stillNeeded(ifUnknown: atOnce) }.max() ?? 0
        }, ask: { index in
            KMIPTraffic.$meter.withValue(meter) { Self.ask(servers[index], for: keys, pool: pool) }
        })
        var assemblies = Self.merge(answers, keys: keys)
        for (index, server) in servers.enumerated() where answers[index] == nil {
            for key in keys where assemblies[key.keyID]?.key == nil {
                assemblies[key.keyID]?.fail("\(server.name): no answer before the wait ended")
            }
        }
        return assemblies
    }

    /// How long one server is given before the next is asked too.
    static let headStart = 0.5

    /// What one server said about one key, put together with the others' in server order.
    enum ServerAnswer: Sendable {
        case material(keyID: String, Secret, server: String)
        case failed(keyID: String, String, hard: Bool)
    }

    /// The keys put together from the answers in hand, in server order.
    static func merge(_ answers: [Int: [ServerAnswer]], keys: [WantedKey]) -> [String: KeyAssembly] {
        var assemblies = Dictionary(keys.map { ($0.keyID, KeyAssembly(keyID: $0.keyID)) }) { a, _ in a }
        for index in answers.keys.sorted() {
            for answer in answers[index] ?? [] {
                switch answer {
                case .material(let keyID, let material, let server): assemblies[keyID]?.add(material, from: server)
                case .failed(let keyID, let why, let hard): assemblies[keyID]?.fail(why, hard: hard)
                }
            }
        }
        return assemblies
    }

    /// One server's answers about every key in `keys`: one connection, the version negotiation and
    /// one batched Get by recorded identifier; by name where no identifier is recorded or it now
    /// means something else.
    static func ask(_ server: StoredKeyServer, for keys: [WantedKey], pool: KeyServerPool) -> [ServerAnswer] {
        var said: [ServerAnswer] = []
        do {
            try pool.on(server: server.name) { (client) throws(KeyServerError) in
                try client.negotiateVersion()
                var byName = keys.filter { $0.objectID(on: server.name) == nil }
                let byID = keys.compactMap { key in key.objectID(on: server.name).map { (key, $0) } }
                if !byID.isEmpty {
                    let answers = try client.getMany(byID.map(\.1))
                    for (key, id) in byID {
                        switch answers[id] {
                        case .success(let (object, attributes))?:
                            let names = attributes.compactMap { attribute -> String? in
                                if case .name(let name) = attribute { return name } else { return nil }
                            }
                            if !names.contains(key.keyID) {
                                // The identifier now means another object (a restored or rebuilt server): by name instead.
                                byName.append(key)
                            } else if let refusal = Self.refusal(key, object: object, state: KMIPClient.state(in: attributes), server: client.server) {
                                said.append(.failed(keyID: key.keyID, refusal, hard: true))
                            } else {
                                said.append(.material(keyID: key.keyID, object.material, server: server.name))
                            }
                        case .failure(let error)? where error.resultReason == .itemNotFound:
                            byName.append(key)
                        case .failure(let error)?:
                            said.append(.failed(keyID: key.keyID, error.description, hard: Self.isHard(error)))
                        case nil:
                            said.append(.failed(keyID: key.keyID, "\(server.name): no answer about object \(id)", hard: false))
                        }
                    }
                }
                for key in byName {
                    do throws(KeyServerError) {
                        switch try Self.locateAndGet(key, client: client) {
                        case .key(let material): said.append(.material(keyID: key.keyID, material, server: server.name))
                        case .refused(let why): said.append(.failed(keyID: key.keyID, why, hard: true))
                        }
                    } catch {
                        said.append(.failed(keyID: key.keyID, error.description, hard: Self.isHard(error)))
                    }
                }
            }
        } catch {
            // What the server said before it failed stays; the keys it said nothing of fail with it.
            let answered = Set(said.map { answer -> String in
                switch answer { case .material(let id, _, _), .failed(let id, _, _): return id }
            })
            for key in keys where !answered.contains(key.keyID) {
                said.append(.failed(keyID: key.keyID, error.description, hard: Self.isHard(error)))
            }
        }
        return said
    }

    /// A failure no waiting mends: the server refuses this client's certificate or credentials,
    /// or the local configuration (certificate, key, address) is unusable. An unreachable,
    /// slow or faulty server may answer later.
    static func isHard(_ error: KeyServerError) -> Bool {
        switch error.code {
        case .keyServerAuthFailed, .keyServerInvalidAuth, .keyServerConfigurationError: return true
        default: return false
        }
    }

    /// Why a fetched object cannot serve as the key (nil when it can).
    private static func refusal(_ key: WantedKey, object: ManagedObject, state: ObjectState?, server: String) -> String? {
        if key.requireActive && state != .active {
            return "\(server): the object named \(key.keyID) is not Active (\(state?.name ?? "no state")): "
                + "a revoked or deactivated key cannot unlock; restore it on the server if that was a mistake"
        }
        guard object.objectType == .secretData else { return "\(server): object \(object.uniqueIdentifier) is not SecretData" }
        return nil
    }

    /// What a search by name found on one server.
    private enum Located {
        case key(Secret)
        /// An object by that name that must not serve (not Active where that is required).
        case refused(String)
    }

    /// The old way, by name: Locate, then (State and) Get of each match.
    private static func locateAndGet(_ key: WantedKey, client: KMIPClient) throws(KeyServerError) -> Located {
        for id in try client.locate([.name(key.keyID)]) {
            if key.requireActive {
                let state = try client.state(of: id)
                guard state == .active else {
                    return .refused("\(client.server): the object named \(key.keyID) is not Active (\(state?.name ?? "no state")): "
                                    + "a revoked or deactivated key cannot unlock; restore it on the server if that was a mistake")
                }
            }
            let object = try client.get(id)
            if object.objectType == .secretData { return .key(object.material) }
        }
        throw KeyServerError(.keyServerFailed, server: client.server, cause: "no SecretData named \(key.keyID)",
                             fix: "restore the key on this server, or check the client's identity (owner)")
    }

    public func store(keyID: String, tag: String, ak: Secret) throws(ControlError) -> [KeyLocation] {
        guard !servers.isEmpty else {
            throw ControlError(.badRequest, "no key server is configured", fix: "add one with `sedlock keyserver add`")
        }
        let pool: KeyServerPool
        // A write has no caller's wait: each answer is bounded by the timeout.
        do { pool = try self.pool(deadline: .never) } catch { throw ControlError(error) }
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
            return try outcome.requireAll().map {
                threshold == nil ? .keyServer(server: $0.server, objectID: $0.value) : .keyServerShare(server: $0.server, objectID: $0.value)
            }
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

/// One key wanted from the key servers.
public struct WantedKey: Sendable {
    /// Its Name on the servers.
    public var keyID: String
    /// Where it was stored: fetched by identifier there.
    public var locations: [KeyLocation]
    /// Only an object in the Active state counts (the RDL token: a revoked one must not unlock).
    public var requireActive: Bool

    public init(keyID: String, locations: [KeyLocation] = [], requireActive: Bool = false) {
        self.keyID = keyID
        self.locations = locations
        self.requireActive = requireActive
    }

    /// The object's Unique Identifier on `server`, when recorded.
    func objectID(on server: String) -> String? { locations.objectID(on: server) }
}

/// One key put together from the servers' answers: a full copy completes it at once; shares once
/// `threshold` distinct ones are in.
struct KeyAssembly {
    let keyID: String
    private(set) var key: Secret?
    private(set) var shares: [ShamirSharing.Share] = []
    private(set) var needed: Int?
    private var reasons: [String] = []
    /// Whether any server's failure may mend with time (unreachable, slow): then the key is not
    /// here yet rather than refused.
    private var anySoftFailure = false

    init(keyID: String) { self.keyID = keyID }

    mutating func add(_ material: Secret, from server: String) {
        guard key == nil else { return }
        if material.count == 32 {
            key = material
            return
        }
        guard let share = KeyShareMaterial.decode(material) else {
            fail("\(server): the object named \(keyID) is neither a key nor a sedlock key share", hard: true)
            return
        }
        needed = share.threshold
        if !shares.contains(where: { $0.index == share.share.index }) { shares.append(share.share) }
        guard shares.count >= share.threshold else { return }
        do { key = try ShamirSharing.combine(shares) } catch {
            fail("the key shares do not combine: \(error)", hard: true)
        }
    }

    /// How many more servers must give their part: 0 once put together; a share set's missing
    /// shares; `ifUnknown` while nothing says what this key is made of.
    func stillNeeded(ifUnknown: Int) -> Int {
        if key != nil { return 0 }
        if let needed { return max(1, needed - shares.count) }
        return ifUnknown
    }

    /// The shares the key was put together from (with their threshold), when it was shares.
    var shareSet: (threshold: Int, shares: [ShamirSharing.Share])? {
        guard key != nil, let needed else { return nil }
        return (needed, shares)
    }

    mutating func fail(_ reason: String, hard: Bool = false) {
        reasons.append(reason)
        if !hard { anySoftFailure = true }
    }

    /// Found; refused when every server that failed did so for good; else not here (yet).
    var lookup: KeyLookup {
        if let key { return .found(key) }
        var why = reasons.joined(separator: "; ")
        if let needed { why = "\(shares.count) of the \(needed) key shares needed could be fetched (\(why))" }
        return anySoftFailure || reasons.isEmpty ? .notHere(why) : .refused(why)
    }
}
