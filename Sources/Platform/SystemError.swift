#if canImport(Glibc)
import Glibc
#endif
import Failures

/// A failed system call: which call, on what, and the errno's text.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public let call: String
    public let path: String
    public let errno: Int32

    public init(_ call: String, path: String = "", errno: Int32 = Glibc.errno) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    public var cause: String { String(cString: strerror(errno)) }

    public var description: String {
        path.isEmpty ? "\(call): \(cause)" : "\(call) \(path): \(cause)"
    }
}

/// Runs a system call, retrying while it is interrupted by a signal (EINTR).
@inlinable
public func retryingEINTR<T: SignedInteger>(_ body: () -> T) -> T {
    while true {
        let rc = body()
        if rc >= 0 || errno != EINTR { return rc }
    }
}

/// The text of an errno value.
public func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

extension SystemError: SedlockError {
    public var kind: FailureKind { errno == EACCES || errno == EPERM ? .badRequest : .failed }
    public var reason: String { "system.\(call).\(errno)" }
    public var summary: String { description }
}
