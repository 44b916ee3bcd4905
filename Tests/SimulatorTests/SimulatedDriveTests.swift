import Foundation
import SedSimulator
import SimulatorLink
import TCGStorage
import TestSupport
import Testing

@Suite("Simulated drive, device side")
struct SimulatedDriveTests {
    @Test("media is AES-256-XTS under the range key with the LBA as tweak (checked with Python's cryptography)")
    func xtsMatchesOpenSSL() throws {
        let t = try TempArray()
        let plain = (0..<512).map { UInt8($0 % 251) }
        try t.drive.write(lba: 9, data: plain)
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: t.stateFile)) as? [String: Any]
        let ranges = try #require(state?["ranges"] as? [[String: Any]])
        let encodedKey = try #require(ranges[0]["openMediaKey"] as? String)
        let key = try #require(Data(base64Encoded: encodedKey))
        let media = try Data(contentsOf: t.directory.appendingPathComponent("drive-0/media.img"))
        let stored = media.subdata(in: (9 * 512)..<(10 * 512))
        // An independent implementation: Python's cryptography (OpenSSL underneath, but not our code path).
        let script = """
        import sys
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        key = bytes.fromhex(sys.argv[1])
        tweak = (9).to_bytes(16, "little")
        enc = Cipher(algorithms.AES(key), modes.XTS(tweak)).encryptor()
        sys.stdout.buffer.write(enc.update(sys.stdin.buffer.read()) + enc.finalize())
        """
        let expected = try ProcessRunner.run("/usr/bin/env", ["python3", "-c", script, key.map { String(format: "%02x", $0) }.joined()],
                                             stdin: Data(plain)).stdout
        #expect(expected.count == 512 && stored == expected)
        #expect(try t.drive.read(lba: 9, count: 1) == plain)
    }

    @Test("Anybody reads MSID and the life cycle, but not the SID's tries")
    func anybodyACL() throws {
        let t = try TempArray()
        let (status, tsn) = try t.host.startSession(sp: .adminSP, write: false)
        #expect(status == .success)
        let get: ([TCGValue]) -> MethodCall = { MethodCall(invokingUID: .cPinMSID, methodUID: MethodID.get, arguments: $0) }
        let msid = try t.host.call(get([.list([.name(3, .unsigned(3)), .name(4, .unsigned(3))])]), tsn: tsn, hsn: 77)
        guard case .result(let values, .success) = msid else { Issue.record("MSID get failed: \(msid)"); return }
        #expect(values.first?.field(3)?.bytesValue?.count == 32)
        let tries = try t.host.call(MethodCall(invokingUID: .cPinSID, methodUID: MethodID.get,
                                               arguments: [.list([.name(3, .unsigned(5)), .name(4, .unsigned(6))])]), tsn: tsn, hsn: 77)
        #expect(tries == .result([], status: .notAuthorized))
        let set = try t.host.call(MethodCall(invokingUID: .cPinSID, methodUID: MethodID.set,
                                             arguments: [.name(1, .list([.name(3, .bytes([1]))]))]), tsn: tsn, hsn: 77)
        #expect(set == .result([], status: .notAuthorized))
        #expect(try t.host.call(MethodCall(invokingUID: .lockingSP, methodUID: MethodID.get,
                                           arguments: [.list([.name(3, .unsigned(6)), .name(4, .unsigned(6))])]), tsn: tsn, hsn: 77)
                == .result([.list([.name(6, .unsigned(8))])], status: .success))
    }

    @Test("Activate in the MSID session that just set C_PIN_SID gives Admin1 the new SID PIN, never the MSID")
    func activateHandsAdmin1TheCurrentSIDPIN() throws {
        let t = try TempArray()
        let msid = try t.host.readMSID()
        let newSID = Array("the-new-sid-pin".utf8)
        let (status, tsn) = try t.host.startSession(sp: .adminSP, authority: .sid, pin: msid, write: true)
        #expect(status == .success)
        let set = try t.host.call(MethodCall(invokingUID: .cPinSID, methodUID: MethodID.set,
                                             arguments: [.name(1, .list([.name(3, .bytes(newSID))]))]), tsn: tsn, hsn: 77)
        #expect(set == .result([], status: .success))
        let activate = try t.host.call(MethodCall(invokingUID: .lockingSP, methodUID: MethodID.activate), tsn: tsn, hsn: 77)
        #expect(activate == .result([], status: .success))
        try t.host.send([ControlToken.endOfSession.rawValue], tsn: tsn, hsn: 77)
        _ = try t.host.receive()
        // Anybody can read the MSID, so Admin1 = MSID would leave the Locking SP open to everyone.
        #expect(try t.host.startSession(sp: .lockingSP, authority: .lockingAdmin(1), pin: msid, write: false, hsn: 78).0
                == .notAuthorized)
        #expect(try t.host.startSession(sp: .lockingSP, authority: .lockingAdmin(1), pin: newSID, write: false, hsn: 79).0
                == .success)
    }

    @Test("no sessions to a Manufactured-Inactive Locking SP; one read-write session per SP")
    func sessionRules() throws {
        let t = try TempArray()
        #expect(try t.host.startSession(sp: .lockingSP, write: false).0 == .invalidParameter)
        let (first, _) = try t.host.startSession(sp: .adminSP, write: true, hsn: 1)
        #expect(first == .success)
        #expect(try t.host.startSession(sp: .adminSP, write: true, hsn: 2).0 == .spBusy)
        #expect(try t.host.startSession(sp: .adminSP, write: false, hsn: 3).0 == .success)
    }

    @Test("an abandoned session expires after the session timeout")
    func sessionTimeout() throws {
        var settings = DriveSettings()
        settings.sessionTimeoutSeconds = 1
        let t = try TempArray(settings: settings)
        #expect(try t.host.startSession(sp: .adminSP, write: true, hsn: 1).0 == .success)
        #expect(try t.host.startSession(sp: .adminSP, write: true, hsn: 2).0 == .spBusy)
        Thread.sleep(forTimeInterval: 1.2)
        #expect(try t.host.startSession(sp: .adminSP, write: true, hsn: 3).0 == .success)
    }

    @Test("garbage gets no response; the protocol list and wrong ComIDs behave as on hardware")
    func badInput() throws {
        let t = try TempArray()
        try t.drive.securityProtocolOut(protocolID: 1, spSpecific: 0x1000, payload: [1, 2, 3])
        #expect(try t.host.receive().packets.isEmpty)
        let protocols = try t.drive.securityProtocolIn(protocolID: 0, spSpecific: 0, allocationLength: 512)
        #expect(Array(protocols[6..<11]) == [0, 3, 0, 1, 2])
        #expect(throws: SimulatedDrive.SecurityCommandError.self) {
            try t.drive.securityProtocolOut(protocolID: 1, spSpecific: 0x2222, payload: [0])
        }
        #expect(throws: SimulatedDrive.SecurityCommandError.self) {
            _ = try t.drive.securityProtocolIn(protocolID: 0xEE, spSpecific: 0, allocationLength: 512)
        }
    }

    @Test("a response larger than the host buffer is announced with OutstandingData and MinTransfer")
    func largeResponse() throws {
        let t = try TempArray()
        let (status, tsn) = try t.host.startSession(sp: .adminSP, write: false)
        #expect(status == .success)
        // Properties' answer fits, so use Get on MSID with a tiny buffer instead.
        try t.host.send(MethodCall(invokingUID: .cPinMSID, methodUID: MethodID.get,
                                   arguments: [.list([.name(3, .unsigned(3)), .name(4, .unsigned(3))])]).encoded(), tsn: tsn, hsn: 77)
        let header = try t.host.receive(40)
        #expect(header.packets.isEmpty && header.outstandingData > 40 && header.minTransfer == header.outstandingData)
        let full = try t.host.receive(Int(header.minTransfer))
        #expect(full.methodPayload != nil)
    }

    @Test("state on disk holds no PIN and no key of a range that is locked at power-on")
    func noClearSecretsAtRest() throws {
        let t = try TempArray()
        let state = try String(contentsOf: t.stateFile, encoding: .utf8)
        let msid = t.drive.statusReport(index: 0).psid
        #expect(state.contains(msid))  // the PSID is printed on the label and kept; it is not a secret of the owner
        #expect(!state.contains("\"pin\""))
    }

    @Test("a corrupt state file is a clear error, not a crash")
    func corruptState() throws {
        let t = try TempArray()
        try Data("{ not json".utf8).write(to: t.stateFile)
        #expect(throws: SimulatorError.self) { _ = try SimulatedArray(directory: t.directory) }
    }

    @Test("link messages round-trip and reject garbage")
    func linkCodec() throws {
        let request = LinkRequest(.securityProtocolIn, drive: 3, protocolID: 1, spSpecific: 0x1000, length: 2048, lba: 7, payload: [1, 2])
        #expect(try LinkRequest.decode(request.encoded()) == request)
        #expect(throws: LinkError.self) { try LinkRequest.decode([1, 2, 3]) }
        #expect(throws: LinkError.self) { try LinkRequest.decode([0xEE] + [UInt8](repeating: 0, count: 20)) }
        #expect(throws: LinkError.self) { try LinkResponse.decode([]) }
        #expect(throws: LinkError.self) { try LinkResponse.decode([0x77]) }
        // Every byte the header does not define is refused (the operations come from a C enum).
        for byte in UInt8.min...UInt8.max where LinkOperation.known.allSatisfy({ $0.rawValue != byte }) {
            #expect(throws: LinkError.self) { try LinkRequest.decode([byte] + [UInt8](repeating: 0, count: 20)) }
        }
        #expect(LinkOperation.known.count == 13 && Set(LinkOperation.known.map(\.rawValue)) == Set(1...13))
    }
}
