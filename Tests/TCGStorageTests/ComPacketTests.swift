import Testing
@testable import TCGStorage

@Suite("ComPacket framing")
struct ComPacketTests {
    @Test("lengths cover what follows their headers; subpackets pad to 4")
    func layout() throws {
        let payload: [UInt8] = [0xF8, 0xA8, 1, 2, 3, 4, 5, 6, 7, 8, 0xF9]  // 11 bytes → 1 byte padding
        let packet = ComPacket(comID: 0x1000, packets: [
            Packet(tperSessionNumber: 7, hostSessionNumber: 105, sequenceNumber: 1, subpackets: [SubPacket(payload: payload)]),
        ])
        let bytes = packet.encoded()
        #expect(bytes.count == 20 + 24 + 12 + 12)
        #expect(Array(bytes[4..<6]) == [0x10, 0x00])
        #expect(Array(bytes[16..<20]) == [0, 0, 0, 48])       // ComPacket length
        #expect(Array(bytes[40..<44]) == [0, 0, 0, 24])       // Packet length
        #expect(Array(bytes[52..<56]) == [0, 0, 0, 11])       // SubPacket length excludes padding
        #expect(try ComPacket.decode(bytes) == packet)
        let padded = packet.encoded(padTo: 512)
        #expect(padded.count == 512)
        #expect(try ComPacket.decode(padded) == packet)
    }

    @Test("lying lengths are typed errors, not traps")
    func lies() {
        var bytes = ComPacket(comID: 1, packets: [Packet(subpackets: [SubPacket(payload: [1, 2, 3])])]).encoded()
        bytes[19] = 0xFF
        #expect(throws: TCGStorageError.self) { try ComPacket.decode(bytes) }
        #expect(throws: TCGStorageError.self) { try ComPacket.decode([0, 0, 0]) }
        var packetLie = ComPacket(comID: 1, packets: [Packet(subpackets: [SubPacket(payload: [1, 2, 3])])]).encoded()
        packetLie[43] = 0xF0
        #expect(throws: TCGStorageError.self) { try ComPacket.decode(packetLie) }
    }

    @Test("an empty response (nothing outstanding) decodes to no packets")
    func empty() throws {
        let none = try ComPacket.decode([UInt8](repeating: 0, count: 2048))
        #expect(none.packets.isEmpty && none.outstandingData == 0 && none.methodPayload == nil)
        let busy = try ComPacket.decode(ComPacket(comID: 0x1000, outstandingData: 1).encoded())
        #expect(busy.outstandingData == 1 && busy.minTransfer == 0)
    }
}
