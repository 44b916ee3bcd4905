/// Raw device commands on the link: what the preload library forwards from SG_IO and NVMe ioctls,
/// so the simulated drive, not the forwarding C code, decides what each command means.
///
/// Request payloads (the request's `length` field is the data-in allocation in bytes):
/// - SCSI: `[cdb length: u8][cdb][data-out bytes]`
/// - NVMe: `[64-byte submission queue entry][data-out bytes]`
/// Answers (status `.ok` whenever the device answered, even with an error status):
/// - SCSI: `[SCSI status: u8][sense length: u8][sense][data-in]`
/// - NVMe: `[status: u16 BE = SCT << 8 | SC][completion dword 0: u32 BE][data-in]`
public struct LinkSCSICommand: Hashable, Sendable {
    public var cdb: [UInt8]
    public var dataOut: [UInt8]
    public var dataInLength: Int

    public init(cdb: [UInt8], dataOut: [UInt8] = [], dataInLength: Int = 0) {
        self.cdb = cdb
        self.dataOut = dataOut
        self.dataInLength = dataInLength
    }

    public func request(drive: Int) -> LinkRequest {
        LinkRequest(.scsiCommand, drive: drive, length: UInt32(clamping: dataInLength),
                    payload: [UInt8(truncatingIfNeeded: cdb.count)] + cdb + dataOut)
    }

    public init(_ request: LinkRequest) throws(LinkError) {
        guard let first = request.payload.first, first >= 6, request.payload.count >= 1 + Int(first) else {
            throw LinkError.malformed("SCSI command without a complete CDB")
        }
        let cdbLength = Int(first)
        cdb = Array(request.payload[1...cdbLength])
        dataOut = Array(request.payload[(1 + cdbLength)...])
        dataInLength = Int(request.length)
    }
}

public struct LinkSCSIResult: Hashable, Sendable {
    public static let good: UInt8 = 0x00
    public static let checkCondition: UInt8 = 0x02

    public var status: UInt8
    public var sense: [UInt8]
    public var dataIn: [UInt8]

    public init(status: UInt8 = LinkSCSIResult.good, sense: [UInt8] = [], dataIn: [UInt8] = []) {
        self.status = status
        self.sense = Array(sense.prefix(255))
        self.dataIn = dataIn
    }

    public func encoded() -> [UInt8] { [status, UInt8(sense.count)] + sense + dataIn }

    public static func decode(_ payload: [UInt8]) throws(LinkError) -> LinkSCSIResult {
        guard payload.count >= 2, payload.count >= 2 + Int(payload[1]) else {
            throw LinkError.malformed("SCSI result of \(payload.count) bytes is truncated")
        }
        let senseEnd = 2 + Int(payload[1])
        return LinkSCSIResult(status: payload[0], sense: Array(payload[2..<senseEnd]), dataIn: Array(payload[senseEnd...]))
    }
}

public struct LinkNVMeCommand: Hashable, Sendable {
    public static let entrySize = Int(SEDSIM_LINK_NVME_ENTRY_SIZE)
    /// The submission queue entry, little-endian as the NVMe specification lays it out.
    public var entry: [UInt8]
    public var dataOut: [UInt8]
    public var dataInLength: Int

    public init(entry: [UInt8], dataOut: [UInt8] = [], dataInLength: Int = 0) {
        self.entry = entry.count >= Self.entrySize ? Array(entry.prefix(Self.entrySize))
            : entry + [UInt8](repeating: 0, count: Self.entrySize - entry.count)
        self.dataOut = dataOut
        self.dataInLength = dataInLength
    }

    public init(_ request: LinkRequest) throws(LinkError) {
        guard request.payload.count >= Self.entrySize else { throw LinkError.malformed("NVMe command shorter than 64 bytes") }
        entry = Array(request.payload.prefix(Self.entrySize))
        dataOut = Array(request.payload.dropFirst(Self.entrySize))
        dataInLength = Int(request.length)
    }

    public func request(drive: Int, admin: Bool) -> LinkRequest {
        LinkRequest(admin ? .nvmeAdminCommand : .nvmeIOCommand, drive: drive, length: UInt32(clamping: dataInLength),
                    payload: entry + dataOut)
    }

    public var opcode: UInt8 { entry[0] }
    public var namespaceID: UInt32 { dword(1) }
    /// Command dword `n` (0…15), little-endian.
    public func dword(_ n: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(entry[n * 4 + $1]) << (8 * $1) }
    }
}

public struct LinkNVMeResult: Hashable, Sendable {
    /// Status code type << 8 | status code; 0 is success.
    public var status: UInt16
    public var result: UInt32
    public var dataIn: [UInt8]

    public init(status: UInt16 = 0, result: UInt32 = 0, dataIn: [UInt8] = []) {
        self.status = status
        self.result = result
        self.dataIn = dataIn
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.appendBE(status)
        out.appendBE(result)
        return out + dataIn
    }

    public static func decode(_ payload: [UInt8]) throws(LinkError) -> LinkNVMeResult {
        guard payload.count >= 6 else { throw LinkError.malformed("NVMe result of \(payload.count) bytes is truncated") }
        return LinkNVMeResult(status: UInt16(payload.readBE(0, 2)), result: UInt32(payload.readBE(2, 4)),
                              dataIn: Array(payload[6...]))
    }
}
