import ControlAPI
import Foundation
import Keys
import KMIP
import LockState
import Platform

/// Rapid Data Locking (Pure FlashArray's "security token"): a secondary key on the KMIP servers
/// that every drive's PINs need besides the AK (PIN input = AK ‖ token). Once enabled it is
/// permanent. Without the token no PIN can be derived, so the drives stay locked from the next
/// restart on — with 0 authentication attempts, as keys come first.
/// What sedlockd's token monitor found.
public enum RDLMonitorResult: Sendable, Equatable {
    case notEnabled
    case available
    /// Unreachable or lost; the data stays available until the next restart.
    case unavailable(String)
    /// Lost, and the settings say lock on loss: lock every drive now.
    case lockNow(String)
}

extension LockManager {
    /// The KMIP Object Group of security tokens.
    static let tokenTag = "sedlock-rdl-token"

    /// Where an unlock must fetch keys from: each live generation's AK provider, and KMIP as well
    /// for one that needs an RDL token. The boot units use it: an array that needs KMIP at all is
    /// unlocked after the network is up.
    public func keySourcesNeeded() throws(ControlError) -> Set<KeyProviderKind> {
        let store = try openState(.read)
        do {
            var needed: Set<KeyProviderKind> = []
            for generation in try store.generations() where generation.state == .active || generation.state == .pending {
                if let provider = KeyProviderKind(rawValue: generation.provider) { needed.insert(provider) }
                if generation.tokenID != nil { needed.insert(.kmip) }
            }
            return needed
        } catch { throw ControlError(error) }
    }

    /// Pure's `purearray test security-token`: TLS with the client certificate, authentication, a
    /// Locate — OK, or which of the two failure classes and why. Recorded as the last test.
    public func rdlTest(server name: String) throws(ControlError) -> RDLReport {
        let store = try openState(.write)
        let server = try keyServer(named: name, store: store)
        let test = rdlProbe(server)
        do {
            if var settings = try store.rdl() {
                settings.lastTestAt = test.at
                settings.lastTestResult = test.ok ? "ok" : "\(test.failure ?? ""): \(test.cause ?? "")"
                try store.saveRDL(settings)
            }
        } catch { throw ControlError(error) }
        var report = try rdlReport(store)
        report.test = test
        return report
    }

    /// Where RDL stands: in force or not, its server, token, since when, the last test.
    public func rdlStatus() throws(ControlError) -> RDLReport {
        try rdlReport(try openState(.read))
    }

    /// Turns RDL on for good: the named server must pass the test and every drive be healthy;
    /// a new token goes to every key server (Register + Activate), then a journaled rekey moves
    /// every drive to PINs that need the AK and the token.
    public func rdlEnable(_ request: RDLEnableRequest) async throws(ControlError) -> ArrayReport {
        let store = try openState(.write)
        let generations: [StoredKeyGeneration]
        let servers: [StoredKeyServer]
        do {
            generations = try store.generations()
            servers = try store.keyServers()
        } catch { throw ControlError(error) }
        if generations.contains(where: { $0.tokenID != nil && ($0.state == .active || $0.state == .pending) }) {
            throw ControlError(.badRequest, "Rapid Data Locking is enabled already, and it is permanent",
                               fix: "see `sedlock rdl status`")
        }
        let server = try keyServer(named: request.server, store: store)
        if let threshold = request.threshold, !(2...max(2, servers.count)).contains(threshold) || servers.count < 2 {
            throw ControlError(.badRequest, "a token threshold of \(threshold) needs 2 to \(servers.count) key servers (\(servers.count) configured)",
                               fix: servers.count < 2 ? "add key servers first (`sedlock keyserver add`), or leave out --threshold"
                                                      : "choose a threshold from 2 to \(servers.count)")
        }
        let test = rdlProbe(server)
        guard test.ok else {
            throw ControlError(.unreachable, "\(server.name): \(test.failure ?? "the test failed") (\(test.cause ?? ""))",
                               fix: "fix the key server or the appliance's certificate until `sedlock rdl test --kmip \(server.name)` passes")
        }
        // Every drive healthy: reachable, unlocked, not guarded, no unfinished setup or rekey (the
        // key server was tested just above).
        let health = try await status(testingKeyServers: false)
        let pending: [JournalEntry]
        do { pending = try store.pendingJournals() } catch { throw ControlError(error) }
        if let journal = pending.first {
            throw ControlError(.badRequest, "a \(journal.kind.rawValue) is unfinished", fix: "finish it first (`sedlock \(journal.kind.rawValue)`)")
        }
        if let clear = health.drives.first(where: { $0.mediaEncryption == false }) {
            // RDL's promise — the token gone, the data gone — is a cryptographic one.
            throw ControlError(.badRequest, "\(clear.address) does not encrypt its media (\(clear.family ?? "lock only")): without the token its data would still be readable off the media, so Rapid Data Locking would promise what it cannot keep",
                               fix: "replace or remove the drives that do not encrypt (`sedlock array remove`), then enable it")
        }
        if let sick = health.drives.first(where: { $0.error != nil || $0.locked != false || $0.guarded != nil }) {
            let why = sick.error.map { "unreachable (\($0))" } ?? (sick.guarded.map { "guarded (\($0))" } ?? "locked")
            throw ControlError(.badRequest, "\(sick.address) is \(why); Rapid Data Locking is enabled only on a healthy, unlocked array",
                               fix: "unlock the array and clear its faults first")
        }
        if request.dryRun == true {
            let custody = request.threshold.map { "as \($0)-of-\(servers.count) shares" } ?? "on each of the \(servers.count) key server(s)"
            return ArrayReport(operation: "rdl enable --dry-run",
                               drives: health.drives.map {
                                   DriveOutcome(address: $0.address, result: .wouldChange,
                                                detail: "would be rekeyed to PINs that need the security token, kept \(custody)")
                               },
                               note: "dry run: \(server.name) passed its test and every drive is healthy; nothing was changed — enabling is permanent")
        }
        return try await rekeyToNewToken(StoredRDL(server: server.name, lockOnLoss: request.lockOnLoss, requestedAt: time.wallTime,
                                                   tokenThreshold: request.threshold),
                                         servers: servers, store: store, action: "rdl enable")
    }

