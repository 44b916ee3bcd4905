/// Command blocks for IF-SEND / IF-RECV on each bus, as pure functions (layouts in reference/tcg-opal.md).
public enum SecurityCommands {
    public enum Direction: Sendable { case send, receive }

    /// SCSI SECURITY PROTOCOL IN (0xA2) / OUT (0xB5), 12 bytes, INC_512 = 0 and a byte length
    /// (libata reads INC_512 from the wrong bit, so byte lengths are the portable choice).
    public static func scsiSecurityProtocol(_ direction: Direction, protocolID: UInt8, spSpecific: UInt16,
                                            length: UInt32) -> [UInt8] {
        [direction == .receive ? 0xA2 : 0xB5, protocolID, UInt8(spSpecific >> 8), UInt8(spSpecific & 0xFF),
         0x00, 0x00,
         UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
         UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length),
         0x00, 0x00]
    }

    /// ATA TRUSTED RECEIVE (0x5C) / SEND (0x5E) inside SAT ATA PASS-THROUGH(12) (0xA1): PIO, length in
    /// 512-byte blocks (so `length` must be a multiple of 512), ComID in LBA mid/high.
    public static func ataPassThrough12(_ direction: Direction, protocolID: UInt8, spSpecific: UInt16,
                                        length: UInt32) -> [UInt8] {
        let blocks = length / 512
        return [0xA1,
                (direction == .receive ? 4 : 5) << 1,           // PIO data-in / data-out
                direction == .receive ? 0x0E : 0x06,             // t_dir, byt_blok, t_length = sector count
                protocolID,                                      // features
                UInt8(truncatingIfNeeded: blocks),               // count: transfer length (7:0)
                UInt8(truncatingIfNeeded: blocks >> 8),          // LBA low: transfer length (15:8)
                UInt8(spSpecific & 0xFF),                        // LBA mid: ComID (7:0)
                UInt8(spSpecific >> 8),                          // LBA high: ComID (15:8)
                0x40,                                            // device: LBA mode
                direction == .receive ? 0x5C : 0x5E,
                0x00, 0x00]
    }

    /// The same command in ATA PASS-THROUGH(16) (0x85), field placement as libata maps it.
    public static func ataPassThrough16(_ direction: Direction, protocolID: UInt8, spSpecific: UInt16,
                                        length: UInt32) -> [UInt8] {
        let blocks = length / 512
        var cdb = [UInt8](repeating: 0, count: 16)
        cdb[0] = 0x85
        cdb[1] = (direction == .receive ? 4 : 5) << 1
        cdb[2] = direction == .receive ? 0x0E : 0x06
        cdb[4] = protocolID                                  // feature
        cdb[6] = UInt8(truncatingIfNeeded: blocks)           // nsect
        cdb[8] = UInt8(truncatingIfNeeded: blocks >> 8)      // lbal
        cdb[10] = UInt8(spSpecific & 0xFF)                   // lbam
        cdb[12] = UInt8(spSpecific >> 8)                     // lbah
        cdb[13] = 0x40                                       // device
        cdb[14] = direction == .receive ? 0x5C : 0x5E        // command
        return cdb
    }

    /// NVMe admin Security Send (0x81) / Receive (0x82): nsid 0, cdw10 = SECP<<24 | SPSP<<8, cdw11 = length.
    public static func nvmeSecurity(_ direction: Direction, protocolID: UInt8, spSpecific: UInt16,
                                    length: UInt32) -> NVMeAdminCommand {
        NVMeAdminCommand(opcode: direction == .receive ? 0x82 : 0x81, namespaceID: 0,
                         cdw10: UInt32(protocolID) << 24 | UInt32(spSpecific) << 8, cdw11: length, dataLength: length)
    }
}

/// An NVMe admin command as Linux's `struct nvme_admin_cmd` (NVME_IOCTL_ADMIN_CMD) carries it.
public struct NVMeAdminCommand: Hashable, Sendable {
    public var opcode: UInt8
    public var namespaceID: UInt32
    public var cdw10: UInt32
    public var cdw11: UInt32
    public var dataLength: UInt32
    public var timeoutMilliseconds: UInt32 = 0

    public static let structSize = 72

    /// Identify (0x06) with the given CNS, 4096 bytes of data.
    public static func identify(cns: UInt8, namespaceID: UInt32) -> NVMeAdminCommand {
        NVMeAdminCommand(opcode: 0x06, namespaceID: namespaceID, cdw10: UInt32(cns), cdw11: 0, dataLength: 4096)
    }

    /// The 64-byte submission queue entry (NVMe Base §4.2), little-endian; the data pointer is left
    /// for the pass-through layer to fill.
    public func submissionEntry() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        func put(_ value: UInt32, at offset: Int) {
            for i in 0..<4 { out[offset + i] = UInt8(truncatingIfNeeded: value >> (i * 8)) }
        }
        out[0] = opcode
        put(namespaceID, at: 4)
        put(cdw10, at: 40)
        put(cdw11, at: 44)
        return out
    }

    /// The 72 bytes of `struct nvme_admin_cmd` (little-endian), with the data pointer at offset 24.
    public func bytes(dataAddress: UInt64 = 0) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.structSize)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            for i in 0..<(T.bitWidth / 8) { out[offset + i] = UInt8(truncatingIfNeeded: value >> (i * 8)) }
        }
        out[0] = opcode
        put(namespaceID, at: 4)
        put(dataAddress, at: 24)
        put(dataLength, at: 36)
        put(cdw10, at: 40)
        put(cdw11, at: 44)
        put(timeoutMilliseconds, at: 64)
        return out
    }
}
