import LockManager
import Logging
import ServiceLifecycle
import Synchronization
import Systemd
import UnixSignals

/// SIGHUP (`systemctl reload`): reads the configuration again and applies it to requests that
/// start from then on; a file that does not validate is reported and the running one kept.
/// Key-server settings live in the state and are read afresh by every operation.
struct ReloadService: Service {
    /// Trapped before the daemon announces READY (a SIGHUP's default action ends the process).
    let signals: UnixSignalsSequence
    /// Reads the configuration as the daemon did at start (file, then command-line overrides).
    let load: @Sendable () throws -> DaemonConfiguration
    let bootIDPath: String?
    let manager: LockManager
    let settings: LiveConfiguration
    let statusLine: StatusLine
    let serviceManager: ServiceManager
    let logger: Logger

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            serviceManager.reloading()
            do {
                let loaded = try load()
                let current = settings.current
                if loaded.controlSocket != current.controlSocket || loaded.readerGroup != current.readerGroup
                    || loaded.serverLimits.requestBytes != current.serverLimits.requestBytes {
                    logger.warning("reload: control socket settings change only on restart")
                }
                try manager.reconfigure(loaded.managerConfiguration(bootIDPath: bootIDPath))
                settings.replace(with: loaded)
                logger.notice("configuration reloaded")
            } catch {
                logger.error("reload failed, keeping the running configuration: \(error)")
            }
            serviceManager.ready(status: statusLine.text)
        }
    }
}
