import Foundation
import SedSimulator
import TCGStorage
import Testing

/// sedsim's Enterprise SSC drive as a minimal host sees it on the wire: Enterprise's session
/// rules, its Authenticate, its methods and columns by name, BandMaster N for band N alone.
@Suite("Simulated Enterprise SSC drive, device side")
struct EnterpriseDriveTests {
    static func drive() throws -> TempArray {
        var settings = DriveSettings()
        settings.ssc = .enterprise
        settings.tryLimit = 3
        return try TempArray(settings: settings, kind: .sas)
    }

    static func name(_ text: String, _ value: TCGValue) -> TCGValue { .named(.bytes(Array(text.utf8)), value) }

    /// Object.Get of the columns `from`…`to` by name (Enterprise's Get).
    static func get(_ object: UID, _ from: String, _ to: String) -> MethodCall {
        MethodCall(invokingUID: object, methodUID: MethodID.enterpriseGet,
                   arguments: [.list([name("startColumn", .bytes(Array(from.utf8))), name("endColumn", .bytes(Array(to.utf8)))])])
    }

    static func authenticate(_ authority: UID, _ pin: [UInt8]) -> MethodCall {
        MethodCall(invokingUID: .thisSP, methodUID: MethodID.enterpriseAuthenticate,
                   arguments: [.uid(authority), name("Challenge", .bytes(pin))])
    }

    /// The MSID, read as Anybody from the Admin SP with Enterprise's Get.
    static func msid(_ t: TempArray) throws -> [UInt8] {
        let (status, tsn) = try t.host.startSession(sp: .adminSP, write: false, hsn: 41)
        #expect(status == .success)
        let reply = try t.host.call(get(.cPinMSID, "PIN", "PIN"), tsn: tsn, hsn: 41)
        guard case .result(let values, .success) = reply, let row = values.first?.listValue?.first?.listValue,
              case .named(_, let pin) = row.first, let bytes = pin.bytesValue else {
            throw TCGStorageError(.truncated, at: 0, "no MSID in \(reply)")
        }
        return bytes
    }

    @Test("StartSession takes no credential (INVALID_PARAMETER), Opal's Locking SP UID is not this drive's; the Enterprise Locking SP opens as Anybody")
    func sessionRules() throws {
        let t = try Self.drive()
        let msid = try Self.msid(t)
        #expect(try t.host.startSession(sp: .enterpriseLockingSP, authority: .bandMaster0, pin: msid, write: true).0 == .invalidParameter)
        #expect(try t.host.startSession(sp: .lockingSP, write: true).0 == .invalidParameter)
        #expect(try t.host.startSession(sp: .enterpriseLockingSP, write: true).0 == .success)
    }

