@_exported import CSimulatorLink

/// The messages of the simulated bus between a host and `sedsim serve`.
///
/// One request, one response, each framed by a 4-byte big-endian length. The bus carries what a
/// real HBA would: security protocol IN/OUT, media reads and writes, identity, and the
/// out-of-band events (power cycle, resets) a test rig applies to hardware.
/// What a request asks for. Defined once, in `sedsim_link.h`, which the preload library shares.
public typealias LinkOperation = SedsimLinkOperation

/// How a request went. Defined in `sedsim_link.h`.
public typealias LinkStatus = SedsimLinkStatus

extension SedsimLinkOperation: @retroactive @unchecked Sendable {
    /// Every operation `sedsim_link.h` defines.
    public static let known: [LinkOperation] = [.identify, .securityProtocolOut, .securityProtocolIn, .read, .write, .powerCycle,
                                                .hardwareReset, .status, .setFaults, .listDrives, .scsiCommand,
                                                .nvmeAdminCommand, .nvmeIOCommand]

    /// The operation with this byte, or nil. (An imported C enum's `init(rawValue:)` accepts any
    /// byte, which a switch would then meet as no case at all: bytes from a peer go through here.)
    public init?(wire raw: UInt8) {
        guard let match = Self.known.first(where: { $0.rawValue == raw }) else { return nil }
        self = match
    }
}

extension SedsimLinkStatus: @retroactive @unchecked Sendable {
    public static let known: [LinkStatus] = [.ok, .failed, .dataProtect, .noSuchDrive, .illegalRequest]

    /// The status with this byte, or nil (see `LinkOperation.init(wire:)`).
    public init?(wire raw: UInt8) {
        guard let match = Self.known.first(where: { $0.rawValue == raw }) else { return nil }
        self = match
    }
}

public struct LinkRequest: Hashable, Sendable {
    public static let headerSize = Int(SEDSIM_LINK_REQUEST_HEADER)
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
        // One buffer of the exact size: the payload may carry a PIN, and an outgrown buffer would
        // be freed with a copy of it.
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerSize + payload.count)
        out.append(operation.rawValue)
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
        guard let op = LinkOperation(wire: body[Int(SEDSIM_LINK_OFFSET_OPERATION)]) else { throw LinkError.malformed("unknown operation \(body[0])") }
        var request = LinkRequest(op, drive: Int(body.readBE(Int(SEDSIM_LINK_OFFSET_DRIVE), 2)),
                                  protocolID: body[Int(SEDSIM_LINK_OFFSET_PROTOCOL)],
                                  spSpecific: UInt16(body.readBE(Int(SEDSIM_LINK_OFFSET_SP_SPECIFIC), 2)),
                                  length: UInt32(body.readBE(Int(SEDSIM_LINK_OFFSET_LENGTH), 4)),
                                  lba: body.readBE(Int(SEDSIM_LINK_OFFSET_LBA), 8))
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
        guard let first = body.first, let status = LinkStatus(wire: first) else {
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
    /// Nobody could be reached at the array's socket; `permissionDenied` when it exists but
    /// belongs to someone else (it is created 0600).
    case cannotConnect(String, permissionDenied: Bool)

    public var description: String {
        switch self {
        case .cannotConnect(let m, _): return m
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
