import SimulatorLink

/// A simulated NVMe drive as its controller sees commands: the admin commands an Opal host and
/// nvme-cli use (Identify, Get Log Page, Security Send/Receive) and NVM reads, writes and flushes
/// on namespace 1.
struct NVMeController {
    let drive: SimulatedDrive

    /// Status code type << 8 | status code, with Do Not Retry set on errors as controllers do.
    enum Status: UInt16 {
        case success = 0x0000
        case invalidOpcode = 0x4001
        case invalidField = 0x4002
        case internalError = 0x4006
        case invalidNamespace = 0x400B
        case lbaOutOfRange = 0x4080
        case invalidLogPage = 0x4109
        case accessDenied = 0x4286
    }

    static let namespaceID: UInt32 = 1
    static let maximumTransferBytes = 8 << 20

    func executeAdmin(_ command: LinkNVMeCommand) -> LinkNVMeResult {
        let id = drive.identity
        switch command.opcode {
        case 0x06:
            return identify(command, id)
        case 0x02:
            return logPage(command)
        case 0x81, 0x82:
            return security(command)
        default:
            return fail(.invalidOpcode)
        }
    }

    func executeIO(_ command: LinkNVMeCommand) -> LinkNVMeResult {
        let id = drive.identity
        guard command.namespaceID == Self.namespaceID else { return fail(.invalidNamespace) }
        let lba = UInt64(command.dword(10)) | UInt64(command.dword(11)) << 32
        let blocks = Int(command.dword(12) & 0xFFFF) + 1
        switch command.opcode {
        case 0x00: // Flush: writes are already durable
            return LinkNVMeResult()
        case 0x02:
            guard blocks * id.blockSize <= Self.maximumTransferBytes else { return fail(.invalidField) }
            do { return LinkNVMeResult(dataIn: try drive.read(lba: lba, count: blocks)) } catch { return mediaFailure(error) }
        case 0x01:
            let bytes = blocks * id.blockSize
            guard bytes <= Self.maximumTransferBytes, command.dataOut.count >= bytes else { return fail(.invalidField) }
            do { try drive.write(lba: lba, data: Array(command.dataOut.prefix(bytes))); return LinkNVMeResult() }
            catch { return mediaFailure(error) }
        default:
            return fail(.invalidOpcode)
        }
    }

    private func identify(_ command: LinkNVMeCommand, _ id: DriveIdentity) -> LinkNVMeResult {
        let data: [UInt8]
        switch command.dword(10) & 0xFF {
        case 0x00:
            guard command.namespaceID == Self.namespaceID || command.namespaceID == 0xFFFF_FFFF else { return fail(.invalidNamespace) }
            data = NVMeIdentifyData.namespace(id)
        case 0x01:
            data = NVMeIdentifyData.controller(id)
        case 0x02:
            // Active namespaces above the given NSID.
            var list = [UInt8](repeating: 0, count: 4096)
            if command.namespaceID < Self.namespaceID { list[0] = UInt8(Self.namespaceID) }
            data = list
        case 0x03:
            guard command.namespaceID == Self.namespaceID else { return fail(.invalidNamespace) }
            data = NVMeIdentifyData.namespaceDescriptors(id)
        default:
            return fail(.invalidField)
        }
        return LinkNVMeResult(dataIn: Array(data.prefix(command.dataInLength)))
    }

    /// Error, SMART / Health and Firmware Slot logs exist (all zero but the temperature); others do not.
    private func logPage(_ command: LinkNVMeCommand) -> LinkNVMeResult {
        let numberOfDwords = Int(command.dword(10) >> 16) | Int(command.dword(11) & 0xFFFF) << 16
        let length = min((numberOfDwords + 1) * 4, command.dataInLength, 4096)
        var log = [UInt8](repeating: 0, count: max(0, length))
        switch command.dword(10) & 0xFF {
        case 0x01, 0x03:
            break
        case 0x02:
            if log.count >= 3 { log[1] = 0x2C; log[2] = 0x01 }  // composite temperature 300 K
        default:
            return fail(.invalidLogPage)
        }
        return LinkNVMeResult(dataIn: log)
    }

