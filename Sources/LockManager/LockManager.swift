import ControlAPI
import Foundation
import KMIP
import Keys
import LockState
import Opal
import Platform
import SecurityTransport
import Synchronization

/// The array's lock manager: its drives, keys, guards and journaled changes, over the state
/// database. sedlockd answers its control socket with `respond(to:)`; the CLI calls it in process with --direct.
public final class LockManager: Sendable {
    /// Who the request in hand comes from, for the audit log ("uid 0 via control socket"); the
    /// configuration's actor when unset.
    @TaskLocal public static var requester: String?

    private let settings: Mutex<LockManagerConfiguration>
    /// The configuration now; sedlockd swaps it on reload (`reconfigure`).
    public var configuration: LockManagerConfiguration { settings.withLock { $0 } }
    public let factory: TransportFactory
    public let time: any TimeSource
    public let keytable = Keytable()
    /// PINs proven under keytable keys, for lock and unlock on demand.
    let verifiedPINs = VerifiedPINCache()
    private let owners = Mutex<[String: DriveOwner]>([:])
    /// The state, opened for writing on first need and kept (with its writer lock) for the life of
    /// this manager, as sedlockd holds it; one-shot CLI runs release it when they exit.
    private let writer = Mutex<StateDatabase?>(nil)

    public init(configuration: LockManagerConfiguration, factory: TransportFactory, time: any TimeSource = SystemTime()) {
        settings = Mutex(configuration)
        self.factory = factory
        self.time = time
    }

    /// Takes new limits and deadlines for the requests that start from now on. The state
    /// directory stays: this manager holds it open.
    public func reconfigure(_ new: LockManagerConfiguration) throws(ControlError) {
        try settings.withLock { (current: inout LockManagerConfiguration) throws(ControlError) in
            guard new.stateDirectory.path == current.stateDirectory.path else {
                throw ControlError(.badRequest, "the state directory cannot change while sedlockd runs (\(current.stateDirectory.path))",
                                   fix: "restart sedlockd to use \(new.stateDirectory.path)")
            }
            current = new
        }
    }

    /// Answers any request; failures come back as `.failure`, never as a thrown error.
    /// `secret` is what a request needs that never crosses the control socket: the adopted
    /// drives' current password, or a PSID.
    public func respond(to request: ControlRequest, secret: Secret? = nil) async -> ControlResponse {
        do {
            switch request {
            case .setup(let setup): return .array(try await self.setup(setup, adoptionPassword: secret))
            case .unlock(let unlock): return .array(try await self.unlock(unlock))
            case .lock(let lock): return .array(try await self.lock(lock))
            case .status: return .status(try await status())
            case .guardStatus(let address): return .guardState(try guardStatus(address: address))
            case .guardReset(let address): return .guardState(try guardReset(address: address))
            case .keyServerAdd(let add): return .keyServers(try keyServerAdd(add))
            case .keyServerRemove(let name): return .keyServers(try keyServerRemove(name: name))
            case .keyServerShow: return .keyServers(try keyServerShow())
            case .keyServerStatus: return .keyServers(try keyServerStatus())
            case .keyServerQuery: return .keyServers(try keyServerQuery())
            case .keysList: return .keys(try keysList())
            case .keysRestore(let restore): return .keys(try keysRestore(restore))
            case .rekey(let rekey): return .array(try await self.rekey(rekey))
            case .arrayAdd(let add): return .array(try await arrayAdd(add, adoptionPassword: secret))
            case .arrayRemove(let address, let revert): return .array(try await arrayRemove(address: address, revert: revert))
            case .erase(let erase): return .array(try await self.erase(erase, psid: secret))
            case .faults: return .faults(try faults())
            case .rdlTest(let server): return .rdl(try rdlTest(server: server))
            case .rdlEnable(let enable): return .array(try await rdlEnable(enable))
            case .rdlStatus: return .rdl(try rdlStatus())
            case .rdlRotate: return .array(try await rdlRotate())
            case .rdlDisable: return .array(try await rdlDisable())
            }
        } catch {
            return .failure(error)
        }
    }

