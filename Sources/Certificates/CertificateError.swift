import Failures
/// Why a key, request or certificate could not be made or accepted, and what to do.
public struct CertificateError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        case invalidPEM, keyMismatch, chainInvalid, unreadable, generationFailed, invalidArgument
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

extension CertificateError: SedlockError {
    public var kind: FailureKind { code == .generationFailed ? .failed : .badRequest }
    public var reason: String { "certificate.\(code.rawValue)" }
    public var summary: String { message }
}
