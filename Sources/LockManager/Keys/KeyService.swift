import ControlAPI
import Foundation
import Keys
import KMIP
import LockState
import Platform

/// The lock manager's keys: the keytable, the verified-PIN cache, where each generation's AK is
/// fetched from and stored, loading and verifying keys before any drive is touched, and the RDL
/// security token. Every key server it talks to is reached through `connector`.
public final class KeyService: Sendable {
    public let keytable = Keytable()
    /// PINs proven under keytable keys, for lock and unlock on demand.
    let verifiedPINs = VerifiedPINCache()
    /// The key-server monitor's latest tests, which sedlockd's reads answer from.
    public let health = KeyServerHealth()
    public let connector: any KeyServerConnector
    let time: any TimeSource
    /// The lock manager's configuration now (it changes on reload).
    private let settings: @Sendable () -> LockManagerConfiguration

    init(connector: any KeyServerConnector, time: any TimeSource, settings: @escaping @Sendable () -> LockManagerConfiguration) {
        self.connector = connector
        self.time = time
        self.settings = settings
    }

    var configuration: LockManagerConfiguration { settings() }

    // MARK: Sources and stores

    /// The key servers as one key source (and store), reached through the connector.
    func keyServers(_ servers: [StoredKeyServer], threshold: Int? = nil, requireActive: Bool = false) -> KMIPKeySource {
        KMIPKeySource(servers: servers, timeout: configuration.commandTimeout, threshold: threshold, requireActive: requireActive,
                      connector: connector)
    }

    /// One server as a pool, for a probe or a question to that server alone, done by `deadline`
    /// (one command timeout from now unless given).
    func pool(_ server: StoredKeyServer, deadline: Deadline? = nil) throws(KeyServerError) -> KeyServerPool {
        try keyServers([server]).pool(deadline: deadline ?? Deadline.after(seconds: configuration.commandTimeout, time: time))
    }

    /// Where a generation's AK is fetched from, in order: the systemd credential and the
    /// configured key directory, then wherever the generation records it was stored.
    func sources(for generation: StoredKeyGeneration, store: any StateStore) -> [any KeySource] {
        if generation.provider == KeyProviderKind.kmip.rawValue {
            return [keyServers((try? store.keyServers()) ?? [])]
        }
        let configuration = configuration
        if generation.provider == KeyProviderKind.clevis.rawValue {
            return [ClevisKeySource(command: configuration.clevisCommand, directory: configuration.keyDirectory, policy: nil,
                                    locations: generation.keyLocations, timeout: configuration.commandTimeout)]
        }
        var sources: [any KeySource] = [LocalKeySource(directory: configuration.keyDirectory,
                                                       credentialsDirectory: configuration.credentialsDirectory)]
        var directories: Set<String> = [configuration.keyDirectory]
        for directory in generation.keyLocations.compactMap(\.keyDirectory) where directories.insert(directory).inserted {
            sources.append(LocalKeySource(directory: directory, credentialsDirectory: nil))
        }
        return sources
    }

    /// Where a new generation of `provider` is stored: on every key server (or as shares over
    /// them), or in the key directory `previous` used (the configured one for a first key).
    func keyStore(provider: KeyProviderKind, threshold: Int?, previous: StoredKeyGeneration?, keyDirectory: String? = nil,
                  clevis: ClevisPolicy? = nil, store: any StateStore) throws(ControlError) -> any KeyStore {
        switch provider {
        case .clevis:
            // A rekey keeps the policy the current key was sealed under unless it names a new one.
            let recorded = previous?.keyLocations.compactMap(\.clevis).first
            guard let policy = clevis ?? recorded?.policy else {
                throw ControlError(.badRequest, "a key kept by clevis needs its policy", fix: "give --clevis CONFIG (and --clevis-pin PIN)")
            }
            let directory = keyDirectory ?? recorded.flatMap { KeyLocation.localFile(path: $0.path).keyDirectory } ?? configuration.keyDirectory
            return ClevisKeySource(command: configuration.clevisCommand, directory: directory, policy: policy,
                                   timeout: configuration.commandTimeout)
        case .kmip:
            do { return keyServers(try store.keyServers(), threshold: threshold) } catch { throw ControlError(error) }
        case .local:
            let recorded = previous?.keyLocations.compactMap(\.keyDirectory).first
            return LocalKeySource(directory: keyDirectory ?? recorded ?? configuration.keyDirectory, credentialsDirectory: nil)
        }
    }

