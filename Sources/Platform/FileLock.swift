import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import Failures

/// An exclusive, advisory lock on a file (flock), held until released or the process ends, so
/// one process at a time changes what the lock guards. The holder's PID is written in the file
/// so that a second process can say who holds it.
public final class FileLock: Sendable {
    public enum Failure: Error, Sendable, CustomStringConvertible {
        /// Another process holds the lock (its PID when it could be read).
        case busy(path: String, holder: Int32?)
        case system(SystemError)

        public var description: String {
            switch self {
            case .busy(let path, let holder):
                return "busy (held by \(holder.map { "PID \($0)" } ?? "another process") through \(path))"
            case .system(let error): return "\(error)"
            }
        }
    }

    public let path: String
    /// The locked descriptor; -1 once released.
    private let descriptor: Mutex<Int32>

    /// Takes the lock, waiting up to `wait` seconds while another holds it. A short wait rides
    /// out the moment a forked child of this process still shares the descriptor before it execs.
    public init(path: String, wait: Double = 0, time: any TimeSource = SystemTime()) throws(Failure) {
        let fd = retryingEINTR { open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600) }
        guard fd >= 0 else { throw .system(SystemError("open", path: path)) }
        let deadline = Deadline.after(seconds: wait, time: time)
        while retryingEINTR({ flock(fd, LOCK_EX | LOCK_NB) }) != 0 {
            let busy = errno == EWOULDBLOCK
            let failure = SystemError("flock", path: path)
            if busy && !deadline.hasPassed {
                time.sleep(nanoseconds: 20_000_000)
                continue
            }
            close(fd)
            if busy { throw .busy(path: path, holder: Self.holder(of: path)) }
            throw .system(failure)
        }
        self.path = path
        descriptor = Mutex(fd)
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit { release() }

    /// Releases the lock now (idempotent); otherwise it goes with the last reference.
    public func release() {
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            _ = ftruncate(fd, 0)
            close(fd)
            fd = -1
        }
    }

    /// The PID written by the process that holds the lock on `path`, if any.
    public static func holder(of path: String) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 15) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

extension FileLock.Failure: SedlockError {
    public var kind: FailureKind {
        switch self {
        case .busy: .busy
        case .system(let error): error.kind
        }
    }
    public var reason: String {
        switch self {
        case .busy: "lock.busy"
        case .system(let error): error.reason
        }
    }
    public var summary: String { description }
}
