import ControlAPI
import LockManager
import Logging
import Platform
import ServiceLifecycle

/// Fills the keytable in the background, so that sedlockd's start never waits on key servers:
/// READY and the control socket come once the state is loaded, and the keys of every live
/// generation (and the RDL token) follow, each attempt bounded by one command timeout, asked
/// again with a doubling delay while any is missing. Until then a request that
/// needs a key fetches it itself, within its own deadline. It runs on a thread of its own, so
/// a slow key server costs the work loop and the readers nothing.
struct KeytableService: Service {
    let manager: LockManager
    let executor: BlockingExecutor
    let logger: Logger

    /// Seconds between attempts while keys are missing: doubling from the first to the last.
    static let retryDelays = (first: 1.0, last: 60.0)

    func run() async throws {
        var delay = Self.retryDelays.first
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let missing = await withTaskExecutorPreference(executor) { () -> [String] in
                do throws(ControlError) { return try manager.loadKeytable() } catch { return [error.description] }
            }
            if missing.isEmpty {
                logger.info("keytable loaded: \(manager.keytable.keyIDs.count) key(s)")
                break
            }
            for why in missing { logger.warning("keytable: \(why); asking again in \(Int(delay)) s") }
            let pause = Duration.milliseconds(Int64(delay * 1000))
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            delay = min(delay * 2, Self.retryDelays.last)
        }
        // A service that returned would end the daemon: this one waits for the daemon to stop.
        try? await gracefulShutdown()
    }
}