    // MARK: Loading

    /// What a load found: each generation's readiness, and what became of each RDL token it
    /// asked for (so the caller can raise or clear the token's fault).
    struct Loaded: Sendable {
        var readiness: [Int64: KeyReadiness] = [:]
        var tokens: [String: KeyLookup] = [:]
    }

    /// Guard 4, keys first: fetches the AK of every generation in `generationIDs` from its key
    /// sources and verifies each against the check values of a drive of that generation. While
    /// a key is not here and a source could still produce it (a key server that is down), asks
    /// again until `deadline`; a key that is refused, or that no source could produce later
    /// (an absent key file), is not waited for. Nothing is touched on any drive here.
    func load(generationIDs: Set<Int64>, drives: [StoredDrive], store: any StateStore,
              deadline: Deadline) throws(ControlError) -> Loaded {
        let generations: [StoredKeyGeneration]
        do { generations = try store.generations() } catch { throw ControlError(error) }
        var loaded = Loaded()
        var waiting = generationIDs
        while true {
            var worthWaiting: Set<Int64> = []
            let prefetched = prefetchFromKeyServers(generations.filter { waiting.contains($0.id ?? -1) }, store: store, deadline: deadline)
            for id in waiting {
                guard let generation = generations.first(where: { $0.id == id }) else {
                    loaded.readiness[id] = .refused("key generation \(id) is not in the state")
                    continue
                }
                let (readiness, mayArrive) = ready(generation, drives: drives, store: store, deadline: deadline,
                                                   prefetched: prefetched, tokens: &loaded.tokens)
                loaded.readiness[id] = readiness
                if case .unavailable = readiness, mayArrive { worthWaiting.insert(id) }
            }
            waiting = worthWaiting
            // A round with less than a second left would only be cut off (its answers lost with it).
            let shortestRound: UInt64 = 1_000_000_000
            if waiting.isEmpty || deadline.remainingNanoseconds <= shortestRound { return loaded }
            time.sleep(nanoseconds: min(1_000_000_000, deadline.remainingNanoseconds - shortestRound))
        }
    }

    /// One generation's PIN input (its AK, followed by the RDL token for a generation that needs
    /// one), in hand and proven; and whether, if not, asking again might bring it.
    private func ready(_ generation: StoredKeyGeneration, drives: [StoredDrive], store: any StateStore, deadline: Deadline,
                       prefetched: [String: KeyLookup], tokens: inout [String: KeyLookup]) -> (KeyReadiness, mayArrive: Bool) {
        if let held = keytable.key(generation.keyID) {
            return (verify(ak: held, generation: generation, drives: drives, store: store), false)
        }
        var reasons: [String] = []
        var refused = false
        var mayArrive = false
        var found: Secret?
        for source in sources(for: generation, store: store) where found == nil {
            let fetched = source is KMIPKeySource ? prefetched[generation.keyID] : nil
            switch fetched ?? source.fetch(keyID: generation.keyID, deadline: deadline) {
            case .found(let key): found = key
            case .notHere(let why):
                reasons.append("\(source.name): \(why)")
                mayArrive = mayArrive || source.answersMayChange
            case .refused(let why):
                reasons.append("\(source.name): \(why)")
                refused = true
            }
        }
        guard let found else {
            // "Not found" would be wrong for a server that could not be reached or refused this
            // client: each source's own reason says which it was.
            let why = "key \(generation.keyID) could not be fetched (\(reasons.joined(separator: "; ")))"
            return refused && !mayArrive ? (.refused(why), false) : (.unavailable(why), mayArrive)
        }
        var ak = found
        if let tokenID = generation.tokenID {
            let token = securityToken(tokenID, store: store, deadline: deadline, prefetched: prefetched[tokenID])
            tokens[tokenID] = token
            switch token {
            case .found(let secret): ak = found.appending(secret)
            case .notHere(let why):
                return (.unavailable("the Rapid Data Locking security token \(tokenID) is unavailable (\(why))"), true)
            case .refused(let why):
                return (.refused("the Rapid Data Locking security token \(tokenID) is refused (\(why))"), false)
            }
        }
        let readiness = verify(ak: ak, generation: generation, drives: drives, store: store)
        if case .ready = readiness { keytable.insert(ak, keyID: generation.keyID) }
        return (readiness, false)
    }