    /// Security Send/Receive: cdw10 = SECP << 24 | SPSP << 8, cdw11 = transfer/allocation length.
    private func security(_ command: LinkNVMeCommand) -> LinkNVMeResult {
        let protocolID = UInt8(truncatingIfNeeded: command.dword(10) >> 24)
        let spSpecific = UInt16(truncatingIfNeeded: command.dword(10) >> 8)
        let length = Int(command.dword(11))
        guard length <= Self.maximumTransferBytes else { return fail(.invalidField) }
        do {
            if command.opcode == 0x82 {
                return LinkNVMeResult(dataIn: try drive.securityProtocolIn(protocolID: protocolID, spSpecific: spSpecific,
                                                                           allocationLength: length))
            }
            guard command.dataOut.count >= length else { return fail(.invalidField) }
            try drive.securityProtocolOut(protocolID: protocolID, spSpecific: spSpecific, payload: Array(command.dataOut.prefix(length)))
            return LinkNVMeResult()
        } catch { return fail(.invalidField) }
    }

    private func mediaFailure(_ error: SimulatedDrive.MediaError) -> LinkNVMeResult {
        switch error {
        case .dataProtect: return fail(.accessDenied)
        case .outOfRange: return fail(.lbaOutOfRange)
        case .failed: return fail(.internalError)
        }
    }

    private func fail(_ status: Status) -> LinkNVMeResult { LinkNVMeResult(status: status.rawValue) }
}

/// Identify data structures (NVMe Base 2.0 §5.17.2), little-endian.
enum NVMeIdentifyData {
    static let vendorID: UInt16 = 0x5E5D

    static func controller(_ id: DriveIdentity) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: 4096)
        data.put(UInt64(vendorID), at: 0, width: 2)
        data.put(UInt64(vendorID), at: 2, width: 2)
        data.putText(id.serial, at: 4, width: 20)
        data.putText(id.model, at: 24, width: 40)
        data.putText(id.firmware, at: 64, width: 8)
        data[72] = 6                                     // recommended arbitration burst
        data[77] = 5                                     // MDTS: 2^5 minimum pages
        data.put(1, at: 78, width: 2)                    // controller ID
        data.put(0x0001_0400, at: 80, width: 4)          // NVMe 1.4
        data[111] = 1                                    // I/O controller
        data.put(0x0001, at: 256, width: 2)              // OACS: Security Send/Receive
        data[258] = 3                                    // abort command limit
        data[259] = 3                                    // async event request limit
        data[260] = 0x02                                 // one firmware slot
        data[512] = 0x66                                 // SQ entry size 64
        data[513] = 0x44                                 // CQ entry size 16
        data.put(1, at: 516, width: 4)                   // one namespace
        data.putText("nqn.2026-11.io.sedlock:sedsim:\(id.serial.trimmingSpaces())", at: 768, width: 256, pad: 0)
        data.put(2500, at: 2048, width: 2)               // power state 0: 25.00 W
        return data
    }

    static func namespace(_ id: DriveIdentity) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: 4096)
        data.put(id.blockCount, at: 0, width: 8)         // size
        data.put(id.blockCount, at: 8, width: 8)         // capacity
        data.put(id.blockCount, at: 16, width: 8)        // utilisation
        for i in 0..<8 {
            data[104 + i] = UInt8(truncatingIfNeeded: id.wwn >> UInt64(56 - 8 * i))  // NGUID (upper half)
            data[120 + i] = UInt8(truncatingIfNeeded: id.wwn >> UInt64(56 - 8 * i))  // EUI-64
        }
        data[130] = UInt8(id.blockSize.trailingZeroBitCount)  // LBA format 0: data size as a power of two
        return data
    }

    static func namespaceDescriptors(_ id: DriveIdentity) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: 4096)
        data[0] = 0x01                                   // EUI-64
        data[1] = 8
        for i in 0..<8 { data[4 + i] = UInt8(truncatingIfNeeded: id.wwn >> UInt64(56 - 8 * i)) }
        return data
    }
}

extension Array where Element == UInt8 {
    mutating func put(_ value: UInt64, at offset: Int, width: Int) {
        for i in 0..<width { self[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i)) }
    }

    mutating func putText(_ text: String, at offset: Int, width: Int, pad: UInt8 = 0x20) {
        let bytes = Array(text.utf8.prefix(width))
        for i in 0..<width { self[offset + i] = i < bytes.count ? bytes[i] : pad }
    }
}
