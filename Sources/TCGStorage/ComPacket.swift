/// A data subpacket (12-byte header; payload padded to a multiple of 4 on the wire).
public struct SubPacket: Hashable, Sendable {
    public static let headerSize = 12
    public var kind: UInt16
    public var payload: [UInt8]

    public init(kind: UInt16 = 0, payload: [UInt8]) {
        self.kind = kind
        self.payload = payload
    }
}

/// A packet: the session (TSN/HSN) a set of subpackets belongs to (24-byte header).
public struct Packet: Hashable, Sendable {
    public static let headerSize = 24
    public var tperSessionNumber: UInt32
    public var hostSessionNumber: UInt32
    public var sequenceNumber: UInt32
    public var ackType: UInt16
    public var acknowledgement: UInt32
    public var subpackets: [SubPacket]

    public init(tperSessionNumber: UInt32 = 0, hostSessionNumber: UInt32 = 0, sequenceNumber: UInt32 = 0,
                ackType: UInt16 = 0, acknowledgement: UInt32 = 0, subpackets: [SubPacket]) {
        self.tperSessionNumber = tperSessionNumber
        self.hostSessionNumber = hostSessionNumber
        self.sequenceNumber = sequenceNumber
        self.ackType = ackType
        self.acknowledgement = acknowledgement
        self.subpackets = subpackets
    }
}

/// The unit of IF-SEND / IF-RECV on protocol 0x01 (20-byte header).
public struct ComPacket: Hashable, Sendable {
    public static let headerSize = 20
    /// Bounds the work a hostile buffer can cause: no drive sends more packets than this in one ComPacket.
    public static let maximumPackets = 64
    public static let maximumSubpacketsPerPacket = 64

    public var comID: UInt16
    public var comIDExtension: UInt16
    /// Bytes the TPer still holds for the host; 1 with an empty payload means "still processing".
    public var outstandingData: UInt32
    /// The smallest transfer length that will receive the next chunk.
    public var minTransfer: UInt32
    public var packets: [Packet]

    public init(comID: UInt16, comIDExtension: UInt16 = 0, outstandingData: UInt32 = 0, minTransfer: UInt32 = 0,
                packets: [Packet] = []) {
        self.comID = comID
        self.comIDExtension = comIDExtension
        self.outstandingData = outstandingData
        self.minTransfer = minTransfer
        self.packets = packets
    }

    /// Encodes headers with correct lengths; pads the whole buffer to a multiple of `padTo` bytes.
    /// Written straight into one buffer of the exact size: a request may carry a PIN, and every
    /// intermediate or outgrown buffer would leave a copy of it in freed memory.
    public func encoded(padTo alignment: Int = 1) -> [UInt8] {
        let packetLengths = packets.map { packet in
            packet.subpackets.reduce(0) { $0 + SubPacket.headerSize + $1.payload.count + (4 - $1.payload.count % 4) % 4 }
        }
        let bodyLength = zip(packets, packetLengths).reduce(0) { $0 + Packet.headerSize + $1.1 }
        let unpadded = Self.headerSize + bodyLength
        let total = alignment > 1 ? unpadded + (alignment - unpadded % alignment) % alignment : unpadded
        var out: [UInt8] = []
        out.reserveCapacity(total)
        out.appendZeros(4)
        out.appendBigEndian(comID)
        out.appendBigEndian(comIDExtension)
        out.appendBigEndian(outstandingData)
        out.appendBigEndian(minTransfer)
        out.appendBigEndian(UInt32(bodyLength))
        for (packet, length) in zip(packets, packetLengths) {
            out.appendBigEndian(packet.tperSessionNumber)
            out.appendBigEndian(packet.hostSessionNumber)
            out.appendBigEndian(packet.sequenceNumber)
            out.appendZeros(2)
            out.appendBigEndian(packet.ackType)
            out.appendBigEndian(packet.acknowledgement)
            out.appendBigEndian(UInt32(length))
            for sub in packet.subpackets {
                out.appendZeros(6)
                out.appendBigEndian(sub.kind)
                out.appendBigEndian(UInt32(sub.payload.count))
                out.append(contentsOf: sub.payload)
                out.appendZeros((4 - sub.payload.count % 4) % 4)
            }
        }
        out.appendZeros(total - out.count)
        return out
    }

    /// Parses a ComPacket from a receive buffer that may be longer than the ComPacket (zero fill).
    public static func decode(_ bytes: [UInt8]) throws(TCGStorageError) -> ComPacket {
        var reader = ByteReader(bytes)
        try reader.skip(4, "ComPacket reserved bytes")
        let comID = try reader.u16("ComID")
        let comIDExtension = try reader.u16("ComID extension")
        let outstanding = try reader.u32("OutstandingData")
        let minTransfer = try reader.u32("MinTransfer")
        let length = Int(try reader.u32("ComPacket length"))
        guard length <= reader.remaining else {
            throw TCGStorageError(.inconsistentLength, at: 16,
                                  "ComPacket length \(length) exceeds the \(reader.remaining) bytes received")
        }
        var body = ByteReader(bytes, from: reader.offset, end: reader.offset + length)
        var packets: [Packet] = []
        // Zero fill after the last packet is padding, not a packet.
        while body.remaining >= Packet.headerSize {
            guard packets.count < maximumPackets else {
                throw TCGStorageError(.inconsistentLength, at: body.offset, "more than \(maximumPackets) packets")
            }
            packets.append(try decodePacket(&body, bytes: bytes))
        }
        return ComPacket(comID: comID, comIDExtension: comIDExtension, outstandingData: outstanding,
                         minTransfer: minTransfer, packets: packets)
    }

    private static func decodePacket(_ body: inout ByteReader, bytes: [UInt8]) throws(TCGStorageError) -> Packet {
        let tsn = try body.u32("TSN")
        let hsn = try body.u32("HSN")
        let seq = try body.u32("sequence number")
        try body.skip(2, "packet reserved bytes")
        let ackType = try body.u16("AckType")
        let ack = try body.u32("Acknowledgement")
        let length = Int(try body.u32("packet length"))
        guard length <= body.remaining else {
            throw TCGStorageError(.inconsistentLength, at: body.offset - 4,
                                  "packet length \(length) exceeds the \(body.remaining) bytes left")
        }
        var reader = ByteReader(bytes, from: body.offset, end: body.offset + length)
        try body.skip(length, "packet body")
        var subpackets: [SubPacket] = []
        while reader.remaining >= SubPacket.headerSize {
            guard subpackets.count < maximumSubpacketsPerPacket else {
                throw TCGStorageError(.inconsistentLength, at: reader.offset, "too many subpackets")
            }
            try reader.skip(6, "subpacket reserved bytes")
            let kind = try reader.u16("subpacket kind")
            let subLength = Int(try reader.u32("subpacket length"))
            let payload = try reader.take(subLength, "subpacket payload")
            // The last subpacket's padding may be cut by the packet length; tolerate that.
            try reader.skip(min(reader.remaining, (4 - subLength % 4) % 4), "subpacket padding")
            subpackets.append(SubPacket(kind: kind, payload: payload))
        }
        return Packet(tperSessionNumber: tsn, hostSessionNumber: hsn, sequenceNumber: seq,
                      ackType: ackType, acknowledgement: ack, subpackets: subpackets)
    }

    /// The single data payload a method exchange carries, if this ComPacket holds exactly one.
    public var methodPayload: [UInt8]? {
        guard let packet = packets.first, let sub = packet.subpackets.first(where: { $0.kind == 0 }) else { return nil }
        return sub.payload
    }
}
