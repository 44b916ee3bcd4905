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
/// Where a long array change reports each drive as it finishes (`LockManager.progress`). A struct
/// and not a bare optional closure on purpose: for a task-local `Optional<@Sendable (DriveProgress)
/// -> Void>`, Swift 6.3's optimized builds passed no type metadata to swift_task_localValuePush,
/// and every --direct command of a release build crashed there.
public struct ProgressReporter: Sendable {
    public let report: @Sendable (DriveProgress) -> Void

    public init(_ report: @escaping @Sendable (DriveProgress) -> Void) { self.report = report }
}

public final class LockManager: Sendable {
    /// Who the request in hand comes from, for the audit log ("uid 0 via control socket"); the
    /// configuration's actor when unset.
    @TaskLocal public static var requester: String?
    /// Told of each drive of a long array change (setup, rekey, array add, erase, RDL) as it
    /// finishes, before the report: the CLI prints it, sedlockd sends it ahead of the reply.
    @TaskLocal public static var progress: ProgressReporter?

    private let settings: CurrentConfiguration
    /// The configuration now; sedlockd swaps it on reload (`reconfigure`).
    public var configuration: LockManagerConfiguration { settings.now }
    public let factory: TransportFactory
    public let time: any TimeSource
    /// The keys: keytable, verified PINs, key sources and stores, the RDL token, key servers.
    public let keys: KeyService
    public var keytable: Keytable { keys.keytable }
    private let owners = Mutex<[String: DriveOwner]>([:])
    /// The state, opened for writing on first need and kept (with its writer lock) for the life of
    /// this manager, as sedlockd holds it; one-shot CLI runs release it when they exit.
    private let writer = Mutex<StateDatabase?>(nil)
    /// The SEDs in reach that are not the array's, as the drive monitor last looked.
    let sightings = DriveSightings()

    /// `connector` reaches the key servers: mutual TLS unless a test carries KMIP in-process.
    public init(configuration: LockManagerConfiguration, factory: TransportFactory, time: any TimeSource = SystemTime(),
                connector: any KeyServerConnector = TLSKeyServerConnector()) {
        let settings = CurrentConfiguration(configuration)
        self.settings = settings
        self.factory = factory
        self.time = time
        keys = KeyService(connector: connector, time: time) { settings.now }
    }

    /// Takes new limits and deadlines for the requests that start from now on. The state
    /// directory stays: this manager holds it open.
    public func reconfigure(_ new: LockManagerConfiguration) throws(ControlError) {
        try settings.update { (current: inout LockManagerConfiguration) throws(ControlError) in
            guard new.stateDirectory.path == current.stateDirectory.path else {
                throw ControlError(.badRequest, "the state directory cannot change while sedlockd runs (\(current.stateDirectory.path))",
                                   fix: "restart sedlockd to use \(new.stateDirectory.path)")
            }
            // Whether reads answer from monitors is the process's nature, not the file's.
            var new = new
            new.readsFromMonitors = current.readsFromMonitors
            current = new
        }
    }

    /// Answers any request; failures come back as `.failure`, never as a thrown error.
    /// `secret` is what a request needs that never crosses the control socket: the adopted
    /// drives' current password, or a PSID.
    public func respond(to request: ControlRequest, secret: Secret? = nil) async -> ControlResponse {
        let response = await answer(request, secret: secret)
        if Self.changesTheArray(request) {
            backUpState()
            // Beside the keys, what a new host needs to take the array over (nothing secret).
            if let store = try? openState(.write) { keys.publishRecoveryRecord(store: store) }
        } else if Self.finishesCutOffChanges(request), let store = try? openState(.write) {
            // A change killed before it published (or a rekey this unlock rolled forward) left
            // the servers' record behind the state: sent again only when it differs.
            keys.publishRecoveryRecord(store: store, onlyIfStale: true)
        }
        return response
    }

    /// Requests after which the state is backed up: what changes keys, drives or key servers.
    static func changesTheArray(_ request: ControlRequest) -> Bool {
        switch request {
        case .setup, .rekey, .arrayAdd, .arrayRemove, .erase, .keyServerAdd, .keyServersAdd, .keyServerModify, .keyServerRemove, .keysRetire, .keysDestroy,
             .rdlEnable, .rdlRotate, .rdlDisable, .recover: return true
        default: return false
        }
    }

