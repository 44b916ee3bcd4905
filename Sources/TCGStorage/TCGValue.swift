/// A structured value of the token stream: atoms, lists and named values.
public indirect enum TCGValue: Hashable, Sendable {
    case unsigned(UInt64)
    case signed(Int64)
    case bytes([UInt8])
    case list([TCGValue])
    case named(TCGValue, TCGValue)
    case empty

    public static func name(_ name: UInt64, _ value: TCGValue) -> TCGValue { .named(.unsigned(name), value) }
    public static func uid(_ uid: UID) -> TCGValue { .bytes(uid.bytes) }
    public static func bool(_ value: Bool) -> TCGValue { .unsigned(value ? 1 : 0) }

    public var unsignedValue: UInt64? {
        switch self {
        case .unsigned(let v): return v
        case .signed(let v) where v >= 0: return UInt64(v)
        default: return nil
        }
    }

    public var bytesValue: [UInt8]? {
        if case .bytes(let b) = self { return b } else { return nil }
    }

    public var listValue: [TCGValue]? {
        if case .list(let l) = self { return l } else { return nil }
    }

    public var boolValue: Bool? { unsignedValue.map { $0 != 0 } }

    /// A boolean as the TCG type defines it: 0 or 1, nothing else (a drive refuses 2).
    public var strictBoolValue: Bool? {
        switch unsignedValue {
        case 0: return false
        case 1: return true
        default: return nil
        }
    }

    public var uidValue: UID? { bytesValue.flatMap(UID.init(bytes:)) }

    /// The value named `name` in a list of named values (integer names, as Opal uses).
    public func field(_ name: UInt64) -> TCGValue? {
        guard case .list(let items) = self else { return nil }
        for case .named(let key, let value) in items where key.unsignedValue == name { return value }
        return nil
    }

    public var tokens: [Token] {
        var out: [Token] = []
        appendTokens(to: &out)
        return out
    }

    public func appendTokens(to out: inout [Token]) {
        switch self {
        case .unsigned(let v): out.append(.unsigned(v))
        case .signed(let v): out.append(.signed(v))
        case .bytes(let b): out.append(.bytes(b))
        case .empty: out.append(.empty)
        case .list(let items):
            out.append(.startList)
            for item in items { item.appendTokens(to: &out) }
            out.append(.endList)
        case .named(let name, let value):
            out.append(.startName)
            name.appendTokens(to: &out)
            value.appendTokens(to: &out)
            out.append(.endName)
        }
    }
}

/// Builds `TCGValue`s from a token stream, bounding nesting depth.
public struct TCGValueParser {
    /// Deep enough for any Opal structure (ACE expressions nest 4), small enough to stop nesting bombs.
    public static let maximumDepth = 32

    private let tokens: [Token]
    public private(set) var position: Int

    public init(_ tokens: [Token], position: Int = 0) {
        self.tokens = tokens
        self.position = position
    }

    public var isAtEnd: Bool { position >= tokens.count }
    public var next: Token? { position < tokens.count ? tokens[position] : nil }

    public mutating func expect(_ token: Token, _ what: String) throws(TCGStorageError) {
        guard next == token else {
            throw TCGStorageError(.unexpectedToken, at: position, "expected \(what)")
        }
        position += 1
    }

    /// Parses one value starting at the current position.
    public mutating func value() throws(TCGStorageError) -> TCGValue {
        try value(depth: 0)
    }

    private mutating func value(depth: Int) throws(TCGStorageError) -> TCGValue {
        guard depth <= Self.maximumDepth else {
            throw TCGStorageError(.nestingTooDeep, at: position, "values nested deeper than \(Self.maximumDepth)")
        }
        guard let token = next else {
            throw TCGStorageError(.truncated, at: position, "token stream ended inside a value")
        }
        position += 1
        switch token {
        case .unsigned(let v): return .unsigned(v)
        case .signed(let v): return .signed(v)
        case .bytes(let b): return .bytes(b)
        case .control(.empty): return .empty
        case .control(.startList):
            var items: [TCGValue] = []
            while next != .endList {
                items.append(try value(depth: depth + 1))
            }
            position += 1
            return .list(items)
        case .control(.startName):
            let name = try value(depth: depth + 1)
            let inner = try value(depth: depth + 1)
            try expect(.endName, "EndName")
            return .named(name, inner)
        case .control(let control):
            throw TCGStorageError(.unexpectedToken, at: position - 1, "unexpected \(control) inside a value")
        }
    }
}
