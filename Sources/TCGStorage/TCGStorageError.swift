import Failures
/// Why a sequence of bytes from a drive (or a host) could not be understood.
///
/// Every decoder in this module throws only this error, so callers can report the failure and
/// the offset where it was found without ever trapping on hostile input.
public struct TCGStorageError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// The input ended before a structure that had announced its length.
        case truncated
        /// A length field claims more (or less) than the structure can hold.
        case inconsistentLength
        /// A reserved or unsupported token or atom form.
        case unsupportedToken
        /// An integer atom wider than 64 bits.
        case integerTooLarge
        /// Lists or named values nested deeper than the decoder allows.
        case nestingTooDeep
        /// Tokens that do not form the expected grammar (unbalanced list, missing status …).
        case unexpectedToken
        /// A value has the wrong type or shape for where it appears.
        case malformedValue
    }

    public let code: Code
    /// Byte or token offset where the problem was detected.
    public let offset: Int
    public let detail: String

    public init(_ code: Code, at offset: Int, _ detail: String) {
        self.code = code
        self.offset = offset
        self.detail = detail
    }

    public var description: String { "\(detail) (at offset \(offset))" }
}

extension TCGStorageError: SedlockError {
    public var kind: FailureKind { .failed }
    public var reason: String { "tcg.\(code)" }
    public var summary: String { "malformed TCG Storage data: \(description)" }
}
