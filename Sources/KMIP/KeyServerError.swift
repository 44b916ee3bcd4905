import Failures
/// A key-service failure, named as storage appliances name them, with the server, the cause and the fix.
/// Never carries key material.
public struct KeyServerError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        /// Cannot connect (refused, unreachable, DNS) or no answer within the timeout.
        case keyServerUnavailable = "KeyServerUnavailable"
        /// The TLS handshake failed on the client's certificate (the server rejected it: alert).
        case keyServerAuthFailed = "KeyServerAuthFailed"
        /// TLS failed otherwise: server certificate not trusted, name mismatch, no common cipher.
        case keyServerSslError = "KeyServerSslError"
        /// The server answered Authentication Not Successful / Permission Denied.
        case keyServerInvalidAuth = "KeyServerInvalidAuth"
        /// The server failed the operation (a KMIP result other than success).
        case keyServerFailed = "KeyServerFailed"
        /// The server's answer is not valid KMIP (malformed or oversized TTLV, wrong message).
        case keyServerProtocolError = "KeyServerProtocolError"
        /// Local configuration is unusable: certificate or key file missing or malformed.
        case keyServerConfigurationError = "KeyProviderConfigurationError"
    }

    public let code: Code
    public let server: String
    public let cause: String
    public let fix: String
    /// The KMIP result reason when the server answered one.
    public let resultReason: ResultReason?

    public init(_ code: Code, server: String, cause: String, fix: String, resultReason: ResultReason? = nil) {
        self.code = code
        self.server = server
        self.cause = cause
        self.fix = fix
        self.resultReason = resultReason
    }

    public var description: String { "\(code.rawValue) [\(server)]: \(cause) — \(fix)" }
}

extension KeyServerError: SedlockError {
    public var kind: FailureKind {
        switch code {
        case .keyServerAuthFailed, .keyServerInvalidAuth: .notAuthorized
        case .keyServerUnavailable, .keyServerSslError: .unreachable
        case .keyServerFailed, .keyServerProtocolError: .failed
        case .keyServerConfigurationError: .badRequest
        }
    }
    public var reason: String { "keyServer.\(code.rawValue)" }
    public var summary: String { "\(code.rawValue) [\(server)]: \(cause)" }
}