    /// Requests after which the recovery record is compared with the state and sent when it
    /// differs: the unlocks every boot makes, which also roll an unfinished rekey forward.
    static func finishesCutOffChanges(_ request: ControlRequest) -> Bool {
        if case .unlock = request { return true }
        return false
    }

    private func answer(_ request: ControlRequest, secret: Secret?) async -> ControlResponse {
        do {
            switch request {
            case .setup(let setup):
                return .array(try await setup.fromPassphrase == true ? self.setup(setup, passphrase: secret)
                                                                     : self.setup(setup, adoptionPassword: secret))
            case .unlock(let unlock): return .array(try await self.unlock(unlock))
            case .lock(let lock): return .array(try await self.lock(lock))
            case .status: return .status(try await status())
            case .guardStatus(let address): return .guardState(try guardStatus(address: address))
            case .guardReset(let address): return .guardState(try guardReset(address: address))
            case .keyServerAdd(let add): return .keyServers(try keyServerAdd(add))
            case .keyServerRemove(let names): return .keyServers(try keyServerRemove(names: names))
            case .keyServerModify(let modify): return .keyServers(try keyServerModify(modify))
            case .keyServersAdd(let requests): return .keyServers(try keyServersAdd(requests))
            case .keyServerShow: return .keyServers(try keyServerShow())
            case .keyServerStatus: return .keyServers(try keyServerStatus())
            case .keyServerQuery: return .keyServers(try keyServerQuery())
            case .keysList: return .keys(try keysList())
            case .keysRestore(let restore): return .keys(try keysRestore(restore))
            case .keysRetire(let keyID): return .keys(try keysRetire(keyID: keyID))
            case .keysDestroy(let keyID): return .keys(try keysDestroy(keyID: keyID))
            case .recover(let recover): return .array(try await self.recover(recover))
            case .rekey(let rekey): return .array(try await self.rekey(rekey, passphrase: secret))
            case .arrayAdd(let add): return .array(try await arrayAdd(add, adoptionPassword: secret))
            case .arrayRemove(let address, let revert, let dryRun):
                return .array(try await arrayRemove(address: address, revert: revert, dryRun: dryRun))
            case .erase(let erase): return .array(try await self.erase(erase, psid: secret))
            case .faults: return .faults(try faults())
            case .rdlTest(let server): return .rdl(try rdlTest(server: server))
            case .rdlEnable(let enable): return .array(try await rdlEnable(enable))
            case .rdlStatus: return .rdl(try rdlStatus())
            case .rdlRotate: return .array(try await rdlRotate())
            case .rdlDisable: return .array(try await rdlDisable())
            case .reload:
                return .failure(ControlError(.badRequest, "only sedlockd reloads a configuration; a command in this process reads it afresh",
                                             fix: "run `systemctl reload sedlockd.service` (or `sedlockd reload`) where sedlockd serves"))
            }
        } catch {
            return .failure(error)
        }
    }

    // MARK: Shared pieces

    /// The one owner of the drive at `address` in this process.
    func owner(for address: String) throws(ControlError) -> DriveOwner {
        let parsed: DeviceAddress
        do { parsed = try DeviceAddress.parse(address) } catch { throw ControlError(error) }
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
            throw ControlError(error)
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

    func audit(_ store: any StateStore, _ action: String, target: String, outcome: String) {
        try? store.appendAudit(auditEntry(action, target: target, outcome: outcome))
    }

    func auditEntry(_ action: String, target: String, outcome: String) -> AuditEntry {
        AuditEntry(at: time.wallTime, actor: Self.requester ?? configuration.actor, action: action, target: target, outcome: outcome)
    }

    /// Guard 4, keys first (`KeyService.load`), and the RDL token's fault raised or cleared by
    /// what became of each token asked for.
    func loadKeys(generationIDs: Set<Int64>, drives: [StoredDrive], store: any StateStore,
                  deadline: Deadline) throws(ControlError) -> [Int64: KeyReadiness] {
        let loaded = try keys.load(generationIDs: generationIDs, drives: drives, store: store, deadline: deadline)
        for lookup in loaded.tokens.values { recordTokenFault(store, detail: lookup.reason) }
        return loaded.readiness
    }

    /// Guard 4 with a deadline of one command timeout from now.
    func loadKeys(generationIDs: Set<Int64>, drives: [StoredDrive], store: any StateStore) throws(ControlError) -> [Int64: KeyReadiness] {
        try loadKeys(generationIDs: generationIDs, drives: drives, store: store,
                     deadline: Deadline.after(seconds: configuration.commandTimeout, time: time))
    }
}
