/// One TTLV item: a 3-byte tag, a type, and a value (KMIP 1.x §9.1.1).
public struct TTLV: Hashable, Sendable {
    public var tag: Tag
    public var value: Value

    public init(_ tag: Tag, _ value: Value) {
        self.tag = tag
        self.value = value
    }

    public enum Value: Hashable, Sendable {
        case structure([TTLV])
        case integer(Int32)
        case longInteger(Int64)
        /// Two's complement, big-endian, a multiple of 8 bytes.
        case bigInteger([UInt8])
        case enumeration(UInt32)
        case boolean(Bool)
        case textString(String)
        case byteString([UInt8])
        /// POSIX seconds.
        case dateTime(Int64)
        /// Seconds.
        case interval(UInt32)
        /// POSIX microseconds (KMIP 2.0).
        case dateTimeExtended(Int64)

        public var typeCode: UInt8 {
            switch self {
            case .structure: return 0x01
            case .integer: return 0x02
            case .longInteger: return 0x03
            case .bigInteger: return 0x04
            case .enumeration: return 0x05
            case .boolean: return 0x06
            case .textString: return 0x07
            case .byteString: return 0x08
            case .dateTime: return 0x09
            case .interval: return 0x0A
            case .dateTimeExtended: return 0x0B
            }
        }
    }

    // MARK: Building

    public static func structure(_ tag: Tag, _ children: [TTLV]) -> TTLV { TTLV(tag, .structure(children)) }
    public static func integer(_ tag: Tag, _ v: Int32) -> TTLV { TTLV(tag, .integer(v)) }
    public static func enumeration(_ tag: Tag, _ v: UInt32) -> TTLV { TTLV(tag, .enumeration(v)) }
    public static func text(_ tag: Tag, _ v: String) -> TTLV { TTLV(tag, .textString(v)) }
    public static func bytes(_ tag: Tag, _ v: [UInt8]) -> TTLV { TTLV(tag, .byteString(v)) }
    public static func boolean(_ tag: Tag, _ v: Bool) -> TTLV { TTLV(tag, .boolean(v)) }

    // MARK: Reading (unknown children are simply not asked for)

    public var children: [TTLV] {
        if case .structure(let c) = value { return c } else { return [] }
    }

    public func child(_ tag: Tag) -> TTLV? { children.first { $0.tag == tag } }
    public func all(_ tag: Tag) -> [TTLV] { children.filter { $0.tag == tag } }

    public var integerValue: Int32? { if case .integer(let v) = value { return v } else { return nil } }
    public var longIntegerValue: Int64? { if case .longInteger(let v) = value { return v } else { return nil } }
    public var enumerationValue: UInt32? { if case .enumeration(let v) = value { return v } else { return nil } }
    public var textValue: String? { if case .textString(let v) = value { return v } else { return nil } }
    public var bytesValue: [UInt8]? { if case .byteString(let v) = value { return v } else { return nil } }
    public var booleanValue: Bool? { if case .boolean(let v) = value { return v } else { return nil } }
    public var dateTimeValue: Int64? {
        switch value {
        case .dateTime(let v): return v
        case .dateTimeExtended(let v): return v / 1_000_000
        default: return nil
        }
    }
}

/// A TTLV tag (three bytes; 0x42xxxx are defined by the spec, 0x54xxxx are extensions).
public struct Tag: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue & 0xFF_FFFF }
    public init(_ rawValue: UInt32) { self.init(rawValue: rawValue) }

    public var description: String {
        let hex = String(rawValue, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 6 - hex.count)) + hex
    }
}
