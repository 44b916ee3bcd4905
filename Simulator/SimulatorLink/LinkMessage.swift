/// The messages of the simulated bus between a host and `sedsim serve`.
///
/// One request, one response, each framed by a 4-byte big-endian length. The bus carries what a
/// real HBA would: security protocol IN/OUT, media reads and writes, identity, and the
/// out-of-band events (power cycle, resets) a test rig applies to hardware.
public enum LinkOperation: UInt8, Sendable, CaseIterable {
    case identify = 1
    case securityProtocolOut = 2
    case securityProtocolIn = 3
    case read = 4
    case write = 5
    case powerCycle = 6
    case hardwareReset = 7
    case status = 8
    case setFaults = 9
    case listDrives = 10
    /// A raw SCSI command as SG_IO carries it (payload: `LinkSCSICommand`, answer: `LinkSCSIResult`).
    case scsiCommand = 11
    /// A raw NVMe admin command (payload: `LinkNVMeCommand`, answer: `LinkNVMeResult`).
    case nvmeAdminCommand = 12
    /// A raw NVMe I/O (NVM command set) command, same framing as admin commands.
    case nvmeIOCommand = 13
}

public enum LinkStatus: UInt8, Sendable {
    case ok = 0
    /// The request could not be carried out; the payload is a UTF-8 explanation.
    case failed = 1
    /// A read or write hit a locked range (SCSI DATA PROTECT, NVMe Access Denied).
    case dataProtect = 2
    case noSuchDrive = 3
    case illegalRequest = 4
}

public struct LinkRequest: Hashable, Sendable {
    public static let headerSize = 18
    public var operation: LinkOperation
    public var drive: UInt16
    public var protocolID: UInt8
    public var spSpecific: UInt16
    /// Allocation length for IN, block count for reads.
    public var length: UInt32
    public var lba: UInt64
    public var payload: [UInt8]

    public init(_ operation: LinkOperation, drive: Int, protocolID: UInt8 = 0, spSpecific: UInt16 = 0,
                length: UInt32 = 0, lba: UInt64 = 0, payload: [UInt8] = []) {
        self.operation = operation
        self.drive = UInt16(clamping: drive)
        self.protocolID = protocolID
        self.spSpecific = spSpecific
        self.length = length
        self.lba = lba
        self.payload = payload
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = [operation.rawValue]
        out.appendBE(drive)
        out.append(protocolID)
        out.appendBE(spSpecific)
        out.appendBE(length)
        out.appendBE(lba)
        out.append(contentsOf: payload)
        return out
    }

    public static func decode(_ body: [UInt8]) throws(LinkError) -> LinkRequest {
        guard body.count >= headerSize else { throw LinkError.malformed("request of \(body.count) bytes is shorter than its header") }
        guard let op = LinkOperation(rawValue: body[0]) else { throw LinkError.malformed("unknown operation \(body[0])") }
        var request = LinkRequest(op, drive: Int(body.readBE(1, 2)), protocolID: body[3],
                                  spSpecific: UInt16(body.readBE(4, 2)), length: UInt32(body.readBE(6, 4)),
                                  lba: body.readBE(10, 8))
        request.payload = Array(body[headerSize...])
        return request
    }
}

public struct LinkResponse: Hashable, Sendable {
    public var status: LinkStatus
    public var payload: [UInt8]

    public init(_ status: LinkStatus, payload: [UInt8] = []) {
        self.status = status
        self.payload = payload
    }

    public static func failure(_ status: LinkStatus, _ message: String) -> LinkResponse {
        LinkResponse(status, payload: Array(message.utf8))
    }

    public var message: String { String(decoding: payload, as: UTF8.self) }

    public func encoded() -> [UInt8] { [status.rawValue] + payload }

    public static func decode(_ body: [UInt8]) throws(LinkError) -> LinkResponse {
        guard let first = body.first, let status = LinkStatus(rawValue: first) else {
            throw LinkError.malformed("response without a valid status byte")
        }
        return LinkResponse(status, payload: Array(body.dropFirst()))
    }
}

public enum LinkError: Error, Hashable, Sendable, CustomStringConvertible {
    case malformed(String)
    case io(String)
    case timedOut(String)
    case closed

    public var description: String {
        switch self {
        case .malformed(let m): return "malformed simulator message: \(m)"
        case .io(let m): return m
        case .timedOut(let m): return m
        case .closed: return "the simulator closed the connection"
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendBE<T: FixedWidthInteger>(_ value: T) {
        for shift in stride(from: T.bitWidth - 8, through: 0, by: -8) {
            append(UInt8(truncatingIfNeeded: value >> shift))
        }
    }

    /// Callers check the bounds first; this reads `width` bytes at `offset`.
    func readBE(_ offset: Int, _ width: Int) -> UInt64 {
        (0..<width).reduce(UInt64(0)) { $0 << 8 | UInt64(self[offset + $1]) }
    }
}
