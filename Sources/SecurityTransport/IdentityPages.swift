/// Parsers for what devices say about themselves: SCSI INQUIRY and VPD pages, READ CAPACITY(16),
/// ATA IDENTIFY DEVICE and NVMe Identify data. They take untrusted bytes and never trap: short
/// or malformed data yields nil.
public enum IdentityPages {
    public struct Inquiry: Hashable, Sendable {
        public var peripheralDeviceType: UInt8
        public var vendor: String
        public var product: String
        public var revision: String
        /// The 8-byte vendor identification exactly as reported (space padded).
        public var vendorField: [UInt8] = []
    }

    public static func standardInquiry(_ data: [UInt8]) -> Inquiry? {
        guard data.count >= 36 else { return nil }
        return Inquiry(peripheralDeviceType: data[0] & 0x1F, vendor: text(data[8..<16]), product: text(data[16..<32]),
                       revision: text(data[32..<36]), vendorField: Array(data[8..<16]))
    }

    /// The body of a VPD page after checking its page code and length.
    public static func vpdBody(_ data: [UInt8], page: UInt8) -> [UInt8]? {
        guard data.count >= 4, data[1] == page else { return nil }
        let length = Int(data[2]) << 8 | Int(data[3])
        guard data.count >= 4 + length else { return nil }
        return Array(data[4..<(4 + length)])
    }

    /// Supported VPD pages (page 0x00).
    public static func supportedPages(_ data: [UInt8]) -> [UInt8] { vpdBody(data, page: 0x00) ?? [] }

    /// The unit serial number (page 0x80), exactly as reported.
    public static func unitSerialNumber(_ data: [UInt8]) -> [UInt8]? { vpdBody(data, page: 0x80) }

    /// The first 8-byte NAA designator of the device identification page (0x83), as a WWN.
    public static func naaIdentifier(_ data: [UInt8]) -> UInt64? {
        guard let body = vpdBody(data, page: 0x83) else { return nil }
        var offset = 0
        while offset + 4 <= body.count {
            let type = body[offset + 1] & 0x0F
            let association = (body[offset + 1] >> 4) & 0x03
            let length = Int(body[offset + 3])
            guard offset + 4 + length <= body.count else { return nil }
            if type == 0x03 && association == 0 && length == 8 {
                return body[(offset + 4)..<(offset + 12)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }
            offset += 4 + length
        }
        return nil
    }

    /// The IDENTIFY DEVICE data inside the ATA Information page (0x89).
    public static func ataIdentifyFromInformationPage(_ data: [UInt8]) -> [UInt8]? {
        guard let body = vpdBody(data, page: 0x89), body.count >= 56 + 512 else { return nil }
        return Array(body[56..<(56 + 512)])
    }

    public struct Capacity: Hashable, Sendable {
        public var blockCount: UInt64
        public var blockSize: Int
    }

    public static func readCapacity16(_ data: [UInt8]) -> Capacity? {
        guard data.count >= 12 else { return nil }
        let last = data[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let size = data[8..<12].reduce(0) { $0 << 8 | Int($1) }
        guard last < UInt64.max, size > 0 else { return nil }
        return Capacity(blockCount: last + 1, blockSize: size)
    }

    public struct ATAIdentify: Hashable, Sendable {
        /// The 20-byte serial number field, as the drive reports it (the sedutil salt).
        public var serialNumberField: [UInt8]
        public var model: String
        public var firmware: String
        public var wwn: UInt64?
        public var trustedComputingSupported: Bool
        public var sectors: UInt64
        public var logicalSectorSize: Int
    }

    public static func ataIdentify(_ data: [UInt8]) -> ATAIdentify? {
        guard data.count >= 512 else { return nil }
        func word(_ n: Int) -> UInt16 { UInt16(data[2 * n]) | UInt16(data[2 * n + 1]) << 8 }
        func string(_ words: ClosedRange<Int>) -> [UInt8] {
            // Two characters per word, the first in the high byte.
            words.flatMap { [UInt8(truncatingIfNeeded: word($0) >> 8), UInt8(truncatingIfNeeded: word($0))] }
        }
        let w48 = word(48)
        let w84 = word(84)
        let wwn = (w84 & 0xC100) == 0x4100
            ? (108...111).reduce(UInt64(0)) { $0 << 16 | UInt64(word($1)) } : nil
        let w106 = word(106)
        var sectorSize = 512
        if w106 & 0xC000 == 0x4000 && w106 & 0x1000 != 0 {
            sectorSize = Int(UInt32(word(117)) | UInt32(word(118)) << 16) * 2
        }
        let lba48 = (100...103).reversed().reduce(UInt64(0)) { $0 << 16 | UInt64(word($1)) }
        let lba28 = UInt64(word(60)) | UInt64(word(61)) << 16
        return ATAIdentify(serialNumberField: string(10...19), model: text(string(27...46)[...]),
                           firmware: text(string(23...26)[...]), wwn: wwn,
                           trustedComputingSupported: (w48 & 0xC000) == 0x4000 && w48 & 0x0001 != 0,
                           sectors: word(83) & 0x0400 != 0 ? lba48 : lba28, logicalSectorSize: sectorSize)
    }

    public struct NVMeController: Hashable, Sendable {
        public var serialNumberField: [UInt8]
        public var model: String
        public var firmware: String
        public var securitySendReceiveSupported: Bool
    }

    public static func nvmeIdentifyController(_ data: [UInt8]) -> NVMeController? {
        guard data.count >= 4096 else { return nil }
        return NVMeController(serialNumberField: Array(data[4..<24]), model: text(data[24..<64]), firmware: text(data[64..<72]),
                              securitySendReceiveSupported: data[256] & 0x01 != 0)
    }

    public struct NVMeNamespace: Hashable, Sendable {
        public var blockCount: UInt64
        public var blockSize: Int
        public var eui64: UInt64?
    }

    public static func nvmeIdentifyNamespace(_ data: [UInt8]) -> NVMeNamespace? {
        guard data.count >= 4096 else { return nil }
        let size = data[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let format = Int(data[26] & 0x0F)
        let lbads = data[128 + 4 * format + 2]
        guard lbads >= 9 && lbads <= 16 else { return nil }
        let eui = data[120..<128].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return NVMeNamespace(blockCount: size, blockSize: 1 << Int(lbads), eui64: eui == 0 ? nil : eui)
    }

    static func text<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(decoding: bytes.map { $0 >= 0x20 && $0 < 0x7F ? $0 : 0x20 }, as: UTF8.self).trimmingCharacters(in: " ")
    }
}
