/// One token of the TCG Storage data stream (Core spec §3.2.2).
public enum Token: Hashable, Sendable {
    case unsigned(UInt64)
    case signed(Int64)
    case bytes([UInt8])
    case control(ControlToken)
}

/// The single-byte control tokens.
public enum ControlToken: UInt8, Hashable, Sendable, CaseIterable {
    case startList = 0xF0
    case endList = 0xF1
    case startName = 0xF2
    case endName = 0xF3
    case call = 0xF8
    case endOfData = 0xF9
    case endOfSession = 0xFA
    case startTransaction = 0xFB
    case endTransaction = 0xFC
    case empty = 0xFF
}

extension Token {
    public static let startList = Token.control(.startList)
    public static let endList = Token.control(.endList)
    public static let startName = Token.control(.startName)
    public static let endName = Token.control(.endName)
    public static let call = Token.control(.call)
    public static let endOfData = Token.control(.endOfData)
    public static let endOfSession = Token.control(.endOfSession)
    public static let empty = Token.control(.empty)
}