    /// Everything these generations need from the key servers and the keytable lacks — KMIP-held
    /// AKs and RDL tokens — in one batched fetch per server, by the identifiers recorded when
    /// they were stored.
    private func prefetchFromKeyServers(_ generations: [StoredKeyGeneration], store: any StateStore,
                                        deadline: Deadline) -> [String: KeyLookup] {
        var wanted: [WantedKey] = []
        for generation in generations where keytable.key(generation.keyID) == nil {
            if generation.provider == KeyProviderKind.kmip.rawValue {
                wanted.append(WantedKey(keyID: generation.keyID, locations: generation.keyLocations))
            }
            if let tokenID = generation.tokenID, keytable.key(tokenID) == nil, !wanted.contains(where: { $0.keyID == tokenID }) {
                let settings = try? store.rdl()
                wanted.append(WantedKey(keyID: tokenID, locations: KeyLocation.parse(settings?.tokenLocations ?? []), requireActive: true))
            }
        }
        guard !wanted.isEmpty, let servers = try? store.keyServers(), !servers.isEmpty else { return [:] }
        return keyServers(servers).fetchAll(wanted, deadline: deadline)
    }

    /// Whether `ak` gives the check values recorded for a drive of `generation`. One drive whose
    /// record does not match (a record damaged, a drive's identity changed) decides only that
    /// drive: the key is proven by any drive it matches, and refused only when it matches none.
    func verify(ak: Secret, generation: StoredKeyGeneration, drives: [StoredDrive], store: any StateStore) -> KeyReadiness {
        guard let id = generation.id else { return .refused("generation without id") }
        var mismatched: [String] = []
        for drive in drives {
            do {
                _ = try verifiedPINs.pins(ak: ak, drive: drive, generationID: id, store: store)
                return .ready(ak)
            } catch {
                if case .missing = error { continue }
                mismatched.append(drive.address)
            }
        }
        guard mismatched.isEmpty else {
            let shown = mismatched.prefix(3).joined(separator: ", ") + (mismatched.count > 3 ? " and \(mismatched.count - 3) more" : "")
            return .mismatch("the key for \(generation.keyID) matches no drive's check values (\(shown))")
        }
        return .refused("no drive has check values for key \(generation.keyID)")
    }

    // MARK: The RDL security token

    /// The security token `tokenID`: from the keytable, else fetched from the key servers (Active
    /// objects only) and kept. When it cannot be had, a second look says which kind of loss it is
    /// (refused, revoked, destroyed for good, unreachable). `prefetched`: what a batched fetch of
    /// the boot's keys found for it already.
    func securityToken(_ tokenID: String, store: any StateStore, deadline: Deadline, prefetched: KeyLookup? = nil) -> KeyLookup {
        if let held = keytable.key(tokenID) { return .found(held) }
        let servers = (try? store.keyServers()) ?? []
        let lookup = prefetched ?? keyServers(servers, requireActive: true).fetch(keyID: tokenID, deadline: deadline)
        switch lookup {
        case .found(let token):
            keytable.insert(token, keyID: tokenID)
            return lookup
        case .notHere(let why), .refused(let why):
            let threshold = (try? store.rdl())?.tokenThreshold ?? 1
            let check = checkToken(tokenID, servers: servers, needed: threshold, deadline: deadline)
            let detail = Self.lossDetail(check) ?? why
            if case .lost = check { return .refused(detail) }
            return .notHere(detail)
        }
    }

    /// The first words of the fault's detail when no server holds the token any more.
    static let tokenDestroyedEverywhere = "the token is destroyed on every key server"