    /// A new token on every key server, and every drive rekeyed to need it (journaled). The old
    /// token stays on the servers with the generations that used it.
    public func rdlRotate() async throws(ControlError) -> ArrayReport {
        let store = try openState(.write)
        _ = try enabledGeneration(store)
        let servers: [StoredKeyServer]
        let settings: StoredRDL
        do {
            servers = try store.keyServers()
            guard let saved = try store.rdl() else { throw ControlError(.failed, "the RDL settings are missing from the state") }
            settings = saved
        } catch {
            throw ControlError(error)
        }
        return try await rekeyToNewToken(settings, servers: servers, store: store, action: "rdl rotate")
    }

    /// A new token on every key server (recorded in the settings before any drive changes), then
    /// every drive rekeyed, through the journal, to PINs that need it.
    private func rekeyToNewToken(_ settings: StoredRDL, servers: [StoredKeyServer], store: StateDatabase,
                                 action: String) async throws(ControlError) -> ArrayReport {
        guard let token = Secret.random(count: 32) else { throw ControlError(.failed, "OpenSSL's random generator failed") }
        let tokenID = UUID().uuidString.lowercased()
        var settings = settings
        settings.tokenLocations = try keys.keyServers(servers, threshold: settings.tokenThreshold)
            .store(keyID: tokenID, tag: Self.tokenTag, ak: token).map(\.description)
        do { try store.saveRDL(settings) } catch { throw ControlError(error) }
        keytable.insert(token, keyID: tokenID)
        audit(store, action, target: "all", outcome: "token \(tokenID) stored on \(servers.count) key server(s)")
        return try await rekey(RekeyRequest(), token: .new(id: tokenID, secret: token))
    }

    /// Leaves RDL, the only way there is: every drive crypto-erased (no data survives), then
    /// rekeyed to PINs from the AK alone, then the settings dropped.
    public func rdlDisable() async throws(ControlError) -> ArrayReport {
        let store = try openState(.write)
        _ = try enabledGeneration(store)
        let drives: [StoredDrive]
        do { drives = try store.drives() } catch { throw ControlError(error) }
        let erased = try await erase(EraseRequest(drives: drives.map(\.address), method: .crypto), psid: nil)
        guard erased.allSucceeded else {
            return ArrayReport(operation: "rdl disable", drives: erased.drives,
                               note: "not every drive was erased, so RDL stays on: fix the drives, then disable again")
        }
        let rekeyed = try await rekey(RekeyRequest(), token: .drop)
        guard rekeyed.allSucceeded else { return rekeyed }
        do { try store.deleteRDL() } catch { throw ControlError(error) }
        audit(store, "rdl disable", target: "all", outcome: "every drive erased; PINs from the AK alone")
        return ArrayReport(operation: "rdl disable", drives: rekeyed.drives,
                           note: "Rapid Data Locking is off; every drive was crypto-erased")
    }

    /// The active generation, when it needs a token and no change is unfinished; else why not.
    private func enabledGeneration(_ store: any StateStore) throws(ControlError) -> StoredKeyGeneration {
        do {
            let generations = try store.generations()
            guard let active = generations.first(where: { $0.state == .active }), active.tokenID != nil else {
                throw ControlError(.badRequest, "Rapid Data Locking is not enabled", fix: "see `sedlock rdl status`")
            }
            if let pending = try store.pendingJournals().first {
                throw ControlError(.badRequest, "a \(pending.kind.rawValue) is unfinished", fix: "finish it first (`sedlock \(pending.kind.rawValue)`)")
            }
            return active
        } catch {
            throw ControlError(error)
        }
    }

