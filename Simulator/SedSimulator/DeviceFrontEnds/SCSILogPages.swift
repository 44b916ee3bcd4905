import SimulatorLink

/// The log pages a simulated SAS drive answers LOG SENSE with (SPC-4 §7.3): Supported Log
/// Pages, Temperature, Self-Test Results and Informational Exceptions. A SATA drive behind
/// libata has no LOG SENSE (libata does not translate it), as on Linux.
enum SCSILogPages {
    static let supported: UInt8 = 0x00
    static let temperature: UInt8 = 0x0D
    static let selfTestResults: UInt8 = 0x10
    static let informationalExceptions: UInt8 = 0x2F
    static let codes = [supported, temperature, selfTestResults, informationalExceptions]

    /// A simulated drive runs at a steady temperature, well below its reference (maximum) one.
    static let celsius: UInt8 = 35
    static let referenceCelsius: UInt8 = 65

    /// One log parameter: its code, the control byte (binary format, list parameter), its value.
    static func parameter(_ code: UInt16, _ value: [UInt8]) -> [UInt8] {
        SCSIPages.bigEndian(UInt64(code), 2) + [0x03, UInt8(value.count)] + value
    }

    /// The page's parameters (all of them; the caller applies the parameter pointer), or nil.
    static func parameters(_ code: UInt8) -> [(code: UInt16, bytes: [UInt8])]? {
        switch code {
        case temperature:
            return [(0x0000, parameter(0x0000, [0, celsius])), (0x0001, parameter(0x0001, [0, referenceCelsius]))]
        case selfTestResults:
            // Twenty result entries; no self-test has run, so each is empty (SPC-4 §7.3.22).
            return (1...20).map { n in (UInt16(n), parameter(UInt16(n), [UInt8](repeating: 0, count: 16))) }
        case informationalExceptions:
            // No exception pending (ASC/ASCQ 0), and the most recent temperature reading.
            return [(0x0000, parameter(0x0000, [0x00, 0x00, celsius]))]
        default:
            return nil
        }
    }

    /// The page with its header; `pointer` leaves out parameters below it (nil: no such page).
    static func page(_ code: UInt8, subpage: UInt8, pointer: UInt16) -> [UInt8]? {
        var body: [UInt8]
        var header = code
        if code == supported {
            // Subpage 0xFF: every supported page and subpage, as (page, subpage) pairs.
            guard subpage == 0 || subpage == 0xFF else { return nil }
            body = subpage == 0xFF ? codes.flatMap { [$0, 0x00] } + [0x00, 0xFF] : codes
            if subpage == 0xFF { header |= 0x40 }
            return [header, subpage] + SCSIPages.bigEndian(UInt64(body.count), 2) + body
        }
        guard subpage == 0, let all = parameters(code) else { return nil }
        body = all.filter { $0.code >= pointer }.flatMap(\.bytes)
        // DS = 1: the drive does not save log parameters.
        return [0x80 | code, 0] + SCSIPages.bigEndian(UInt64(body.count), 2) + body
    }
}

extension SCSITarget {
    /// LOG SENSE 0x4D.
    func logSense(_ cdb: [UInt8]) -> LinkSCSIResult {
        // SP = 1 would save parameters, which this drive cannot.
        guard cdb.byte(1) & 0x01 == 0 else { return check(.illegalRequest, .invalidFieldInCDB) }
        let code = cdb.byte(2) & 0x3F
        guard let page = SCSILogPages.page(code, subpage: cdb.byte(3), pointer: UInt16(cdb.bigEndian(5, 2))) else {
            return check(.illegalRequest, .invalidFieldInCDB)
        }
        return data(page, allocation: Int(cdb.bigEndian(7, 2)))
    }
}
