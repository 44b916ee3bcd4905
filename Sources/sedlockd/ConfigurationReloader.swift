import ControlAPI
import LockManager
import Logging
import Synchronization
import Systemd

/// Reads the configuration again and applies it to requests that start from then on; a file that
/// does not validate is reported and the running one kept. One path for SIGHUP and for the
/// control socket's `reload` (which `systemctl reload` uses, so that it returns once applied).
/// Key-server settings live in the state and are read afresh by every operation.
final class ConfigurationReloader: Sendable {
    /// Reads the configuration as the daemon did at start (file, then command-line overrides).
    let load: @Sendable () throws -> DaemonConfiguration
    let source: String
    let bootIDPath: String?
    let manager: LockManager
    let settings: LiveConfiguration
    let statusLine: StatusLine
    let serviceManager: ServiceManager
    let logger: Logger
    /// One reload at a time: a SIGHUP and a request together apply one after the other.
    private let serial = Mutex(())

    init(load: @escaping @Sendable () throws -> DaemonConfiguration, source: String, bootIDPath: String?, manager: LockManager,
         settings: LiveConfiguration, statusLine: StatusLine, serviceManager: ServiceManager, logger: Logger) {
        self.load = load
        self.source = source
        self.bootIDPath = bootIDPath
        self.manager = manager
        self.settings = settings
        self.statusLine = statusLine
        self.serviceManager = serviceManager
        self.logger = logger
    }

    func reload() throws(ControlError) -> ReloadReport {
        try serial.withLock { _ throws(ControlError) in
            serviceManager.reloading()
            defer { serviceManager.ready(status: statusLine.text) }
            do {
                let loaded = try load()
                let current = settings.current
                // Read once, when the daemon starts: the socket server, the metrics and the watchdog.
                let restartOnly: [(key: String, changed: Bool)] = [
                    ("control.socket", loaded.controlSocket != current.controlSocket),
                    ("control.group", loaded.readerGroup != current.readerGroup),
                    ("control.request_timeout", loaded.requestTimeout != current.requestTimeout),
                    ("control.max_request_bytes", loaded.maximumRequestBytes != current.maximumRequestBytes),
                    ("control.max_connections", loaded.maximumConnections != current.maximumConnections),
                    ("control.max_reader_connections", loaded.maximumReaderConnections != current.maximumReaderConnections),
                    ("control.max_connections_per_reader", loaded.maximumConnectionsPerReader != current.maximumConnectionsPerReader),
                    ("metrics.file", loaded.metricsFile != current.metricsFile),
                    ("metrics.listen", loaded.metricsListen != current.metricsListen),
                    ("deadlines.work_limit", loaded.workLimit != current.workLimit),
                    ("deadlines.stop_wait", loaded.stopWait != current.stopWait),
                ]
                let pending = restartOnly.filter(\.changed).map(\.key)
                if !pending.isEmpty {
                    logger.warning("reload: \(pending.joined(separator: ", ")) change only on restart")
                }
                try manager.reconfigure(loaded.managerConfiguration(bootIDPath: bootIDPath))
                settings.replace(with: loaded)
                logger.notice("configuration reloaded")
                return ReloadReport(source: source, pendingRestart: pending)
            } catch {
                let failure = ControlError(.badRequest, "reload failed, keeping the running configuration: \(error)",
                                           fix: "correct the file (`sedlockd check-config` names each problem), then reload again")
                logger.error("\(failure.message)")
                throw failure
            }
        }
    }
}
