import ServiceLifecycle
import UnixSignals

/// SIGHUP (`kill -HUP`): the configuration read again, as the control socket's `reload` does.
struct ReloadService: Service {
    /// Trapped before the daemon announces READY (a SIGHUP's default action ends the process).
    let signals: UnixSignalsSequence
    let reloader: ConfigurationReloader

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            _ = try? reloader.reload()  // reported in the journal either way
        }
    }
}
