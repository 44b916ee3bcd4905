import Certificates
import ControlAPI
import Foundation
import LockState

/// The faults the lock manager can tell from its state and files, evaluated whenever they are
/// asked for (and by the operations that end them), raised and cleared in the state.
extension LockManager {
    /// The fault names evaluated from the state alone; each evaluation may clear any of them.
    static let stateFaults: Set<String> = ["DriveGuarded", "BootLoopHold", "RekeyIncomplete", "SetupIncomplete", "KmipCertificateFault",
                                           "StateDatabaseLost"]

    public func faults() throws(ControlError) -> FaultReport {
        let store = try openState(.write)
        do {
            var conditions = try currentConditions(store)
            if let lost = store.fileProblem() {
                // What this process holds is now the only full copy: write it out at once.
                let saved: String
                do { try store.backUp(); saved = "a copy as sedlockd holds it was written to \(configuration.stateDirectory.backupPath)" } catch {
                    saved = "writing a copy failed too (\(error.message))"
                }
                conditions.append(fault("StateDatabaseLost", "critical", configuration.stateDirectory.databasePath,
                                        action: "do not reboot: stop sedlockd, then `mv \(configuration.stateDirectory.backupPath) "
                                            + "\(configuration.stateDirectory.databasePath)` and start it again; find out what removed the file",
                                        detail: "\(lost); \(saved)"))
            }
            let open = try store.syncFaults(conditions, scope: Self.stateFaults, objects: nil, at: time.wallTime)
            let cleared = try store.clearedFaults(limit: 10)
            return FaultReport(open: open.map(Self.report), recentlyCleared: cleared.map(Self.report))
        } catch { throw ControlError(error) }
    }

    /// After a change set (setup, rekey, membership, key servers, generations, RDL, erase): a
    /// verified copy of the state in `state.sqlite.bak`; a failure raises `StateBackupFailed`.
    func backUpState() {
        guard let store = try? openState(.write) else { return }
        do {
            try store.backUp()
            recordFaults(store, [], scope: ["StateBackupFailed"], objects: ["state"])
        } catch {
            recordFaults(store, [fault("StateBackupFailed", "warning", "state",
                                       action: "free space or fix permissions in \(configuration.stateDirectory.path); the next change writes it again",
                                       detail: error.message)], scope: ["StateBackupFailed"], objects: ["state"])
        }
    }

    /// Raises or clears the event faults one operation observed (`scope`: the names it can judge,
    /// `objects`: what it looked at).
    func recordFaults(_ store: any StateStore, _ current: [StoredFault], scope: Set<String>, objects: Set<String>) {
        _ = try? store.syncFaults(current, scope: scope, objects: objects, at: time.wallTime)
    }

    func fault(_ name: String, _ severity: String, _ object: String, action: String, detail: String) -> StoredFault {
        StoredFault(name: name, severity: severity, object: object, raisedAt: time.wallTime, action: action, detail: detail)
    }

    private func currentConditions(_ store: any StateStore) throws(StateError) -> [StoredFault] {
        var faults: [StoredFault] = []
        for drive in try store.drives() {
            if let reason = drive.guardReason {
                faults.append(fault("DriveGuarded", "error", drive.address,
                                    action: "find why the drive refused sedlock's PIN, then `sedlock guard reset \(drive.address) --yes`",
                                    detail: reason))
            }
        }
        if try BootLoopGuard(store: store, limit: configuration.bootLoopLimit).consecutiveFailures(before: "") >= configuration.bootLoopLimit {
            faults.append(fault("BootLoopHold", "critical", "array",
                                action: "make the keys available (key servers, key file), then `sedlock unlock --all`",
                                detail: "the last \(configuration.bootLoopLimit) boots failed to unlock"))
        }
        for journal in try store.pendingJournals() {
            let name = journal.kind == .setup ? "SetupIncomplete" : "RekeyIncomplete"
            faults.append(fault(name, "warning", "array", action: "run `sedlock \(journal.kind.rawValue)` to finish it",
                                detail: "a \(journal.kind.rawValue) started \(journal.startedAt) has not finished on every drive"))
        }
        // The client certificate and CA of every key server, as NetApp Element classifies them.
        var seen: Set<String> = []
        for server in try store.keyServers() {
            for (role, path) in [("client certificate", server.certificatePath), ("CA certificate", server.caPath)] where seen.insert(path).inserted {
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                guard let certificates = try? Certificate.all(pem: text), !certificates.isEmpty else {
                    faults.append(fault("KmipCertificateFault", "critical", path,
                                        action: "install a valid \(role) for the key servers (`sedlock cert import`)",
                                        detail: "the \(role) is missing or not a PEM certificate (invalid)"))
                    continue
                }
                let now = Int64(time.wallTime.timeIntervalSince1970)
                let worst = certificates.map { $0.expiry(now: now) }.max() ?? .ok
                guard worst != .ok else { continue }
                let severity = worst == .warning ? "warning" : worst == .error ? "error" : "critical"
                // Days left on the certificate (of the file's chain) that ends first.
                let ends = certificates.compactMap(\.notAfter).min() ?? now
                let days = (ends - now) / 86_400
                let isCA = role == "CA certificate"
                let action: String
                if worst == .expired {
                    action = isCA ? "install the key servers' renewed CA certificate at \(path) (from their PKI), then `sedlock keyserver status`"
                        : "the key servers refuse an expired client certificate: issue a new one now (`sedlock cert csr`, have it signed, `sedlock cert import`)"
                } else {
                    action = isCA ? "ask for the key servers' renewed CA certificate and install it at \(path) before it expires"
                        : "renew the client certificate before it expires (`sedlock cert csr`, have it signed, `sedlock cert import`)"
                }
                faults.append(fault("KmipCertificateFault", severity, path, action: action,
                                    detail: worst == .expired ? "the \(role) expired \(max(0, -days)) day(s) ago"
                                        : "the \(role) is close to expiry: \(max(0, days)) day(s) left"))
            }
        }
        return faults
    }

    static func report(_ fault: StoredFault) -> FaultReport.Fault {
        FaultReport.Fault(name: fault.name, severity: fault.severity, object: fault.object, raisedAt: fault.raisedAt,
                          clearedAt: fault.clearedAt, action: fault.action, detail: fault.detail)
    }
}
