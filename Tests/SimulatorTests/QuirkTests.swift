import Foundation
import SedSimulator
import TCGStorage
import Testing

/// Drive personalities (issue 12, item 9): strict by default, and each named quirk tolerating
/// what some real firmware tolerates.
@Suite("Simulated drive: strict by default, quirks on request")
struct QuirkTests {
    static func drive(_ quirks: [DriveQuirk]) throws -> TempArray {
        var settings = DriveSettings()
        settings.quirks = quirks
        return try TempArray(settings: settings)
    }

    /// Sends `payload` on `comID` and decodes the answer taken from the same ComID.
    static func exchange(_ t: TempArray, comID: UInt16 = 0x1000, tsn: UInt32, hsn: UInt32, _ payload: [UInt8]) throws
        -> (ComPacket, [UInt8]?) {
        let packet = ComPacket(comID: comID, packets: [
            Packet(tperSessionNumber: tsn, hostSessionNumber: hsn, subpackets: [SubPacket(payload: payload)]),
        ]).encoded(padTo: 512)
        try t.drive.securityProtocolOut(protocolID: 1, spSpecific: comID, payload: packet)
        let answer = try ComPacket.decode(t.drive.securityProtocolIn(protocolID: 1, spSpecific: comID, allocationLength: 2048))
        return (answer, answer.methodPayload)
    }

    static func startSession(hsn: UInt32) -> [UInt8] {
        MethodCall(invokingUID: .sessionManager, methodUID: MethodID.startSession,
                   arguments: [.unsigned(UInt64(hsn)), .uid(.adminSP), .bool(false)]).encoded()
    }

    static let getMSID = MethodCall(invokingUID: .cPinMSID, methodUID: MethodID.get,
                                    arguments: [.list([.name(3, .unsigned(3)), .name(4, .unsigned(3))])])

    @Test("a Session Manager call with HSN ≠ 0 and TSN = 0: CloseSession from a strict drive, a session with session-manager-any-hsn")
    func sessionManagerHSN() throws {
        let strict = try Self.drive([])
        let refused = try Self.exchange(strict, tsn: 0, hsn: 9, Self.startSession(hsn: 9)).1.map { try MethodPayload.decode($0) }
        guard case .call(let close, _)? = refused else { Issue.record("no answer"); return }
        #expect(close.methodUID == MethodID.closeSession)

        let tolerant = try Self.drive([.sessionManagerAnyHSN])
        let accepted = try Self.exchange(tolerant, tsn: 0, hsn: 9, Self.startSession(hsn: 9)).1.map { try MethodPayload.decode($0) }
        guard case .call(let sync, .success)? = accepted else { Issue.record("no SyncSession"); return }
        #expect(sync.methodUID == MethodID.syncSession)
    }

    @Test("a method and EndOfSession in one subpacket: INVALID_PARAMETER from a strict drive (session kept); executed then closed with method-then-end-of-session")
    func methodThenEndOfSession() throws {
        let combined = Self.getMSID.encoded() + [ControlToken.endOfSession.rawValue]

        let strict = try Self.drive([])
        let (status, tsn) = try strict.host.startSession(sp: .adminSP, write: false, hsn: 5)
        #expect(status == .success)
        #expect(try Self.exchange(strict, tsn: tsn, hsn: 5, combined).1.map { try MethodPayload.decode($0) }
                == .result([], status: .invalidParameter))
        guard case .result(_, .success)? = try Self.exchange(strict, tsn: tsn, hsn: 5, Self.getMSID.encoded()).1
            .map({ try MethodPayload.decode($0) }) else { Issue.record("the strict drive closed the session"); return }

        let tolerant = try Self.drive([.methodThenEndOfSession])
        let (opened, tolerantTSN) = try tolerant.host.startSession(sp: .adminSP, write: false, hsn: 6)
        #expect(opened == .success)
        let answer = try #require(try Self.exchange(tolerant, tsn: tolerantTSN, hsn: 6, combined).1)
        #expect(MethodPayload.endsWithEndOfSession(answer), "the results, then EndOfSession")
        guard case .result(let values, .success) = try MethodPayload.decode(Array(answer.dropLast())) else {
            Issue.record("the method was not executed"); return
        }
        #expect(values.first?.field(3)?.bytesValue?.count == 32)
        let after = try Self.exchange(tolerant, tsn: tolerantTSN, hsn: 6, Self.getMSID.encoded()).1.map { try MethodPayload.decode($0) }
        guard case .call(let close, _)? = after else { Issue.record("the session is still open"); return }
        #expect(close.methodUID == MethodID.closeSession)
    }

    @Test("two-comids: Level 0 announces 2, each ComID answers on itself, a session belongs to its ComID; strict drives refuse 0x1001")
    func twoComIDs() throws {
        let strict = try Self.drive([])
        #expect(throws: SimulatedDrive.SecurityCommandError.self) {
            try strict.drive.securityProtocolOut(protocolID: 1, spSpecific: 0x1001, payload: [UInt8](repeating: 0, count: 512))
        }
        let ssc = { (t: TempArray) throws -> SSCFeature? in
            try Level0Discovery.decode(t.drive.securityProtocolIn(protocolID: 1, spSpecific: 1, allocationLength: 2048))
                .features.compactMap { if case .ssc(let f) = $0 { return f } else { return nil } }.first
        }
        #expect(try ssc(strict)?.numberOfComIDs == 1)

        let two = try Self.drive([.twoComIDs])
        #expect(try ssc(two)?.numberOfComIDs == 2)
        let (packet, payload) = try Self.exchange(two, comID: 0x1001, tsn: 0, hsn: 0, Self.startSession(hsn: 7))
        #expect(packet.comID == 0x1001)
        guard case .call(let sync, .success)? = try payload.map({ try MethodPayload.decode($0) }), sync.methodUID == MethodID.syncSession,
              let tsn = sync.arguments.dropFirst().first?.unsignedValue else { Issue.record("no session on 0x1001"); return }
        // The other ComID has nothing waiting, and does not know the session.
        #expect(try ComPacket.decode(two.drive.securityProtocolIn(protocolID: 1, spSpecific: 0x1000, allocationLength: 512)).packets.isEmpty)
        let elsewhere = try Self.exchange(two, comID: 0x1000, tsn: UInt32(tsn), hsn: 7, Self.getMSID.encoded()).1
            .map { try MethodPayload.decode($0) }
        guard case .call(let close, _)? = elsewhere else { Issue.record("a session answered on the wrong ComID"); return }
        #expect(close.methodUID == MethodID.closeSession)
        guard case .result(_, .success)? = try Self.exchange(two, comID: 0x1001, tsn: UInt32(tsn), hsn: 7, Self.getMSID.encoded()).1
            .map({ try MethodPayload.decode($0) }) else { Issue.record("the session failed on its own ComID"); return }
    }
}

extension MethodPayload {
    /// Whether a subpacket payload ends with the EndOfSession token (padding aside).
    static func endsWithEndOfSession(_ bytes: [UInt8]) -> Bool {
        bytes.reversed().first { $0 != 0 } == ControlToken.endOfSession.rawValue
    }
}