    // MARK: Shared pieces

    /// The one owner of the drive at `address` in this process.
    func owner(for address: String) throws(ControlError) -> DriveOwner {
        let parsed: DeviceAddress
        do { parsed = try DeviceAddress.parse(address) } catch { throw ControlError(.badRequest, error.description) }
        return owners.withLock { table in
            if let existing = table[address] { return existing }
            let made = DriveOwner(address: parsed, factory: factory, commandTimeout: configuration.commandTimeout, time: time)
            table[address] = made
            return made
        }
    }

    func openState(_ access: StateDatabase.Access) throws(ControlError) -> StateDatabase {
        if let open = writer.withLock({ $0 }) { return open }
        do {
            let opened = try StateDatabase(directory: configuration.stateDirectory, access: access)
            if access == .write { writer.withLock { $0 = opened } }
            return opened
        } catch {
            throw ControlError(error.code == .busy ? .busy : (error.code == .invalid ? .badRequest : .failed), error.message,
                               fix: error.fix)
        }
    }

    /// Opens the state for writing now and keeps it (with its writer lock) for the life of this
    /// manager: what sedlockd does before it tells systemd it is ready.
    public func holdState() throws(ControlError) {
        _ = try openState(.write)
    }

    /// Closes the state and releases the writer lock now (a process that hands over to another, a
    /// daemon stopping), instead of whenever the last reference goes.
    public func releaseState() {
        writer.withLock { open in
            open?.close()
            open = nil
        }
    }

    func lockoutGuard(_ store: any StateStore) -> LockoutGuard {
        LockoutGuard(store: store, limit: configuration.lockoutLimit, tryLimitMargin: configuration.tryLimitMargin)
    }

    /// Where a generation's AK is fetched from, in order: the systemd credential and the
    /// configured key directory, then wherever the generation records it was stored.
    func keySources(for generation: StoredKeyGeneration, store: any StateStore) -> [any KeySource] {
        if generation.provider == KeyProviderKind.kmip.rawValue {
            return [KMIPKeySource(servers: (try? store.keyServers()) ?? [], timeout: configuration.commandTimeout)]
        }
        var sources: [any KeySource] = [LocalKeySource(directory: configuration.keyDirectory,
                                                       credentialsDirectory: configuration.credentialsDirectory)]
        var directories: Set<String> = [configuration.keyDirectory]
        for location in generation.locations where location.hasPrefix("local:") {
            let directory = (String(location.dropFirst(6)) as NSString).deletingLastPathComponent
            if directories.insert(directory).inserted {
                sources.append(LocalKeySource(directory: directory, credentialsDirectory: nil))
            }
        }
        return sources
    }

    func audit(_ store: any StateStore, _ action: String, target: String, outcome: String) {
        try? store.appendAudit(auditEntry(action, target: target, outcome: outcome))
    }

    func auditEntry(_ action: String, target: String, outcome: String) -> AuditEntry {
        AuditEntry(at: time.wallTime, actor: Self.requester ?? configuration.actor, action: action, target: target, outcome: outcome)
    }

    static func stateFailure(_ error: StateError) -> ControlError {
        ControlError(error.code == .busy ? .busy : .failed, error.message, fix: error.fix)
    }

