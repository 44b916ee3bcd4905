/// A method status code (Core spec §5.1.5), kept even when unknown.
public struct MethodStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let success = MethodStatus(rawValue: 0x00)
    public static let notAuthorized = MethodStatus(rawValue: 0x01)
    public static let obsolete = MethodStatus(rawValue: 0x02)
    public static let spBusy = MethodStatus(rawValue: 0x03)
    public static let spFailed = MethodStatus(rawValue: 0x04)
    public static let spDisabled = MethodStatus(rawValue: 0x05)
    public static let spFrozen = MethodStatus(rawValue: 0x06)
    public static let noSessionsAvailable = MethodStatus(rawValue: 0x07)
    public static let uniquenessConflict = MethodStatus(rawValue: 0x08)
    public static let insufficientSpace = MethodStatus(rawValue: 0x09)
    public static let insufficientRows = MethodStatus(rawValue: 0x0A)
    public static let invalidFunction = MethodStatus(rawValue: 0x0B)
    public static let invalidParameter = MethodStatus(rawValue: 0x0C)
    public static let invalidReference = MethodStatus(rawValue: 0x0D)
    public static let tperMalfunction = MethodStatus(rawValue: 0x0F)
    public static let transactionFailure = MethodStatus(rawValue: 0x10)
    public static let responseOverflow = MethodStatus(rawValue: 0x11)
    public static let authorityLockedOut = MethodStatus(rawValue: 0x12)
    public static let fail = MethodStatus(rawValue: 0x3F)

    public static let allNamed: [MethodStatus] = [
        .success, .notAuthorized, .obsolete, .spBusy, .spFailed, .spDisabled, .spFrozen,
        .noSessionsAvailable, .uniquenessConflict, .insufficientSpace, .insufficientRows,
        .invalidFunction, .invalidParameter, .invalidReference, .tperMalfunction,
        .transactionFailure, .responseOverflow, .authorityLockedOut, .fail,
    ]

    public var name: String {
        switch rawValue {
        case 0x00: return "SUCCESS"
        case 0x01: return "NOT_AUTHORIZED"
        case 0x02: return "OBSOLETE"
        case 0x03: return "SP_BUSY"
        case 0x04: return "SP_FAILED"
        case 0x05: return "SP_DISABLED"
        case 0x06: return "SP_FROZEN"
        case 0x07: return "NO_SESSIONS_AVAILABLE"
        case 0x08: return "UNIQUENESS_CONFLICT"
        case 0x09: return "INSUFFICIENT_SPACE"
        case 0x0A: return "INSUFFICIENT_ROWS"
        case 0x0B: return "INVALID_FUNCTION"
        case 0x0C: return "INVALID_PARAMETER"
        case 0x0D: return "INVALID_REFERENCE"
        case 0x0F: return "TPER_MALFUNCTION"
        case 0x10: return "TRANSACTION_FAILURE"
        case 0x11: return "RESPONSE_OVERFLOW"
        case 0x12: return "AUTHORITY_LOCKED_OUT"
        case 0x3F: return "FAIL"
        default: return "UNKNOWN_STATUS_0x" + String(rawValue, radix: 16, uppercase: true)
        }
    }

    public var description: String { name }
}
