import Failures
/// Why bytes from a key server are not a valid TTLV message.
public struct TTLVError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        case truncated, badLength, unknownType, nestingTooDeep, tooLarge, invalidValue
    }
    public let code: Code
    public let offset: Int
    public let detail: String

    public init(_ code: Code, at offset: Int, _ detail: String) {
        self.code = code
        self.offset = offset
        self.detail = detail
    }

    public var description: String { "\(detail) (at byte \(offset))" }
}

/// Encodes and decodes TTLV. The decoder takes untrusted bytes: it bounds nesting and size and
/// reports every malformation as a `TTLVError`.
public enum TTLVCodec {
    /// Deeper than any KMIP message nests (2.0 attributes reach about 8 levels).
    public static let maximumDepth = 24
    /// The default bound on a message, matching PyKMIP's maximum response size.
    public static let defaultMaximumSize = 1 << 20

    public static func encode(_ item: TTLV) -> [UInt8] {
        var out: [UInt8] = []
        encode(item, into: &out)
        return out
    }

    public static func encode(_ item: TTLV, into out: inout [UInt8]) {
        let t = item.tag.rawValue
        out.append(UInt8(truncatingIfNeeded: t >> 16))
        out.append(UInt8(truncatingIfNeeded: t >> 8))
        out.append(UInt8(truncatingIfNeeded: t))
        out.append(item.value.typeCode)
        let lengthAt = out.count
        out.append(contentsOf: [0, 0, 0, 0])
        let start = out.count
        switch item.value {
        case .structure(let children):
            for child in children { encode(child, into: &out) }
        case .integer(let v): appendBE(UInt32(bitPattern: v), 4, &out)
        case .longInteger(let v): appendBE(UInt64(bitPattern: v), 8, &out)
        case .bigInteger(let bytes):
            // Sign-extend to a multiple of 8 bytes, as the spec requires.
            let fill: UInt8 = (bytes.first ?? 0) & 0x80 != 0 ? 0xFF : 0x00
            let padded = [UInt8](repeating: fill, count: (8 - bytes.count % 8) % 8) + bytes
            out.append(contentsOf: padded.isEmpty ? [UInt8](repeating: 0, count: 8) : padded)
        case .enumeration(let v): appendBE(UInt64(v), 4, &out)
        case .boolean(let v): appendBE(v ? 1 : 0, 8, &out)
        case .textString(let s): out.append(contentsOf: Array(s.utf8))
        case .byteString(let b): out.append(contentsOf: b)
        case .dateTime(let v), .dateTimeExtended(let v): appendBE(UInt64(bitPattern: v), 8, &out)
        case .interval(let v): appendBE(UInt64(v), 4, &out)
        }
        let length = out.count - start
        out[lengthAt] = UInt8(truncatingIfNeeded: length >> 24)
        out[lengthAt + 1] = UInt8(truncatingIfNeeded: length >> 16)
        out[lengthAt + 2] = UInt8(truncatingIfNeeded: length >> 8)
        out[lengthAt + 3] = UInt8(truncatingIfNeeded: length)
        out.append(contentsOf: [UInt8](repeating: 0, count: (8 - length % 8) % 8))
    }

    private static func appendBE<T: FixedWidthInteger>(_ v: T, _ width: Int, _ out: inout [UInt8]) {
        for i in stride(from: width - 1, through: 0, by: -1) { out.append(UInt8(truncatingIfNeeded: v >> (i * 8))) }
    }

    /// The total size of the message whose 8-byte header is `header` (for framing a stream).
    public static func messageSize(header: [UInt8]) throws(TTLVError) -> Int {
        guard header.count >= 8 else { throw TTLVError(.truncated, at: 0, "a TTLV header is 8 bytes") }
        let length = Int(header[4]) << 24 | Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
        // A message is a Structure of padded items: its length is a multiple of 8. Reading on to
        // the next multiple would wait for bytes that never come (and report a timeout).
        if header[3] == 0x01, length % 8 != 0 {
            throw TTLVError(.badLength, at: 4, "a message (a Structure) announces \(length) bytes, not a multiple of 8")
        }
        return 8 + length + (8 - length % 8) % 8
    }

