/// Encodes tokens in their shortest atom form (tiny, short, medium, long).
public enum TokenEncoder {
    /// The longest byte string a long atom can carry (24-bit length).
    public static let maximumByteStringLength = 0xFF_FFFF

    /// Into a buffer of the exact size: tokens may carry a PIN, and an outgrown buffer would be
    /// freed with a copy of it.
    public static func encode(_ tokens: [Token]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(tokens.reduce(0) { $0 + encodedLength($1) })
        for token in tokens { encode(token, into: &out) }
        return out
    }

    /// The bytes `token` takes in its shortest form.
    static func encodedLength(_ token: Token) -> Int {
        switch token {
        case .unsigned(let value):
            return value < 0x40 ? 1 : 1 + (UInt64.bitWidth - value.leadingZeroBitCount + 7) / 8
        case .signed:
            return 9  // at most a header and 8 bytes; a few spare bytes cost nothing
        case .bytes(let bytes):
            let count = min(bytes.count, maximumByteStringLength)
            return (count < 16 ? 1 : count < 2048 ? 2 : 4) + count
        case .control:
            return 1
        }
    }

    public static func encode(_ token: Token, into out: inout [UInt8]) {
        switch token {
        case .unsigned(let value):
            if value < 0x40 {
                out.append(UInt8(value))
            } else {
                let width = (UInt64.bitWidth - value.leadingZeroBitCount + 7) / 8
                out.append(0x80 | UInt8(width))
                appendLow(width, of: value, into: &out)
            }
        case .signed(let value):
            if value >= -32 && value <= 31 {
                out.append(0x40 | (UInt8(truncatingIfNeeded: value) & 0x3F))
            } else {
                // Smallest two's complement width that keeps the sign bit right.
                var width = 1
                while width < 8 {
                    let bits = width * 8
                    let low = -(Int64(1) << (bits - 1)), high = (Int64(1) << (bits - 1)) - 1
                    if value >= low && value <= high { break }
                    width += 1
                }
                out.append(0x90 | UInt8(width))
                appendLow(width, of: UInt64(bitPattern: value), into: &out)
            }
        case .bytes(let bytes):
            // Oversized strings are cut at the long-atom limit rather than trapping.
            let count = min(bytes.count, maximumByteStringLength)
            if count < 16 {
                out.append(0xA0 | UInt8(count))
            } else if count < 2048 {
                out.append(0xD0 | UInt8(count >> 8))
                out.append(UInt8(count & 0xFF))
            } else {
                out.append(0xE2)
                out.append(UInt8(count >> 16))
                out.append(UInt8((count >> 8) & 0xFF))
                out.append(UInt8(count & 0xFF))
            }
            out.append(contentsOf: bytes.prefix(count))
        case .control(let control):
            out.append(control.rawValue)
        }
    }

    private static func appendLow(_ width: Int, of value: UInt64, into out: inout [UInt8]) {
        for shift in stride(from: (width - 1) * 8, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }
}
