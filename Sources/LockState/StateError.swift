import Failures
/// Why the lock manager's state cannot be used, and what to do. Never carries a secret.
public struct StateError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The database file is not a database, or fails its integrity check.
        case corrupt
        /// The database was written by a newer sedlock (migrations this build does not know).
        case newerSchema
        /// The file or directory cannot be read or created (permissions, missing parent).
        case unreadable
        /// Another process holds the writer lock.
        case busy
        /// The state directory is somewhere it must not be (a drive it unlocks, readable by others).
        case unsafeLocation
        /// A record asked for does not exist, or a change breaks a rule of the schema.
        case invalid
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

extension StateError: SedlockError {
    public var kind: FailureKind {
        switch code {
        case .busy: .busy
        case .invalid: .badRequest
        case .corrupt, .newerSchema, .unreadable, .unsafeLocation: .failed
        }
    }
    public var reason: String { "state.\(code.rawValue)" }
    public var summary: String { message }
}
