/// A bounds-checked cursor over untrusted bytes: every read either succeeds or throws `.truncated`.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var offset: Int
    let end: Int

    init(_ bytes: [UInt8], from start: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.offset = min(max(0, start), bytes.count)
        self.end = min(max(self.offset, end ?? bytes.count), bytes.count)
    }

    var remaining: Int { end - offset }
    var isAtEnd: Bool { offset >= end }

    mutating func u8(_ what: @autoclosure () -> String) throws(TCGStorageError) -> UInt8 {
        guard offset < end else { throw TCGStorageError(.truncated, at: offset, "\(what()) is missing") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func bigEndian(_ width: Int, _ what: @autoclosure () -> String) throws(TCGStorageError) -> UInt64 {
        guard width <= 8, remaining >= width else {
            throw TCGStorageError(.truncated, at: offset, "\(what()) needs \(width) bytes, \(remaining) left")
        }
        var value: UInt64 = 0
        for i in 0..<width { value = value << 8 | UInt64(bytes[offset + i]) }
        offset += width
        return value
    }

    mutating func u16(_ what: @autoclosure () -> String) throws(TCGStorageError) -> UInt16 {
        UInt16(truncatingIfNeeded: try bigEndian(2, what()))
    }

    mutating func u32(_ what: @autoclosure () -> String) throws(TCGStorageError) -> UInt32 {
        UInt32(truncatingIfNeeded: try bigEndian(4, what()))
    }

    mutating func u64(_ what: @autoclosure () -> String) throws(TCGStorageError) -> UInt64 {
        try bigEndian(8, what())
    }

    mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws(TCGStorageError) -> [UInt8] {
        guard count >= 0, remaining >= count else {
            throw TCGStorageError(.truncated, at: offset, "\(what()) needs \(count) bytes, \(remaining) left")
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func skip(_ count: Int, _ what: @autoclosure () -> String) throws(TCGStorageError) {
        guard count >= 0, remaining >= count else {
            throw TCGStorageError(.truncated, at: offset, "\(what()) needs \(count) bytes, \(remaining) left")
        }
        offset += count
    }

    /// The byte at `index` of the readable window, or zero past its end (for optional trailing fields).
    func peek(_ index: Int) -> UInt8 {
        let i = offset + index
        return i >= 0 && i < end ? bytes[i] : 0
    }
}

/// Big-endian writers used by every encoder in the module, and by the simulated drive's.
extension Array where Element == UInt8 {
    public mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        let width = T.bitWidth / 8
        for shift in stride(from: (width - 1) * 8, through: 0, by: -8) {
            append(UInt8(truncatingIfNeeded: value >> shift))
        }
    }

    public mutating func appendZeros(_ count: Int) {
        if count > 0 { append(contentsOf: repeatElement(0, count: count)) }
    }
}
