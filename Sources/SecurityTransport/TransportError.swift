import Failures
/// A failure below the TCG layer: the command did not complete, or the device refused it.
public struct TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// The device or simulator cannot be reached (no such device, simulator not serving).
        case unreachable
        /// The command did not complete within its timeout.
        case timedOut
        /// The device rejected the command as malformed or unsupported (ILLEGAL REQUEST).
        case illegalRequest
        /// The device does not support the security protocol asked for.
        case unsupportedProtocol
        /// A media access hit a locked range (DATA PROTECT).
        case dataProtect
        /// The caller lacks the capability the command needs.
        case permissionDenied
        /// Any other I/O failure.
        case ioFailure
    }

    public let code: Code
    public let device: String
    public let message: String

    public init(_ code: Code, device: String, _ message: String) {
        self.code = code
        self.device = device
        self.message = message
    }

    public var description: String { "\(device): \(message)" }
}

extension TransportError: SedlockError {
    public var kind: FailureKind {
        switch code {
        case .dataProtect, .illegalRequest, .unsupportedProtocol: .failed
        // The drive cannot be reached by this process (exit status 12, as documented).
        case .permissionDenied, .unreachable, .timedOut, .ioFailure: .unreachable
        }
    }
    public var reason: String { "transport.\(code)" }
    public var summary: String { description }
    public var fix: String {
        switch code {
        case .timedOut, .unreachable: "check that \(device) is present and answering"
        default: ""
        }
    }
}
