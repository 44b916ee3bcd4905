import Foundation
import Platform
import ServiceLifecycle
import Synchronization

/// The loop that does sedlockd's work: requests that change state run here one at a time, in
/// the order they came (two operators' lock and rekey never interleave on a drive or in the
/// journal). The watchdog vouches for the daemon only while this loop turns over.
final class WorkLoop: Service, Sendable {
    private struct Job: Sendable {
        let run: @Sendable () async -> Void
    }

    private struct Progress {
        /// Heartbeats sent and heartbeats the loop has reached.
        var heartbeatsSent: UInt64 = 0
        var heartbeatsSeen: UInt64 = 0
        /// When the job in hand started (nil while idle).
        var busySince: ContinuousClock.Instant?
    }

    private let jobs: AsyncStream<Job>
    private let submitter: AsyncStream<Job>.Continuation
    private let progress = Mutex(Progress())
    private let executor: BlockingExecutor
    /// Test-only fault: while this file exists, the loop stops taking jobs (a hung loop).
    private let hangFile: String?

    init(executor: BlockingExecutor, hangFile: String?) {
        (jobs, submitter) = AsyncStream.makeStream(of: Job.self)
        self.executor = executor
        self.hangFile = hangFile
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskExecutorPreference(executor) {
                for await job in jobs {
                    while let hangFile, FileManager.default.fileExists(atPath: hangFile), !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                    progress.withLock { $0.busySince = .now }
                    await job.run()
                    progress.withLock { $0.busySince = nil }
                }
            }
        } onGracefulShutdown: {
            // Jobs already queued still run; new ones are refused by the control server first.
            self.submitter.finish()
        }
    }

    /// Runs `body` in the loop and returns its result; nil when the loop has stopped.
    func perform<T: Sendable>(_ body: @escaping @Sendable () async -> T) async -> T? {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            let job = Job { continuation.resume(returning: await body()) }
            if case .terminated = submitter.yield(job) { continuation.resume(returning: nil) }
        }
    }

    /// Sends a heartbeat through the loop and says whether the loop is alive: it reached the
    /// previous heartbeat, or it is inside one job that has not run past `workLimit`.
    func heartbeat(workLimit: Duration) -> Bool {
        let (sent, seen, busySince) = progress.withLock { ($0.heartbeatsSent, $0.heartbeatsSeen, $0.busySince) }
        let alive = seen == sent || (busySince.map { ContinuousClock.now - $0 < workLimit } ?? false)
        if seen == sent {
            let number = progress.withLock { state -> UInt64 in
                state.heartbeatsSent += 1
                return state.heartbeatsSent
            }
            _ = submitter.yield(Job { [self] in progress.withLock { $0.heartbeatsSeen = max($0.heartbeatsSeen, number) } })
        }
        return alive
    }
}
