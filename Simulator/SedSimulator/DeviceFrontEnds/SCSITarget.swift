import SimulatorLink

/// A simulated drive as a SCSI logical unit: a SAS drive, or a SATA drive behind a SAT layer
/// (libata), executing the CDBs SG_IO delivers.
struct SCSITarget {
    let drive: SimulatedDrive
    /// Largest media transfer one command may carry.
    static let maximumTransferBytes = 8 << 20

    func execute(_ command: LinkSCSICommand) -> LinkSCSIResult {
        let cdb = command.cdb
        let id = drive.identity
        let satLayer = id.kind == .sata ? drive.settings.satLayer ?? .libata : nil
        guard let opcode = cdb.first else { return check(.illegalRequest, .invalidCommandOperationCode) }
        switch opcode {
        case 0x00: // TEST UNIT READY
            return LinkSCSIResult()
        case 0x03: // REQUEST SENSE: nothing pending
            return data(SimulatedSense.fixed(.noSense, .none), allocation: Int(cdb.byte(4)))
        case 0x12:
            return inquiry(cdb, id)
        case 0x25: // READ CAPACITY(10)
            return data(SCSIPages.capacity10(id), allocation: 8)
        case 0x9E where cdb.byte(1) & 0x1F == 0x10: // READ CAPACITY(16)
            return data(SCSIPages.capacity16(id), allocation: Int(cdb.bigEndian(10, 4)))
        case 0x28, 0x88:
            let (lba, blocks) = opcode == 0x28 ? (cdb.bigEndian(2, 4), cdb.bigEndian(7, 2)) : (cdb.bigEndian(2, 8), cdb.bigEndian(10, 4))
            return read(lba: lba, blocks: blocks, id)
        case 0x2A, 0x8A:
            let (lba, blocks) = opcode == 0x2A ? (cdb.bigEndian(2, 4), cdb.bigEndian(7, 2)) : (cdb.bigEndian(2, 8), cdb.bigEndian(10, 4))
            return write(lba: lba, blocks: blocks, data: command.dataOut, id)
        case 0x35, 0x91: // SYNCHRONIZE CACHE(10/16): writes are already durable
            return LinkSCSIResult()
        case 0x1A, 0x5A:
            return modeSense(cdb, ten: opcode == 0x5A)
        case 0x15, 0x55:
            return modeSelect(cdb, parameters: command.dataOut, ten: opcode == 0x55)
        case 0x4D where satLayer == nil: // libata does not translate LOG SENSE
            return logSense(cdb)
        case 0xA3 where cdb.byte(1) & 0x1F == 0x0C:
            return reportSupportedOperationCodes(cdb, satLayer: satLayer)
        case 0xA0: // REPORT LUNS: LUN 0 only
            return data([0, 0, 0, 8, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8), allocation: Int(cdb.bigEndian(6, 4)))
        case 0xA2, 0xB5:
            guard satLayer == nil || satLayer == .libata else { return check(.illegalRequest, .invalidCommandOperationCode) }
            return opcode == 0xA2 ? securityProtocolIn(cdb) : securityProtocolOut(cdb, payload: command.dataOut)
        case 0x85, 0xA1:
            // A SAS device has no ATA behind it: the pass-through opcodes are simply unknown.
            guard let satLayer, !(opcode == 0x85 && satLayer == .ata12Only) else {
                return check(.illegalRequest, .invalidCommandOperationCode)
            }
            return ATAPassThrough(drive: drive).execute(command)
        default:
            return check(.illegalRequest, .invalidCommandOperationCode)
        }
    }

    private func inquiry(_ cdb: [UInt8], _ id: DriveIdentity) -> LinkSCSIResult {
        let allocation = Int(cdb.bigEndian(3, 2))
        if cdb.byte(1) & 0x01 == 0 {
            guard cdb.byte(2) == 0 else { return check(.illegalRequest, .invalidFieldInCDB) }
            return data(SCSIPages.standardInquiry(id), allocation: allocation)
        }
        guard let page = SCSIPages.vpd(cdb.byte(2), id) else { return check(.illegalRequest, .invalidFieldInCDB) }
        return data(page, allocation: allocation)
    }