    /// The fault's detail for a check that did not find the token (nil when it did).
    static func lossDetail(_ check: TokenCheck) -> String? {
        switch check {
        case .available: return nil
        case .unreachable(let why):
            return "no key server could be reached (\(why)); drives unlocked now stay so until a restart, locked ones stay locked until the token can be had"
        case .lost(let why, let destroyedEverywhere):
            if destroyedEverywhere { return "\(tokenDestroyedEverywhere) (\(why)): the data is locked for good" }
            return "the token is lost (\(why)); the drives stay locked from the next restart on"
        }
    }

    enum TokenCheck {
        case available
        case unreachable(String)
        case lost(String, destroyedEverywhere: Bool)
    }

    /// `needed` servers holding the token (a copy, or a share) Active: available. Otherwise lost
    /// when so many servers answered without it (refused the certificate, or hold no Active token)
    /// that the rest could not make up `needed`; unreachable when the servers that did not answer
    /// might; destroyed everywhere when too few servers hold it at all to ever rebuild it.
    /// Every server is asked before `deadline` (one command timeout from now unless given).
    func checkToken(_ tokenID: String, servers: [StoredKeyServer], needed: Int = 1, deadline: Deadline? = nil) -> TokenCheck {
        var lost: [String] = []
        var unreachable: [String] = []
        var destroyed = 0
        var active = 0
        for server in servers {
            do throws(KeyServerError) {
                let state = try pool(server, deadline: deadline).read { (client) throws(KeyServerError) -> ObjectState? in
                    try client.negotiateVersion()
                    guard let id = try client.locate([.name(tokenID)], maximumItems: 1).first else { return nil }
                    return try client.state(of: id)
                }
                if state == .active {
                    active += 1
                    if active >= needed { return .available }
                    continue
                }
                if state == nil || state == .destroyed || state == .destroyedCompromised { destroyed += 1 }
                lost.append("\(server.name): " + (state.map { "token \($0.name)" } ?? "no token (destroyed)"))
            } catch {
                switch error.code {
                case .keyServerAuthFailed, .keyServerInvalidAuth: lost.append("\(server.name): certificate refused")
                default: unreachable.append("\(server.name): \(error.code.rawValue)")
                }
            }
        }
        let shortOf = needed > 1 ? ["\(active) of the \(needed) token shares needed are Active"] : []
        if servers.count - lost.count < needed {
            return .lost((shortOf + lost + unreachable).joined(separator: "; "), destroyedEverywhere: servers.count - destroyed < needed)
        }
        return .unreachable((shortOf + unreachable + lost).joined(separator: "; "))
    }

    // MARK: Probes

    /// What a passing test learnt: the TLS protocol and cipher, and the Locate's round trip.
    struct ProbeResult {
        var tls: String?
        var roundTripSeconds: Double
    }

    /// TLS with the client certificate, authentication, a Locate; what it learnt when it worked.
    func probe(_ server: StoredKeyServer) -> Result<ProbeResult, KeyServerError> {
        Result { () throws(KeyServerError) -> ProbeResult in
            try pool(server).read { (client) throws(KeyServerError) -> ProbeResult in
                try client.connection.connect()
                try client.negotiateVersion()
                let sent = time.uptimeNanoseconds
                _ = try client.locate([.name("sedlock-connection-test")], maximumItems: 1)
                return ProbeResult(tls: client.connection.tlsSummary, roundTripSeconds: Double(time.uptimeNanoseconds - sent) / 1e9)
            }
        }
    }
}

/// Whether a generation's AK is in hand and proven.
enum KeyReadiness: Sendable {
    case ready(Secret)
    /// Not in hand now; perhaps later (a key server away).
    case unavailable(String)
    /// Refused for good in this wait: a source's hard error, or nothing to verify it against.
    case refused(String)
    /// In hand, but it does not give the drives' check values.
    case mismatch(String)

    /// Why it cannot be used (nil when ready).
    var reason: String? {
        switch self {
        case .ready: return nil
        case .unavailable(let why), .refused(let why), .mismatch(let why): return why
        }
    }
}