    @Test("Properties: HostProperties is named by its name (Opal's parameter number is INVALID_PARAMETER); a TPer revert may be ThisSP.RevertSP in an Admin SP session, as sedutil sends it")
    func propertiesAndRevertSP() throws {
        let t = try Self.drive()
        let host: TCGValue = .list([Self.name("MaxComPacketSize", .unsigned(4096))])
        let byName = try t.host.call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.properties,
                                                arguments: [Self.name("HostProperties", host)]))
        guard case .call(let answer, .success) = byName else { Issue.record("\(byName)"); return }
        #expect(answer.arguments.last == Self.name("HostProperties", .list([Self.name("MaxComPacketSize", .unsigned(4096))])))
        let byNumber = try t.host.call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.properties,
                                                  arguments: [.name(0, host)]))
        guard case .call(_, let status) = byNumber else { Issue.record("\(byNumber)"); return }
        #expect(status == .invalidParameter)

        let msid = try Self.msid(t)
        let psid = Array(t.drive.statusReport(index: 0).psid.utf8)
        let (_, tsn) = try t.host.startSession(sp: .adminSP, write: true)
        #expect(try t.host.call(Self.authenticate(.psid, psid), tsn: tsn, hsn: 77) == .result([.bool(true)], status: .success))
        try t.host.send(MethodCall(invokingUID: .thisSP, methodUID: MethodID.revertSP).encoded(), tsn: tsn, hsn: 77)
        _ = try t.host.receive()
        #expect(!t.drive.statusReport(index: 0).owned)
        let after = try Self.msid(t)
        #expect(after == msid)
    }

    @Test("Authenticate: the MSID is True for BandMaster0 as manufactured; a wrong PIN is SUCCESS with False and a try spent; TryLimit wrong ones lock the master out")
    func authenticateAndTries() throws {
        let t = try Self.drive()
        let msid = try Self.msid(t)
        let (_, tsn) = try t.host.startSession(sp: .enterpriseLockingSP, write: true)
        #expect(try t.host.call(Self.authenticate(.bandMaster0, Array("wrong".utf8)), tsn: tsn, hsn: 77)
                == .result([.bool(false)], status: .success))
        #expect(t.drive.statusReport(index: 0).totalFailedAuthentications == 1)
        #expect(try t.host.call(Self.authenticate(.bandMaster0, msid), tsn: tsn, hsn: 77) == .result([.bool(true)], status: .success))
        // Its C_PIN row, read as BandMaster0: Tries back to 0, the PIN never shown.
        let row = try t.host.call(Self.get(.cPinBandMaster(0), "PIN", "Tries"), tsn: tsn, hsn: 77)
        guard case .result(let values, .success) = row, let cells = values.first?.listValue?.first?.listValue else { Issue.record("\(row)"); return }
        #expect(!cells.contains { if case .named(let n, _) = $0 { n.bytesValue == Array("PIN".utf8) } else { false } })
        #expect(cells.contains(Self.name("Tries", .unsigned(0))) && cells.contains(Self.name("TryLimit", .unsigned(3))))
        for _ in 0..<3 { _ = try t.host.call(Self.authenticate(.eraseMaster, Array("wrong".utf8)), tsn: tsn, hsn: 77) }
        // Locked out: even the right PIN is refused now.
        #expect(try t.host.call(Self.authenticate(.eraseMaster, msid), tsn: tsn, hsn: 77) != .result([.bool(true)], status: .success))
    }

    @Test("Opal's Get is not an Enterprise method; BandMaster0 cannot set Band1, BandMaster1 can; Anybody reads a band but sets nothing")
    func methodsAndBandAccess() throws {
        let t = try Self.drive()
        let msid = try Self.msid(t)
        let (_, tsn) = try t.host.startSession(sp: .enterpriseLockingSP, write: true)
        let opalGet = MethodCall(invokingUID: .band(1), methodUID: MethodID.get, arguments: [.list([])])
        #expect(try t.host.call(opalGet, tsn: tsn, hsn: 77) == .result([], status: .invalidParameter))
        let readLock = MethodCall(invokingUID: .band(1), methodUID: MethodID.enterpriseSet,
                                  arguments: [.list([]), .list([.list([Self.name("ReadLockEnabled", .bool(true))])])])
        #expect(try t.host.call(readLock, tsn: tsn, hsn: 77) == .result([], status: .notAuthorized))
        let band = try t.host.call(Self.get(.band(1), "ReadLockEnabled", "ReadLockEnabled"), tsn: tsn, hsn: 77)
        #expect(band == .result([.list([.list([Self.name("ReadLockEnabled", .bool(false))])])], status: .success))
        _ = try t.host.call(Self.authenticate(.bandMaster0, msid), tsn: tsn, hsn: 77)
        #expect(try t.host.call(readLock, tsn: tsn, hsn: 77) == .result([], status: .notAuthorized))
        _ = try t.host.call(Self.authenticate(.bandMaster(1), msid), tsn: tsn, hsn: 77)
        #expect(try t.host.call(readLock, tsn: tsn, hsn: 77) == .result([], status: .success))
        #expect(try t.host.call(Self.get(.band(1), "ReadLockEnabled", "ReadLockEnabled"), tsn: tsn, hsn: 77)
                == .result([.list([.list([Self.name("ReadLockEnabled", .bool(true))])])], status: .success))
    }

    @Test("Erase is the EraseMaster's: refused to BandMaster0; by the EraseMaster the band's data is gone and its lock columns False")
    func eraseIsTheEraseMasters() throws {
        let t = try Self.drive()
        let msid = try Self.msid(t)
        let plain = [UInt8](repeating: 0xA5, count: 512)
        try t.drive.write(lba: 2, data: plain)
        let (_, tsn) = try t.host.startSession(sp: .enterpriseLockingSP, write: true)
        let erase = MethodCall(invokingUID: .band(0), methodUID: MethodID.erase)
        _ = try t.host.call(Self.authenticate(.bandMaster0, msid), tsn: tsn, hsn: 77)
        #expect(try t.host.call(erase, tsn: tsn, hsn: 77) == .result([], status: .notAuthorized))
        #expect(try t.drive.read(lba: 2, count: 1) == plain)
        _ = try t.host.call(Self.authenticate(.eraseMaster, msid), tsn: tsn, hsn: 77)
        #expect(try t.host.call(erase, tsn: tsn, hsn: 77) == .result([], status: .success))
        #expect(try t.drive.read(lba: 2, count: 1) != plain)
    }
}