    /// SPC-4 §6.40/6.41: INC_512 (byte 4 bit 7) = 1 counts the length in 512-byte units.
    private func securityLength(_ cdb: [UInt8]) -> Int {
        let length = Int(cdb.bigEndian(6, 4))
        return cdb.byte(4) & 0x80 != 0 ? length * 512 : length
    }

    private func securityProtocolIn(_ cdb: [UInt8]) -> LinkSCSIResult {
        let length = securityLength(cdb)
        guard length <= Self.maximumTransferBytes else { return check(.illegalRequest, .invalidFieldInCDB) }
        do {
            return LinkSCSIResult(dataIn: try drive.securityProtocolIn(protocolID: cdb.byte(1), spSpecific: UInt16(cdb.bigEndian(2, 2)),
                                                                       allocationLength: length))
        } catch { return check(.illegalRequest, .invalidFieldInCDB) }
    }

    private func securityProtocolOut(_ cdb: [UInt8], payload: [UInt8]) -> LinkSCSIResult {
        let length = securityLength(cdb)
        guard length <= payload.count else { return check(.illegalRequest, .parameterListLengthError) }
        do {
            try drive.securityProtocolOut(protocolID: cdb.byte(1), spSpecific: UInt16(cdb.bigEndian(2, 2)),
                                          payload: Array(payload.prefix(length)))
            return LinkSCSIResult()
        } catch { return check(.illegalRequest, .invalidFieldInCDB) }
    }

    private func read(lba: UInt64, blocks: UInt64, _ id: DriveIdentity) -> LinkSCSIResult {
        guard blocks * UInt64(id.blockSize) <= UInt64(Self.maximumTransferBytes) else { return check(.illegalRequest, .invalidFieldInCDB) }
        do { return LinkSCSIResult(dataIn: try drive.read(lba: lba, count: Int(blocks))) } catch { return mediaFailure(error) }
    }

    private func write(lba: UInt64, blocks: UInt64, data: [UInt8], _ id: DriveIdentity) -> LinkSCSIResult {
        let bytes = Int(blocks) * id.blockSize
        guard bytes <= Self.maximumTransferBytes, data.count >= bytes else { return check(.illegalRequest, .invalidFieldInCDB) }
        do { try drive.write(lba: lba, data: Array(data.prefix(bytes))); return LinkSCSIResult() } catch { return mediaFailure(error) }
    }

    private func mediaFailure(_ error: SimulatedDrive.MediaError) -> LinkSCSIResult {
        switch error {
        case .dataProtect: return check(.dataProtect, .logicalUnitAccessNotAuthorized)
        case .outOfRange: return check(.illegalRequest, .lbaOutOfRange)
        case .failed: return check(.hardwareError, .internalTargetFailure)
        }
    }

    func data(_ bytes: [UInt8], allocation: Int) -> LinkSCSIResult {
        LinkSCSIResult(dataIn: Array(bytes.prefix(max(0, allocation))))
    }

    func check(_ key: SenseKey, _ asc: AdditionalSense) -> LinkSCSIResult {
        LinkSCSIResult(status: LinkSCSIResult.checkCondition, sense: SimulatedSense.fixed(key, asc))
    }
}

extension Array where Element == UInt8 {
    /// The byte at `index`, or 0 past the end (a short CDB reads as zero-filled).
    func byte(_ index: Int) -> UInt8 { index >= 0 && index < count ? self[index] : 0 }

    /// `width` bytes big-endian from `offset`, zero-filled past the end.
    func bigEndian(_ offset: Int, _ width: Int) -> UInt64 {
        (0..<width).reduce(UInt64(0)) { $0 << 8 | UInt64(byte(offset + $1)) }
    }
}