    /// The security token `tokenID` (`KeyService.securityToken`), raising `RdlTokenUnavailable`
    /// when it cannot be had and clearing it when it can.
    func securityToken(_ tokenID: String, store: any StateStore, deadline: Deadline) -> KeyLookup {
        let lookup = keys.securityToken(tokenID, store: store, deadline: deadline)
        recordTokenFault(store, detail: lookup.reason)
        return lookup
    }

    /// The running check of the token (sedlockd's monitor): asks the key servers, not the keytable.
    /// Raises or clears `RdlTokenUnavailable`; the data stays available (as on Pure) unless the
    /// settings say lock on loss and the token is lost — revoked, destroyed, or the certificate
    /// refused — which locks every drive now. A server that cannot be reached is not a loss.
    public func rdlMonitor() async throws(ControlError) -> RDLMonitorResult {
        let store = try openState(.write)
        let generations: [StoredKeyGeneration]
        let servers: [StoredKeyServer]
        let settings: StoredRDL?
        do {
            generations = try store.generations()
            servers = try store.keyServers()
            settings = try store.rdl()
        } catch { throw ControlError(error) }
        guard let tokenID = generations.last(where: { ($0.state == .active || $0.state == .pending) && $0.tokenID != nil })?.tokenID else {
            return .notEnabled
        }
        let check = keys.checkToken(tokenID, servers: servers, needed: settings?.tokenThreshold ?? 1)
        guard let detail = KeyService.lossDetail(check) else {
            recordTokenFault(store, detail: nil)
            return .available
        }
        recordTokenFault(store, detail: detail)
        if case .lost = check, settings?.lockOnLoss == true { return .lockNow(detail) }
        return .unavailable(detail)
    }

    /// Raises `RdlTokenUnavailable` (or clears it, with nil).
    func recordTokenFault(_ store: any StateStore, detail: String?) {
        let raised = detail.map {
            fault("RdlTokenUnavailable", "critical", "array",
                  action: "restore the appliance's trust on the key servers (certificate) or the token's availability; "
                      + "a destroyed token means the data is gone for good",
                  detail: $0)
        }
        recordFaults(store, raised.map { [$0] } ?? [], scope: ["RdlTokenUnavailable"], objects: ["array"])
    }

    private func keyServer(named name: String, store: any StateStore) throws(ControlError) -> StoredKeyServer {
        let servers: [StoredKeyServer]
        do { servers = try store.keyServers() } catch { throw ControlError(error) }
        guard let server = servers.first(where: { $0.name == name }) else {
            throw ControlError(.badRequest, "no key server named \(name)",
                               fix: servers.isEmpty ? "add one first (`sedlock keyserver add`)" : "one of: \(servers.map(\.name).joined(separator: ", "))")
        }
        return server
    }

    /// The test, sorted into Pure's two failure classes.
    private func rdlProbe(_ server: StoredKeyServer) -> RDLReport.Test {
        switch keys.probe(server) {
        case .success:
            return RDLReport.Test(server: server.name, at: time.wallTime, ok: true, failure: nil, cause: nil)
        case .failure(let error):
            let cannotConnect: Set<KeyServerError.Code> = [.keyServerUnavailable, .keyServerSslError, .keyServerConfigurationError]
            let failure = cannotConnect.contains(error.code) ? RDLReport.Test.cannotConnect : RDLReport.Test.notReady
            return RDLReport.Test(server: server.name, at: time.wallTime, ok: false, failure: failure, cause: error.description)
        }
    }

    private func rdlReport(_ store: any StateStore) throws(ControlError) -> RDLReport {
        do {
            let settings = try store.rdl()
            let live = try store.generations().filter { $0.state == .active || $0.state == .pending }
            let tokenGeneration = live.last(where: { $0.tokenID != nil })
            let state: String
            if let tokenGeneration {
                state = tokenGeneration.state == .active && !live.contains(where: { $0.tokenID == nil && $0.state == .active })
                    ? "enabled" : "enabling (rekey unfinished: `sedlock rekey` finishes it)"
            } else {
                state = settings == nil ? "not enabled" : "not enabled (an enable stopped before any drive changed)"
            }
            var report = RDLReport(state: state, server: settings?.server, tokenID: tokenGeneration?.tokenID,
                                   since: tokenGeneration?.createdAt, lockOnLoss: settings?.lockOnLoss ?? false)
            report.tokenLocations = settings?.tokenLocations ?? []
            report.tokenThreshold = settings?.tokenThreshold
            report.lastTestAt = settings?.lastTestAt
            report.lastTestResult = settings?.lastTestResult
            if case .some = tokenGeneration, let fault = try store.openFaults().first(where: { $0.name == "RdlTokenUnavailable" }) {
                report.state += fault.detail.hasPrefix(KeyService.tokenDestroyedEverywhere)
                    ? "; \(KeyService.tokenDestroyedEverywhere): the drives are locked for good, their data is gone"
                    : "; the token is unavailable: the drives will stay locked at the next restart"
            }
            return report
        } catch { throw ControlError(error) }
    }
}
