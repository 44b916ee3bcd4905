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
    /// Every submitted job's way to tell its requester "not done" (keyed by job): taken by the
    /// job when it runs, and by the loop for each job still queued when it stops, so that no
    /// requester waits forever on a job a cancelled loop dropped.
    private let waiting = Mutex<(next: UInt64, abandon: [UInt64: @Sendable () -> Void])>((0, [:]))
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
                    // Cancelled (the stop's wait is over): no new job starts; those still queued
                    // are told so below, so their requesters know nothing was done.
                    if Task.isCancelled { break }
                    progress.withLock { $0.busySince = .now }
                    await job.run()
                    progress.withLock { $0.busySince = nil }
                }
            }
        } onGracefulShutdown: {
            // Jobs already queued still run; new ones are refused by the control server first.
            self.submitter.finish()
        }
        // Ended (drained, or cancelled with jobs still queued): whoever still waits hears so.
        submitter.finish()
        let abandoned = waiting.withLock { state -> [@Sendable () -> Void] in
            defer { state.abandon = [:] }
            return Array(state.abandon.values)
        }
        for abandon in abandoned { abandon() }
    }

    /// Runs `body` in the loop and returns its result; nil when the loop has stopped (or stops
    /// before it gets to it).
    func perform<T: Sendable>(_ body: @escaping @Sendable () async -> T) async -> T? {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            let id = waiting.withLock { state -> UInt64 in
                state.next += 1
                state.abandon[state.next] = { continuation.resume(returning: nil) }
                return state.next
            }
            // Whoever takes the entry resumes the requester, exactly once.
            let claim: @Sendable () -> Bool = { self.waiting.withLock { $0.abandon.removeValue(forKey: id) } != nil }
            let job = Job {
                guard claim() else { return }
                continuation.resume(returning: await body())
            }
            if case .terminated = submitter.yield(job), claim() { continuation.resume(returning: nil) }
        }
    }

    /// Why `heartbeat` found the loop not alive, in words for the log.
    func stallDetail(workLimit: Duration) -> String {
        let busySince = progress.withLock { $0.busySince }
        guard let busySince else { return "it has not reached the last heartbeat: no job is taken" }
        return "one job has run for \((ContinuousClock.now - busySince).components.seconds) s, "
            + "past the \(workLimit.components.seconds) s work limit"
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
