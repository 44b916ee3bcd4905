/// Decodes a TCG Storage token stream from untrusted bytes.
///
/// Output size is bounded by input size (every token consumes at least one byte), and every
/// malformed form is reported as a `TCGStorageError`, never a trap.
public enum TokenDecoder {
    public static func decode(_ bytes: [UInt8]) throws(TCGStorageError) -> [Token] {
        var reader = ByteReader(bytes)
        var tokens: [Token] = []
        while !reader.isAtEnd {
            let start = reader.offset
            let head = try reader.u8("token header")
            switch head {
            case 0x00...0x3F:
                tokens.append(.unsigned(UInt64(head)))
            case 0x40...0x7F:
                // Six-bit two's complement: bit 5 is the sign.
                let raw = Int64(head & 0x3F)
                tokens.append(.signed(raw >= 32 ? raw - 64 : raw))
            case 0x80...0xBF:
                let isBytes = head & 0x20 != 0, isSigned = head & 0x10 != 0
                let length = Int(head & 0x0F)
                tokens.append(try atom(&reader, start: start, length: length, isBytes: isBytes, isSigned: isSigned))
            case 0xC0...0xDF:
                let isBytes = head & 0x10 != 0, isSigned = head & 0x08 != 0
                let length = Int(head & 0x07) << 8 | Int(try reader.u8("medium atom length"))
                tokens.append(try atom(&reader, start: start, length: length, isBytes: isBytes, isSigned: isSigned))
            case 0xE0...0xE3:
                let isBytes = head & 0x02 != 0, isSigned = head & 0x01 != 0
                let length = Int(try reader.bigEndian(3, "long atom length"))
                tokens.append(try atom(&reader, start: start, length: length, isBytes: isBytes, isSigned: isSigned))
            default:
                guard let control = ControlToken(rawValue: head) else {
                    throw TCGStorageError(.unsupportedToken, at: start,
                                          "reserved token 0x\(String(head, radix: 16, uppercase: true))")
                }
                tokens.append(.control(control))
            }
        }
        return tokens
    }

    private static func atom(_ reader: inout ByteReader, start: Int, length: Int,
                             isBytes: Bool, isSigned: Bool) throws(TCGStorageError) -> Token {
        let body = try reader.take(length, "atom body")
        if isBytes {
            // For byte atoms the sign bit means "continued", which Opal never uses.
            guard !isSigned else {
                throw TCGStorageError(.unsupportedToken, at: start, "continued byte-string atoms are not supported")
            }
            return .bytes(body)
        }
        // Integers may carry leading padding bytes, but no more than 64 significant bits.
        if body.count > 8 {
            let kept = body.suffix(8)
            let extensionByte: UInt8 = isSigned && (kept.first ?? 0) & 0x80 != 0 ? 0xFF : 0x00
            guard body.prefix(body.count - 8).allSatisfy({ $0 == extensionByte }) else {
                throw TCGStorageError(.integerTooLarge, at: start, "integer atom of \(length) bytes exceeds 64 bits")
            }
        }
        var value: UInt64 = 0
        for byte in body.suffix(min(8, body.count)) { value = value << 8 | UInt64(byte) }
        if !isSigned { return .unsigned(value) }
        guard let first = body.first else { return .signed(0) }
        let width = min(8, body.count)
        if first & 0x80 != 0 && width < 8 {
            value |= ~UInt64(0) << UInt64(width * 8)
        }
        return .signed(Int64(bitPattern: value))
    }
}