    /// Guard 4, keys first: fetches the AK of every generation in `generationIDs` from the key
    /// sources (retrying until `deadline` while none has it) and verifies each against the check
    /// values of a drive of that generation. Nothing is touched on any drive here.
    func loadKeys(generationIDs: Set<Int64>, drives: [StoredDrive], store: any StateStore,
                  deadline: Deadline) throws(ControlError) -> [Int64: KeyReadiness] {
        let generations: [StoredKeyGeneration]
        do { generations = try store.generations() } catch { throw Self.stateFailure(error) }
        var out: [Int64: KeyReadiness] = [:]
        var waiting = generationIDs
        while true {
            let prefetched = prefetchFromKeyServers(generations.filter { waiting.contains($0.id ?? -1) }, store: store, deadline: deadline)
            for id in waiting {
                guard let generation = generations.first(where: { $0.id == id }) else {
                    out[id] = .unavailable("key generation \(id) is not in the state")
                    continue
                }
                // The keytable holds each generation's PIN input: its AK, followed by the RDL
                // security token for a generation that needs one.
                let ak: Secret
                if let held = keytable.key(generation.keyID) {
                    ak = held
                } else {
                    var reasons: [String] = []
                    var found: Secret?
                    for source in keySources(for: generation, store: store) where found == nil {
                        let fetched = source is KMIPKeySource ? prefetched[generation.keyID] : nil
                        switch fetched ?? source.fetch(keyID: generation.keyID, deadline: deadline) {
                        case .found(let key): found = key
                        case .notHere(let why): reasons.append("\(source.name): \(why)")
                        }
                    }
                    guard let found else {
                        out[id] = .unavailable("key \(generation.keyID) not found (\(reasons.joined(separator: "; ")))")
                        continue
                    }
                    if let tokenID = generation.tokenID {
                        switch securityToken(tokenID, store: store, deadline: deadline, prefetched: prefetched[tokenID]) {
                        case .found(let token): ak = found.appending(token)
                        case .notHere(let why):
                            out[id] = .unavailable("the Rapid Data Locking security token \(tokenID) is unavailable (\(why))")
                            continue
                        }
                    } else {
                        ak = found
                    }
                }
                out[id] = verify(ak: ak, generation: generation, drives: drives, store: store)
                if case .ready = out[id] { keytable.insert(ak, keyID: generation.keyID) }
            }
            waiting = Set(out.filter { if case .unavailable = $0.value { return true } else { return false } }.keys)
            if waiting.isEmpty || deadline.hasPassed { return out }
            time.sleep(nanoseconds: min(1_000_000_000, deadline.remainingNanoseconds))
        }
    }

    /// Everything these generations need from the key servers and the keytable lacks — KMIP-held
    /// AKs and RDL tokens — in one batched fetch per server, by the identifiers recorded when
    /// they were stored.
    private func prefetchFromKeyServers(_ generations: [StoredKeyGeneration], store: any StateStore,
                                        deadline: Deadline) -> [String: KeyLookup] {
        var wanted: [WantedKey] = []
        for generation in generations where keytable.key(generation.keyID) == nil {
            if generation.provider == KeyProviderKind.kmip.rawValue {
                wanted.append(WantedKey(keyID: generation.keyID, locations: generation.locations))
            }
            if let tokenID = generation.tokenID, keytable.key(tokenID) == nil, !wanted.contains(where: { $0.keyID == tokenID }) {
                let settings = try? store.rdl()
                wanted.append(WantedKey(keyID: tokenID, locations: settings?.tokenLocations ?? [], requireActive: true))
            }
        }
        guard !wanted.isEmpty, let servers = try? store.keyServers(), !servers.isEmpty else { return [:] }
        return KMIPKeySource(servers: servers, timeout: configuration.commandTimeout).fetchAll(wanted, deadline: deadline)
    }

    private func verify(ak: Secret, generation: StoredKeyGeneration, drives: [StoredDrive],
                        store: any StateStore) -> KeyReadiness {
        guard let id = generation.id else { return .unavailable("generation without id") }
        for drive in drives {
            do {
                _ = try verifiedPINs.pins(ak: ak, drive: drive, generationID: id, store: store)
                return .ready(ak)
            } catch {
                if case .missing = error { continue }
                return .mismatch("the key for \(generation.keyID) does not match \(drive.address)'s check values")
            }
        }
        return .unavailable("no drive has check values for key \(generation.keyID)")
    }
}

/// Whether a generation's AK is in hand and proven.
enum KeyReadiness: Sendable {
    case ready(Secret)
    case unavailable(String)
    case mismatch(String)
}
