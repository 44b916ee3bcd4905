import Logging
import ServiceLifecycle
import Systemd

/// Pings systemd's watchdog at half its interval, but only while the work loop turns over: a
/// hung loop stops the pings and systemd restarts the daemon. The stall is logged at the first
/// missed ping, half an interval before systemd acts, so the journal says why the restart came.
struct WatchdogService: Service {
    let interval: Duration
    let loop: WorkLoop
    let workLimit: Duration
    let serviceManager: ServiceManager
    let logger: Logger

    func run() async throws {
        var stalled = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if loop.heartbeat(workLimit: workLimit) {
                serviceManager.watchdogPing()
                if stalled { logger.notice("the work loop turns over again: watchdog pings resumed") }
                stalled = false
            } else if !stalled {
                stalled = true
                let detail = loop.stallDetail(workLimit: workLimit)
                logger.error("the work loop is stalled (\(detail)): watchdog pings stopped, systemd restarts sedlockd within \(interval.components.seconds) s unless it moves again",
                             metadata: ["MESSAGE_ID": "\(MessageID.stalled)"])
            }
            try? await Task.sleep(for: interval / 2)
        }
    }
}
