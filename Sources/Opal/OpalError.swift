import Failures
import SecurityTransport
import TCGStorage

/// Why an Opal operation failed, what was being done, and what the operator can do next.
/// Never carries a PIN or key.
public struct OpalError: Error, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// The drive refused the credential (wrong PIN, disabled authority, Block SID) or the ACL denies it.
        case notAuthorized
        /// The authority is locked out (Tries reached TryLimit) or the drive erased itself.
        case authorityLockedOut
        /// Another host holds the SP's read-write session.
        case spBusy
        /// A method returned another failure status.
        case methodFailed(MethodStatus)
        /// The command could not be carried to or from the drive.
        case transport(TransportError.Code)
        /// The drive answered with bytes that do not parse, or with the wrong session numbers.
        case malformedResponse
        /// The drive did not answer in time (dropped or endlessly delayed response).
        case timedOut
        /// The drive does not implement Opal (or the feature asked for).
        case unsupportedDrive
        /// The drive is not in the state the operation needs (e.g. Locking SP not activated).
        case invalidState
        /// The operation names something the drive does not have (a locking range beyond its ranges).
        case noSuchObject
        /// What the operation would write is larger than the table that would hold it.
        case doesNotFit
        /// A state-changing method reached the drive and its answer did not come back: the drive may
        /// or may not have carried it out.
        case outcomeUnknown
    }

    public let code: Code
    public let device: String
    public let operation: String
    public let message: String
    public let fix: String

    public init(_ code: Code, device: String, operation: String, _ message: String, fix: String = "") {
        self.code = code
        self.device = device
        self.operation = operation
        self.message = message
        self.fix = fix
    }

    public var description: String {
        var text = "\(device): \(operation): \(message)"
        if !fix.isEmpty { text += " — \(fix)" }
        return text
    }

    /// A failed method inside an open session: NOT_AUTHORIZED there comes from the ACL, not from
    /// a credential, so no authentication try was spent.
    static func fromMethod(_ status: MethodStatus, device: String, operation: String) -> OpalError {
        guard status == .notAuthorized else { return from(status, device: device, operation: operation) }
        return OpalError(.notAuthorized, device: device, operation: operation,
                         "the drive's access control refuses it to this authority (NOT_AUTHORIZED); no authentication try was spent",
                         fix: "check that the object exists and the authority may do this (ACE); the PIN itself was accepted")
    }

    static func from(_ status: MethodStatus, device: String, operation: String) -> OpalError {
        switch status {
        case .notAuthorized:
            return OpalError(.notAuthorized, device: device, operation: operation,
                             "the drive answered NOT_AUTHORIZED",
                             fix: "check the PIN and its derivation; each failed attempt counts toward the drive's TryLimit")
        case .authorityLockedOut:
            return OpalError(.authorityLockedOut, device: device, operation: operation,
                             "the authority is locked out (AUTHORITY_LOCKED_OUT)",
                             fix: "stop retrying; power-cycle the drive to reset Tries, or revert it with its PSID")
        case .spBusy:
            return OpalError(.spBusy, device: device, operation: operation,
                             "the security provider is busy (SP_BUSY): another session is open",
                             fix: "retry after the other session ends or times out")
        default:
            return OpalError(.methodFailed(status), device: device, operation: operation,
                             "the drive answered \(status.name)")
        }
    }
}

extension OpalError: SedlockError {
    public var kind: FailureKind {
        switch code {
        case .notAuthorized: .notAuthorized
        case .authorityLockedOut: .lockedOut
        case .transport, .timedOut: .unreachable
        case .spBusy, .methodFailed, .malformedResponse, .unsupportedDrive, .invalidState: .failed
        case .noSuchObject, .doesNotFit: .badRequest
        case .outcomeUnknown: .outcomeUnknown
        }
    }
    public var reason: String {
        switch code {
        case .methodFailed(let status): "drive.methodFailed.\(status.name)"
        case .transport(let transport): "drive.transport.\(transport)"
        default: "drive.\(code)"
        }
    }
    public var summary: String { "\(device): \(operation): \(message)" }
}