    /// Decodes exactly one item occupying the whole buffer (trailing bytes are an error).
    public static func decode(_ bytes: [UInt8], maximumSize: Int = defaultMaximumSize) throws(TTLVError) -> TTLV {
        guard bytes.count <= maximumSize else {
            throw TTLVError(.tooLarge, at: 0, "message of \(bytes.count) bytes exceeds the \(maximumSize)-byte limit")
        }
        var offset = 0
        let item = try decodeItem(bytes, &offset, end: bytes.count, depth: 0)
        guard offset == bytes.count else {
            throw TTLVError(.badLength, at: offset, "\(bytes.count - offset) bytes follow the message")
        }
        return item
    }

    private static func decodeItem(_ b: [UInt8], _ offset: inout Int, end: Int, depth: Int) throws(TTLVError) -> TTLV {
        guard depth <= maximumDepth else { throw TTLVError(.nestingTooDeep, at: offset, "structures nested deeper than \(maximumDepth)") }
        let start = offset
        guard end - offset >= 8 else { throw TTLVError(.truncated, at: offset, "an item needs an 8-byte header") }
        let tag = Tag(UInt32(b[offset]) << 16 | UInt32(b[offset + 1]) << 8 | UInt32(b[offset + 2]))
        let type = b[offset + 3]
        let length = Int(b[offset + 4]) << 24 | Int(b[offset + 5]) << 16 | Int(b[offset + 6]) << 8 | Int(b[offset + 7])
        offset += 8
        let padded = length + (8 - length % 8) % 8
        guard padded <= end - offset else {
            throw TTLVError(.badLength, at: start + 4, "item \(tag) claims \(length) bytes, \(end - offset) remain")
        }
        let valueStart = offset
        func fixed(_ expected: Int) throws(TTLVError) {
            guard length == expected else {
                throw TTLVError(.badLength, at: start + 4, "type 0x\(String(type, radix: 16)) of \(tag) must be \(expected) bytes, not \(length)")
            }
        }
        func be(_ width: Int) -> UInt64 {
            (0..<width).reduce(UInt64(0)) { $0 << 8 | UInt64(b[valueStart + $1]) }
        }
        let value: TTLV.Value
        switch type {
        case 0x01:
            var children: [TTLV] = []
            var inner = valueStart
            let innerEnd = valueStart + length
            while inner < innerEnd {
                children.append(try decodeItem(b, &inner, end: innerEnd, depth: depth + 1))
            }
            value = .structure(children)
        case 0x02: try fixed(4); value = .integer(Int32(bitPattern: UInt32(be(4))))
        case 0x03: try fixed(8); value = .longInteger(Int64(bitPattern: be(8)))
        case 0x04:
            guard length > 0 && length % 8 == 0 else {
                throw TTLVError(.badLength, at: start + 4, "a Big Integer is a non-zero multiple of 8 bytes")
            }
            value = .bigInteger(Array(b[valueStart..<(valueStart + length)]))
        case 0x05: try fixed(4); value = .enumeration(UInt32(be(4)))
        case 0x06:
            try fixed(8)
            let raw = be(8)
            guard raw <= 1 else { throw TTLVError(.invalidValue, at: valueStart, "a Boolean is 0 or 1") }
            value = .boolean(raw == 1)
        case 0x07:
            guard let text = String(validating: b[valueStart..<(valueStart + length)], as: UTF8.self) else {
                throw TTLVError(.invalidValue, at: valueStart, "text string of \(tag) is not UTF-8")
            }
            value = .textString(text)
        case 0x08: value = .byteString(Array(b[valueStart..<(valueStart + length)]))
        case 0x09: try fixed(8); value = .dateTime(Int64(bitPattern: be(8)))
        case 0x0A: try fixed(4); value = .interval(UInt32(be(4)))
        case 0x0B: try fixed(8); value = .dateTimeExtended(Int64(bitPattern: be(8)))
        default:
            throw TTLVError(.unknownType, at: start + 3, "unknown item type 0x\(String(type, radix: 16)) for \(tag)")
        }
        // Padding is zeros (KMIP §9.1.1.3); a peer that fills it with anything else is refused, as PyKMIP does.
        if type != 0x01, padded > length, b[(valueStart + length)..<(valueStart + padded)].contains(where: { $0 != 0 }) {
            throw TTLVError(.invalidValue, at: valueStart + length, "the padding after \(tag) is not zero")
        }
        offset = valueStart + padded
        return TTLV(tag, value)
    }
}

extension TTLVError: SedlockError {
    public var kind: FailureKind { .failed }
    public var reason: String { "ttlv.\(code)" }
    public var summary: String { "malformed TTLV: \(description)" }
}
