/// INQUIRY data, VPD pages and capacity data of a simulated SAS or SATA (behind a SAT layer) drive.
enum SCSIPages {
    static func vendorAndProduct(_ id: DriveIdentity) -> (vendor: String, product: String) {
        if id.kind == .sata {
            // libata reports every ATA device as vendor "ATA" with the model's first 16 characters.
            return ("ATA", String(id.model.prefix(16)))
        }
        let words = id.model.split(separator: " ", maxSplits: 1)
        return (String(words.first ?? "SEDSIM"), words.count > 1 ? String(words[1]) : id.model)
    }

    static func padded(_ text: String, _ width: Int) -> [UInt8] {
        let bytes = Array(text.utf8.prefix(width))
        return bytes + [UInt8](repeating: 0x20, count: width - bytes.count)
    }

    /// Standard INQUIRY data (SPC-4 §6.6.2), 96 bytes.
    static func standardInquiry(_ id: DriveIdentity) -> [UInt8] {
        let (vendor, product) = vendorAndProduct(id)
        var data: [UInt8] = [0x00,          // direct access block device
                             0x00,          // not removable
                             0x06,          // SPC-4
                             0x12,          // HISUP, response data format 2
                             91,            // additional length
                             0x00, 0x00, 0x02]  // CMDQUE
        data += padded(vendor, 8) + padded(product, 16) + padded(String(id.firmware.suffix(4)), 4)
        data += [UInt8](repeating: 0, count: 96 - data.count)
        return data
    }

    static func supportedPages(_ id: DriveIdentity) -> [UInt8] {
        id.kind == .sata ? [0x00, 0x80, 0x83, 0x89] : [0x00, 0x80, 0x83]
    }

    /// A VPD page, or nil when the drive does not have it.
    static func vpd(_ code: UInt8, _ id: DriveIdentity) -> [UInt8]? {
        func page(_ pageCode: UInt8, _ body: [UInt8]) -> [UInt8] {
            [0x00, pageCode, UInt8(truncatingIfNeeded: body.count >> 8), UInt8(truncatingIfNeeded: body.count)] + body
        }
        switch code {
        case 0x00:
            return page(0x00, supportedPages(id))
        case 0x80:
            // libata passes the ATA serial number field through unchanged; SAS drives report it trimmed.
            let serial = id.kind == .sata ? id.serial : id.serial.trimmingSpaces()
            return page(0x80, Array(serial.utf8))
        case 0x83:
            // One designator: NAA (type 3), binary, associated with the logical unit.
            var naa: [UInt8] = [0x01, 0x03, 0x00, 0x08]
            for shift in stride(from: 56, through: 0, by: -8) { naa.append(UInt8(truncatingIfNeeded: id.wwn >> UInt64(shift))) }
            return page(0x83, naa)
        case 0x89 where id.kind == .sata:
            return page(0x89, ataInformation(id))
        default:
            return nil
        }
    }

    /// The ATA Information VPD page body (SAT-4 §10.4.2): SAT identification, the device signature
    /// and the IDENTIFY DEVICE data, 568 bytes.
    private static func ataInformation(_ id: DriveIdentity) -> [UInt8] {
        var body = [UInt8](repeating: 0, count: 4)
        body += padded("linux", 8) + padded("libata", 16) + padded("1.0", 4)
        var signature = [UInt8](repeating: 0, count: 20)
        signature[0] = 0x34          // Register Device-to-Host FIS
        signature[2] = ATARegisters.ready
        signature[4] = 0x01          // LBA low
        signature[12] = 0x01         // count
        body += signature
        body += [0xEC, 0, 0, 0]      // IDENTIFY DEVICE, then reserved
        body += ATAIdentifyData.build(id)
        return body
    }

    /// READ CAPACITY(10) parameter data: last LBA (saturated) and block length.
    static func capacity10(_ id: DriveIdentity) -> [UInt8] {
        let last = UInt32(clamping: id.blockCount - 1)
        return bigEndian(UInt64(last), 4) + bigEndian(UInt64(id.blockSize), 4)
    }

    /// READ CAPACITY(16) parameter data, 32 bytes.
    static func capacity16(_ id: DriveIdentity) -> [UInt8] {
        bigEndian(id.blockCount - 1, 8) + bigEndian(UInt64(id.blockSize), 4) + [UInt8](repeating: 0, count: 20)
    }

    static func bigEndian(_ value: UInt64, _ width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * (width - 1 - $0))) }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
