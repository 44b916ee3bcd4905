/// What kind of failure it was, so that a script (by exit status), the control socket's client and
/// a test can act on it without reading its text. The raw values cross the control socket.
public enum FailureKind: String, Codable, Sendable, Hashable, CaseIterable {
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
    /// A change reached the drive and its answer did not come back: it may or may not have been made.
    case outcomeUnknown
}

/// The one error protocol every sedlock module's errors speak: a kind, a stable reason code, what
/// happened and what to do next. The lock manager, the control socket and the CLI convert any of
/// them the same way, so no layer writes its own table of another layer's errors. Never carries a
/// secret.
public protocol SedlockError: Error, Sendable, CustomStringConvertible {
    var kind: FailureKind { get }
    /// A stable, dotted code naming the exact failure (`state.unsafeLocation`,
    /// `keyServer.KeyServerAuthFailed`, `drive.authorityLockedOut`): what tests and `--json`
    /// readers compare instead of message text.
    var reason: String { get }
    /// What happened, naming the drive, key server or file; without the corrective action.
    var summary: String { get }
    /// What to do next; empty when the summary says all there is.
    var fix: String { get }
}

extension SedlockError {
    public var fix: String { "" }

    /// Summary and corrective action in one line, as people read it.
    public var fullText: String { fix.isEmpty ? summary : "\(summary) — \(fix)" }
}
