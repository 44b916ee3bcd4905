/// The 512-byte IDENTIFY DEVICE answer of a simulated SATA drive (ACS-4 §7.13.6).
enum ATAIdentifyData {
    static func build(_ id: DriveIdentity) -> [UInt8] {
        var words = [UInt16](repeating: 0, count: 256)
        func string(_ text: String, words range: ClosedRange<Int>) {
            // ATA strings: space padded, two characters per word, first character in the high byte.
            var bytes = Array(text.utf8.prefix(range.count * 2))
            bytes += [UInt8](repeating: 0x20, count: range.count * 2 - bytes.count)
            for (i, w) in range.enumerated() { words[w] = UInt16(bytes[2 * i]) << 8 | UInt16(bytes[2 * i + 1]) }
        }
        let sectors = id.blockCount * UInt64(id.blockSize / 512)
        words[0] = 0x0040                                   // fixed device, not removable
        string(id.serial, words: 10...19)
        string(id.firmware, words: 23...26)
        string(id.model, words: 27...46)
        words[47] = 0x8001                                  // READ/WRITE MULTIPLE: 1 sector
        words[48] = 0x4001                                  // Trusted Computing feature set supported
        words[49] = 0x0300                                  // LBA and DMA supported
        words[53] = 0x0006                                  // words 64-70 and 88 valid
        let lba28 = UInt32(min(sectors, 0x0FFF_FFFF))
        words[60] = UInt16(truncatingIfNeeded: lba28)
        words[61] = UInt16(truncatingIfNeeded: lba28 >> 16)
        words[80] = 0x0FF0                                  // ATA8-ACS … ACS-4
        words[82] = 0x4000
        words[83] = 0x7400                                  // 48-bit addressing, FLUSH CACHE EXT
        words[84] = 0x4100                                  // WWN supported
        words[85] = 0x4000
        words[86] = 0x3400
        words[87] = 0x4100
        for i in 0..<4 { words[100 + i] = UInt16(truncatingIfNeeded: sectors >> (16 * UInt64(i))) }
        if id.blockSize > 512 {
            // Logical sector larger than 256 words; words 117-118 give its size in words.
            words[106] = 0x5000
            let logicalWords = UInt32(id.blockSize / 2)
            words[117] = UInt16(truncatingIfNeeded: logicalWords)
            words[118] = UInt16(truncatingIfNeeded: logicalWords >> 16)
        } else {
            words[106] = 0x4000
        }
        for i in 0..<4 { words[108 + i] = UInt16(truncatingIfNeeded: id.wwn >> (16 * UInt64(3 - i))) }
        var bytes = words.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        // Integrity word: signature 0xA5 and a checksum making all 512 bytes sum to zero.
        bytes[510] = 0xA5
        let sum = bytes[0..<511].reduce(UInt8(0)) { $0 &+ $1 }
        bytes[511] = 0 &- sum
        return bytes
    }
}
