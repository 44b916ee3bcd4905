import ControlAPI
import LockManager
import Logging
import Platform
import ServiceLifecycle
import Synchronization
import Systemd

/// The daemon's monitors, each on its own interval: drives (reachable, locked), key servers
/// (TLS, authentication, a Locate, per server), the RDL security token, and certificates with the
/// rest of the state's faults. Faults they raise or clear are logged once each and counted in
/// STATUS=. A lost token under lock-on-loss locks every drive through the work loop.
struct MonitorService: Service {
    let manager: LockManager
    let settings: LiveConfiguration
    let statusLine: StatusLine
    let events: DaemonEvents
    let serviceManager: ServiceManager
    let executor: BlockingExecutor
    let loop: WorkLoop
    let metrics: MetricsExporter

    private enum Check: CaseIterable { case drives, keyServers, rdlToken, certificates }

    func run() async throws {
        await withTaskExecutorPreference(executor) {
            var due: [Check: ContinuousClock.Instant] = [:]
            var known: [String: FaultReport.Fault] = [:]
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let now = ContinuousClock.now
                let current = settings.current
                let intervals = [Check.drives: current.driveInterval, .keyServers: current.keyServerInterval,
                                 .rdlToken: current.tokenInterval, .certificates: current.certificateInterval]
                var ran = false
                for check in Check.allCases where due[check].map({ $0 <= now }) ?? true {
                    await perform(check)
                    due[check] = now + .milliseconds(Int64((intervals[check] ?? 60) * 1000))
                    ran = true
                }
                if ran { known = evaluateFaults(known) }
                // Whatever requests and checks freed since the last wake goes back to the kernel.
                ProcessMemory.releaseFreeMemory()
                let next = due.values.min() ?? now + .seconds(1)
                // Wake at least every second, so a reload's new intervals apply soon.
                try? await Task.sleep(until: min(next, ContinuousClock.now + .seconds(1)), clock: .continuous)
            }
        }
    }

    private func perform(_ check: Check) async {
        do throws(ControlError) {
            switch check {
            case .drives:
                let report = try await manager.checkDrives()
                statusLine.drives(report)
                metrics.record { $0.status = report }
            case .keyServers:
                let report = try manager.probeKeyServers()
                statusLine.keyServers(report)
                metrics.record { $0.keyServers = report }
            case .rdlToken:
                if case .lockNow(let why) = try await manager.rdlMonitor() {
                    events.logger.critical("Rapid Data Locking: \(why); locking every drive now (lock on loss)",
                                           metadata: ["MESSAGE_ID": "\(MessageID.lock)", "FAULT": "RdlTokenUnavailable"])
                    let manager = self.manager
                    let response = await loop.perform {
                        await LockManager.$requester.withValue("sedlockd (RDL lock on loss)") {
                            await manager.respond(to: .lock(LockRequest(drives: .all)))
                        }
                    }
                    if let response { events.answered(.lock(LockRequest(drives: .all)), response, requester: "RDL lock on loss") }
                }
            case .certificates: break  // evaluated with the state's faults, below
            }
        } catch {
            events.logger.error("\(check) monitor: \(error.description)")
        }
    }

    /// Reads the open faults (evaluating the state's own), logs what changed since `known`.
    private func evaluateFaults(_ known: [String: FaultReport.Fault]) -> [String: FaultReport.Fault] {
        let report: FaultReport
        do { report = try manager.faults() } catch {
            events.logger.error("fault evaluation: \(error.description)")
            return known
        }
        var now: [String: FaultReport.Fault] = [:]
        for fault in report.open { now["\(fault.name) \(fault.object)"] = fault }
        for (key, fault) in now where known[key] == nil { events.faultRaised(fault) }
        let newlyRaised = now.filter { known[$0.key] == nil }.map(\.value.name)
        metrics.record { snapshot in
            snapshot.faults = report
            for name in newlyRaised { snapshot.raised[name, default: 0] += 1 }
        }
        do { try metrics.writeFile() } catch {
            events.logger.warning("metrics file: \(error)")
        }
        for (key, fault) in known where now[key] == nil { events.faultCleared(fault) }
        statusLine.faults(open: now.count)
        serviceManager.status(statusLine.text)
        return now
    }
}
