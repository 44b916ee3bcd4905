import ControlAPI
import Foundation
import Platform
import Prometheus
import Synchronization

/// What the monitors last found, as Prometheus text: drives by state, key generations, key
/// servers' reachability and round trip, faults by name and severity, the last boot unlock, rekey
/// progress. Kept as the latest reports and rendered afresh each time (a new registry), so a
/// drive, server or fault that went away leaves no stale series behind. No key identifier, token
/// or PIN is among the labels: generations are counted by state, drives named by address.
/// Why the metrics textfile was not written.
struct MetricsFileError: Error, CustomStringConvertible {
    let description: String
}

final class MetricsExporter: Sendable {
    struct Snapshot: Sendable {
        var status: StatusReport?
        var keyServers: KeyServerReport?
        var faults: FaultReport?
        /// Faults raised while this daemon ran, by name (a counter).
        var raised: [String: Int] = [:]
        /// Drives found locked without an operator's lock and unlocked again by the drive monitor.
        var relockedUnlocked = 0
        var updatedAt: Date?
    }

    /// The node_exporter textfile to keep up to date, if any.
    let file: String?
    private let snapshot = Mutex(Snapshot())

    init(file: String?) { self.file = file }

    func record(_ change: (inout Snapshot) -> Void) {
        snapshot.withLock {
            change(&$0)
            $0.updatedAt = Date()
        }
    }

    func render() -> String {
        Self.render(snapshot.withLock { $0 })
    }

    /// Replaces the textfile atomically (node_exporter never reads half of one); world-readable,
    /// as node_exporter runs as its own user and nothing in it is secret.
    /// The folder must be root's (or the daemon user's) and writable by nobody else: another
    /// account there could take the file's place.
    func writeFile() throws(MetricsFileError) {
        guard let file else { return }
        let folder = (file as NSString).deletingLastPathComponent
        if let problem = FileOwnership.problem(at: folder.isEmpty ? "." : folder, allowMissing: false) {
            throw MetricsFileError(description: "the metrics folder is not safe: \(problem); nothing was written")
        }
        do { try AtomicFile.write(Array(render().utf8), to: file, mode: 0o644) } catch {
            throw MetricsFileError(description: error.description)
        }
    }

    static func render(_ snapshot: Snapshot) -> String {
        let registry = PrometheusCollectorRegistry()
        if let status = snapshot.status {
            var byState = ["unlocked": 0, "locked": 0, "guarded": 0, "unreachable": 0, "unknown": 0]
            for drive in status.drives { byState[state(of: drive), default: 0] += 1 }
            for (state, count) in byState {
                registry.makeGauge(name: "sedlock_drives", labels: [("state", state)], help: "Drives of the array by state.").set(count)
            }
            for drive in status.drives {
                registry.makeGauge(name: "sedlock_drive_failed_authentications", labels: [("drive", drive.address)],
                                   help: "Consecutive failed authentications sedlock has on record for the drive.")
                    .set(drive.failedAuthentications)
            }
            registry.makeGauge(name: "sedlock_unmanaged_drives", help: "SEDs in reach that are not the array's (reported, never touched).")
                .set(status.unmanagedDrives?.count ?? 0)
            registry.makeGauge(name: "sedlock_unencrypted_drives",
                               help: "Drives of the array managed for their locking only (no media encryption: Pyrite).")
                .set(status.drives.filter { $0.mediaEncryption == false }.count)
            var generations: [String: Int] = [:]
            for generation in status.generations { generations[generation.state, default: 0] += 1 }
            for (state, count) in generations {
                registry.makeGauge(name: "sedlock_key_generations", labels: [("state", state)], help: "Key generations by state.").set(count)
            }
            // A rekey in progress: the pending generation's drives against all of them.
            let pending = status.generations.first { $0.state == "pending" }
            let moved = pending.map { generation in status.drives.filter { $0.generation == generation.keyID }.count } ?? 0
            registry.makeGauge(name: "sedlock_rekey_in_progress", help: "1 while a rekey (or setup, RDL enable or rotate) is unfinished.")
                .set(pending == nil ? 0 : 1)
            registry.makeGauge(name: "sedlock_rekey_drives", labels: [("state", "done")], help: "Drives of an unfinished rekey, done or remaining.")
                .set(pending == nil ? 0 : moved)
            registry.makeGauge(name: "sedlock_rekey_drives", labels: [("state", "remaining")], help: "Drives of an unfinished rekey, done or remaining.")
                .set(pending == nil ? 0 : status.drives.count - moved)
            if let boot = status.lastBoot {
                if let seconds = boot.durationSeconds {
                    registry.makeGauge(name: "sedlock_boot_unlock_duration_seconds", help: "How long the last boot unlock took.").set(seconds)
                }
                registry.makeGauge(name: "sedlock_boot_unlock_timestamp_seconds", help: "When the last boot unlock ended.")
                    .set(boot.at.timeIntervalSince1970)
                registry.makeGauge(name: "sedlock_boot_unlock_outcome", labels: [("outcome", boot.outcome)],
                                   help: "The last boot unlock's outcome (1 for it).").set(1)
            }
        }
        for server in snapshot.keyServers?.servers ?? [] where server.reachable != nil {
            registry.makeGauge(name: "sedlock_key_server_up", labels: [("server", server.name)],
                               help: "1 when the key server passed its last test (TLS, authentication, a Locate).")
                .set(server.reachable == true ? 1 : 0)
            if let seconds = server.roundTripSeconds {
                registry.makeGauge(name: "sedlock_key_server_round_trip_seconds", labels: [("server", server.name)],
                                   help: "One KMIP request and its answer in the key server's last test.").set(seconds)
            }
        }
        if let faults = snapshot.faults {
            var open: [String: Int] = [:]
            for fault in faults.open { open["\(fault.name)\u{0}\(fault.severity)", default: 0] += 1 }
            for (key, count) in open {
                let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
                registry.makeGauge(name: "sedlock_faults", labels: [("name", parts[0]), ("severity", parts.count > 1 ? parts[1] : "")],
                                   help: "Open faults by name and severity.").set(count)
            }
            registry.makeGauge(name: "sedlock_faults_open", help: "Open faults.").set(faults.open.count)
        }
        registry.makeCounter(name: "sedlock_relocked_drives_unlocked_total",
                             help: "Drives found locked without an operator's lock and unlocked again by sedlockd.")
            .increment(by: Int64(snapshot.relockedUnlocked))
        for (name, count) in snapshot.raised {
            registry.makeCounter(name: "sedlock_faults_raised_total", labels: [("name", name)],
                                 help: "Faults raised since sedlockd started, by name.").increment(by: Int64(count))
        }
        if let updatedAt = snapshot.updatedAt {
            registry.makeGauge(name: "sedlock_metrics_updated_timestamp_seconds", help: "When the monitors last reported.")
                .set(updatedAt.timeIntervalSince1970)
        }
        return registry.emitToString()
    }

    private static func state(of drive: StatusReport.Drive) -> String {
        if drive.error != nil { return "unreachable" }
        if drive.guarded != nil { return "guarded" }
        switch drive.locked {
        case true?: return "locked"
        case false?: return "unlocked"
        case nil: return "unknown"
        }
    }
}

private extension Gauge {
    func set(_ value: Int) { set(Double(value)) }
}
