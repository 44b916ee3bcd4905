import Failures

/// A failure of a whole request, as it crosses the control socket: what kind, which exact failure,
/// what happened, what to do next. Never carries a secret. Any module's `SedlockError` becomes one
/// with `ControlError(error)`, keeping its kind and reason.
public struct ControlError: SedlockError, Codable, Hashable {
    public typealias Code = FailureKind

    public let code: Code
    /// The underlying failure's reason code (`SedlockError.reason`); empty for the lock manager's
    /// own refusals, which the code and message already name.
    public let reason: String
    public let message: String
    public let fix: String

    public init(_ code: Code, _ message: String, fix: String = "", reason: String = "") {
        self.code = code
        self.message = message
        self.fix = fix
        self.reason = reason
    }

    /// Any error as a request's failure: a `SedlockError` keeps its kind, reason, summary and fix;
    /// anything else (a bug, not a condition) is a plain failure with its text.
    public init(_ error: any Error) {
        switch error {
        case let control as ControlError: self = control
        case let failure as any SedlockError:
            self.init(failure.kind, failure.summary, fix: failure.fix, reason: failure.reason)
        default: self.init(.failed, "\(error)")
        }
    }

    public var kind: FailureKind { code }
    public var summary: String { message }
    public var description: String { fullText }

    private enum CodingKeys: String, CodingKey { case code, reason, message, fix }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        code = try container.decode(Code.self, forKey: .code)
        reason = try container.decodeIfPresent(String.self, forKey: .reason) ?? ""
        message = try container.decode(String.self, forKey: .message)
        fix = try container.decodeIfPresent(String.self, forKey: .fix) ?? ""
    }
}
