import Dispatch

/// A serial executor backed by a dispatch queue of its own. An actor that uses it runs its work,
/// including blocking system calls (SG_IO, NVMe ioctls, socket reads), on that queue's thread,
/// never on Swift's cooperative pool, so a slow drive cannot starve the rest of the process.
public final class QueueExecutor: SerialExecutor {
    public let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
