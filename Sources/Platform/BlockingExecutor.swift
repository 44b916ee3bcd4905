import Foundation
import Synchronization

/// A task executor whose jobs run on a fixed set of threads of its own. Work that may block in a
/// system call (a KMIP round trip, a SQLite fsync, a drive command) runs here when a task prefers
/// it (`Task(executorPreference:)`), so a slow key server cannot occupy Swift's cooperative pool,
/// which has only one thread per core, and stall everything else in the process (the watchdog
/// among them).
public final class BlockingExecutor: TaskExecutor {
    private struct Queue {
        var jobs: [UnownedJob] = []
        var head = 0
    }

    private let queue = Mutex(Queue())
    private let available = DispatchSemaphore(value: 0)

    /// Starts `threads` worker threads, which live as long as the process.
    public init(threads: Int, name: String) {
        for index in 0..<max(1, threads) {
            let thread = Thread { [self] in work() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.withLock { $0.jobs.append(job) }
        available.signal()
    }

    private func work() {
        let executor = asUnownedTaskExecutor()
        while true {
            available.wait()
            let job = queue.withLock { queue -> UnownedJob? in
                guard queue.head < queue.jobs.count else { return nil }
                let job = queue.jobs[queue.head]
                queue.head += 1
                if queue.head > 1024 && queue.head * 2 > queue.jobs.count {
                    queue.jobs.removeFirst(queue.head)
                    queue.head = 0
                }
                return job
            }
            job?.runSynchronously(on: executor)
        }
    }
}
