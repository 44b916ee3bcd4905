import SimulatorLink

/// The mode pages a simulated SAS drive, or a SATA drive behind libata, answers MODE SENSE with
/// (SPC-4 §7.5, SBC-3 §6.5): Read-Write Error Recovery, Caching, Control and Informational
/// Exceptions Control, each as the drive behaves. None is saveable or changeable, so MODE SELECT
/// takes only the values the drive already has.
enum SCSIModePages {
    enum Control: UInt8 {
        case current = 0, changeable = 1, defaults = 2, saved = 3
    }

    static let readWriteErrorRecovery: UInt8 = 0x01
    static let caching: UInt8 = 0x08
    static let control: UInt8 = 0x0A
    static let informationalExceptions: UInt8 = 0x1C
    static let allPages: UInt8 = 0x3F
    static let codes = [readWriteErrorRecovery, caching, control, informationalExceptions]

    /// One page as `control` asks for it; nil for a page the drive does not have.
    static func page(_ code: UInt8, _ control: Control) -> [UInt8]? {
        var body: [UInt8]
        switch code {
        case readWriteErrorRecovery:
            // AWRE and ARRE (automatic reallocation), 20 read and write retries, no recovery time limit.
            body = [0xC0, 20, 0, 0, 0, 0, 20, 0, 0, 0]
        case caching:
            // WCE = 0: writes are on the medium when the command completes (the drive keeps no
            // volatile cache, and its IDENTIFY data says the same); RCD = 0: reads may be cached.
            body = [UInt8](repeating: 0, count: 18)
        case self.control:
            // GLTSD (no implicit log saving), unrestricted reordering (QAM 1), no busy timeout
            // limit, 30 s extended self-test time.
            body = [0x02, 0x10, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00, 30]
        case informationalExceptions:
            // Exceptions enabled (DEXCPT 0), reported only on request (MRIE 6), no interval or count.
            body = [0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0]
        default:
            return nil
        }
        if control == .changeable { body = [UInt8](repeating: 0, count: body.count) }
        return [code, UInt8(body.count)] + body
    }

    /// The parameter data of MODE SENSE(6) or (10): header, an optional block descriptor, pages.
    static func modeParameters(pages: [UInt8], id: DriveIdentity, blockDescriptor: Bool, long: Bool, ten: Bool) -> [UInt8] {
        var descriptor: [UInt8] = []
        if blockDescriptor {
            if long {
                descriptor = SCSIPages.bigEndian(id.blockCount, 8) + [0, 0, 0, 0] + SCSIPages.bigEndian(UInt64(id.blockSize), 4)
            } else {
                descriptor = SCSIPages.bigEndian(min(id.blockCount, 0xFFFF_FFFF), 4) + [0] + SCSIPages.bigEndian(UInt64(id.blockSize), 3)
            }
        }
        // Medium type 0; device-specific parameter 0: not write-protected, no DPO/FUA.
        if ten {
            let length = 6 + descriptor.count + pages.count
            return SCSIPages.bigEndian(UInt64(length), 2) + [0, 0, long ? 0x01 : 0x00, 0]
                + SCSIPages.bigEndian(UInt64(descriptor.count), 2) + descriptor + pages
        }
        return [UInt8(truncatingIfNeeded: 3 + descriptor.count + pages.count), 0, 0, UInt8(descriptor.count)] + descriptor + pages
    }
}

extension SCSITarget {
    /// MODE SENSE(6) 0x1A and (10) 0x5A.
    func modeSense(_ cdb: [UInt8], ten: Bool) -> LinkSCSIResult {
        let id = drive.identity
        let disableBlockDescriptors = cdb.byte(1) & 0x08 != 0
        let long = ten && cdb.byte(1) & 0x10 != 0
        guard let control = SCSIModePages.Control(rawValue: cdb.byte(2) >> 6) else { return check(.illegalRequest, .invalidFieldInCDB) }
        // No page is saveable: asking for saved values is SAVING PARAMETERS NOT SUPPORTED.
        guard control != .saved else { return check(.illegalRequest, .savingParametersNotSupported) }
        let code = cdb.byte(2) & 0x3F
        let subpage = cdb.byte(3)
        var pages: [UInt8] = []
        if code == SCSIModePages.allPages, subpage == 0x00 || subpage == 0xFF {
            for each in SCSIModePages.codes { pages += SCSIModePages.page(each, control) ?? [] }
        } else {
            guard subpage == 0, let page = SCSIModePages.page(code, control) else { return check(.illegalRequest, .invalidFieldInCDB) }
            pages = page
        }
        let parameters = SCSIModePages.modeParameters(pages: pages, id: id, blockDescriptor: !disableBlockDescriptors, long: long, ten: ten)
        return data(parameters, allocation: ten ? Int(cdb.bigEndian(7, 2)) : Int(cdb.byte(4)))
    }

    /// MODE SELECT(6) 0x15 and (10) 0x55: nothing is changeable, so a page must hold the values
    /// the drive has (INVALID FIELD IN PARAMETER LIST otherwise) and nothing can be saved.
    func modeSelect(_ cdb: [UInt8], parameters: [UInt8], ten: Bool) -> LinkSCSIResult {
        guard cdb.byte(1) & 0x01 == 0 else { return check(.illegalRequest, .invalidFieldInCDB) }
        let length = ten ? Int(cdb.bigEndian(7, 2)) : Int(cdb.byte(4))
        guard length <= parameters.count else { return check(.illegalRequest, .parameterListLengthError) }
        let list = Array(parameters.prefix(length))
        guard !list.isEmpty else { return LinkSCSIResult() }
        let headerLength = ten ? 8 : 4
        guard list.count >= headerLength else { return check(.illegalRequest, .parameterListLengthError) }
        let descriptorLength = ten ? Int(list.bigEndian(6, 2)) : Int(list.byte(3))
        var offset = headerLength
        // A block descriptor may restate the block length; it may not change it.
        if descriptorLength > 0 {
            guard offset + descriptorLength <= list.count, descriptorLength == 8 || descriptorLength == 16 else {
                return check(.illegalRequest, .invalidFieldInParameterList)
            }
            let blockLength = descriptorLength == 8 ? list.bigEndian(offset + 5, 3) : list.bigEndian(offset + 12, 4)
            guard blockLength == 0 || blockLength == UInt64(drive.identity.blockSize) else {
                return check(.illegalRequest, .invalidFieldInParameterList)
            }
            offset += descriptorLength
        }
        while offset < list.count {
            guard offset + 2 <= list.count else { return check(.illegalRequest, .parameterListLengthError) }
            let code = list.byte(offset) & 0x3F
            let pageLength = Int(list.byte(offset + 1))
            guard list.byte(offset) & 0x40 == 0, offset + 2 + pageLength <= list.count,
                  let current = SCSIModePages.page(code, .current), current.count == 2 + pageLength,
                  Array(list[(offset + 2)..<(offset + 2 + pageLength)]) == Array(current.dropFirst(2)) else {
                return check(.illegalRequest, .invalidFieldInParameterList)
            }
            offset += 2 + pageLength
        }
        return LinkSCSIResult()
    }
}
