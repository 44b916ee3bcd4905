/// A failure of a whole request, as it crosses the control socket: what kind, what happened, what
/// to do next. Never carries a secret.
public struct ControlError: Error, Codable, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Codable, Sendable {
        /// The request itself is wrong (arguments, unknown drive, a state that forbids it).
        case badRequest
        /// A drive or key server refused the credential.
        case notAuthorized
        /// An authority is locked out, or a drive erased itself.
        case lockedOut
        /// A drive or key server could not be reached in time.
        case unreachable
        /// A drive, key server or the state failed the operation.
        case failed
        /// Some drives did what was asked and some did not (see the report).
        case partial
        /// A guard stopped the request before any authentication: keys unavailable or unverified,
        /// a guarded drive, a boot-loop hold.
        case held
        /// Another process is changing the state.
        case busy
    }

    public let code: Code
    public let message: String
    public let fix: String

    public init(_ code: Code, _ message: String, fix: String = "") {
        self.code = code
        self.message = message
        self.fix = fix
    }

    public var description: String { fix.isEmpty ? message : "\(message) — \(fix)" }
}
