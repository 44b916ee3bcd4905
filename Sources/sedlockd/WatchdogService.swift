import ServiceLifecycle
import Systemd

/// Pings systemd's watchdog at half its interval, but only while the work loop turns over: a
/// hung loop stops the pings and systemd restarts the daemon.
struct WatchdogService: Service {
    let interval: Duration
    let loop: WorkLoop
    let workLimit: Duration
    let serviceManager: ServiceManager

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if loop.heartbeat(workLimit: workLimit) { serviceManager.watchdogPing() }
            try? await Task.sleep(for: interval / 2)
        }
    }
}
