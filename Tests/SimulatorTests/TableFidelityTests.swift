import Foundation
import SimulatorLink
import SedSimulator
import TCGStorage
import Testing

/// What independent Opal hosts read and expect of a drive's tables, methods and session
/// manager (issue 12, items 3–7), spoken in raw ComPackets.
@Suite("Simulated drive: tables, methods and Properties as Opal hosts use them")
struct TableFidelityTests {
    static let adminPIN = Array("admin-one-pin".utf8)

    /// A drive taken over (SID and Admin1 = adminPIN) with a Locking SP session open as `authority`.
    final class Owned {
        let t: TempArray
        var tsn: UInt32 = 0
        let hsn: UInt32

        init(reusing t: TempArray, hsn: UInt32) {
            self.t = t
            self.hsn = hsn
        }

        convenience init(authority: UID? = .lockingAdmin(1), pin: [UInt8]? = TableFidelityTests.adminPIN, write: Bool = true,
                         hsn: UInt32 = 200, kind: DriveKind = .nvme, settings: DriveSettings = DriveSettings()) throws {
            let t = try TempArray(settings: settings, kind: kind)
            self.init(reusing: t, hsn: hsn)
            let msid = try t.host.readMSID()
            let (status, adminTSN) = try t.host.startSession(sp: .adminSP, authority: .sid, pin: msid, write: true, hsn: 10)
            try #require(status == .success)
            _ = try t.host.call(MethodCall(invokingUID: .cPinSID, methodUID: MethodID.set,
                                           arguments: [.name(1, .list([.name(3, .bytes(TableFidelityTests.adminPIN))]))]),
                                tsn: adminTSN, hsn: 10)
            _ = try t.host.call(MethodCall(invokingUID: .lockingSP, methodUID: MethodID.activate), tsn: adminTSN, hsn: 10)
            try t.host.send([ControlToken.endOfSession.rawValue], tsn: adminTSN, hsn: 10)
            _ = try t.host.receive()
            let (opened, tsn) = try t.host.startSession(sp: .lockingSP, authority: authority, pin: pin, write: write, hsn: hsn)
            try #require(opened == .success)
            self.tsn = tsn
        }

        func call(_ object: UID, _ method: UID, _ arguments: [TCGValue] = []) throws -> MethodPayload {
            try t.host.call(MethodCall(invokingUID: object, methodUID: method, arguments: arguments), tsn: tsn, hsn: hsn)
        }

        func get(_ object: UID, columns: ClosedRange<UInt64>? = nil) throws -> MethodPayload {
            let cells: [TCGValue] = columns.map { [.list([.name(3, .unsigned($0.lowerBound)), .name(4, .unsigned($0.upperBound))])] }
                ?? [.list([])]
            return try call(object, MethodID.get, cells)
        }

        func set(_ object: UID, _ values: [TCGValue]) throws -> MethodPayload {
            try call(object, MethodID.set, [.name(1, .list(values))])
        }

        func end() throws {
            try t.host.send([ControlToken.endOfSession.rawValue], tsn: tsn, hsn: hsn)
            _ = try t.host.receive()
        }
    }

    static func columns(_ payload: MethodPayload) -> [UInt64: TCGValue]? {
        guard case .result(let values, .success) = payload, case .list(let items)? = values.first else { return nil }
        var out: [UInt64: TCGValue] = [:]
        for case .named(let name, let value) in items { if let n = name.unsignedValue { out[n] = value } }
        return out
    }

    @Test("whole rows: Locking, LockingInfo, C_PIN, Authority (CommonName), K_AES_256 Mode, the Table table's MBR and DataStore sizes")
    func wholeRows() throws {
        let o = try Owned()
        let range = try #require(Self.columns(try o.get(.lockingRange(1))))
        #expect(Set(range.keys) == Set(0...10))
        #expect(range[1]?.bytesValue == Array("Locking_Range1".utf8) && range[2]?.bytesValue == Array("Locking".utf8))
        #expect(range[0]?.uidValue == .lockingRange(1) && range[10]?.uidValue == .kAES256(range: 1))

        let info = try #require(Self.columns(try o.get(.lockingInfo)))
        #expect(Set(info.keys) == Set(0...10))
        #expect(info[4]?.unsignedValue == 8 && info[8]?.unsignedValue == 512 && info[3]?.unsignedValue == 1)

        let cpin = try #require(Self.columns(try o.get(.cPinUser(1))))
        #expect(cpin[0]?.uidValue == .cPinUser(1) && cpin[1]?.bytesValue == Array("C_PIN_User1".utf8) && cpin[2] != nil)
        #expect(cpin[3] == nil, "the PIN column is never readable")
        #expect(cpin[5]?.unsignedValue == 5)

        let authority = try #require(Self.columns(try o.get(.user(1), columns: 2...2)))
        #expect(authority[2]?.bytesValue == [])
        let admin1 = try #require(Self.columns(try o.get(.lockingAdmin(1))))
        #expect(admin1[1]?.bytesValue == Array("Admin1".utf8) && admin1[5]?.unsignedValue == 1 && admin1[10]?.uidValue == .cPinLockingAdmin(1))

        #expect(Self.columns(try o.get(.kAES256(range: 0), columns: 4...4))?[4]?.unsignedValue == 7)
        #expect(try o.get(.kAES256(range: 0), columns: 3...3) == .result([], status: .notAuthorized))

        let mbr = try #require(Self.columns(try o.get(UID(0x0000_0001_0000_0804), columns: 7...7)))
        #expect(mbr[7]?.unsignedValue == 128 << 20)
        let dataStore = try #require(Self.columns(try o.get(UID(0x0000_0001_0000_1001))))
        #expect(dataStore[7]?.unsignedValue == 10 << 20 && dataStore[4]?.unsignedValue == 2)
        try o.end()
    }

    @Test("what Anybody sees of a row: UID, Name and CommonName, not the Admins' columns")
    func anybodySeesNames() throws {
        let o = try Owned(authority: nil, pin: nil, write: false)
        let range = try #require(Self.columns(try o.get(.lockingRange(1))))
        #expect(Set(range.keys) == [0, 1, 2])
        #expect(try o.get(.lockingRange(1), columns: 3...4) == .result([], status: .notAuthorized))
        #expect(try o.get(.cPinUser(1)) == .result([], status: .notAuthorized))
        #expect(Self.columns(try o.get(.lockingInfo))?[4]?.unsignedValue == 8)
    }

    @Test("spec edges: endColumn past the row, a Boolean of 2, a host-aborted call, the ACL before the parameters")
    func specEdges() throws {
        let o = try Owned()
        #expect(try o.get(.lockingRange(1), columns: 3...20) == .result([], status: .invalidParameter))
        #expect(try o.call(.lockingRange(1), MethodID.get, [.list([.name(3, .unsigned(8)), .name(4, .unsigned(3))])])
                == .result([], status: .invalidParameter))
        #expect(try o.set(.lockingRange(1), [.name(5, .unsigned(2))]) == .result([], status: .invalidParameter))
        #expect(try o.set(.lockingRange(1), [.name(5, .unsigned(1))]) == .result([], status: .success))

        // A call whose status list the host set to non-zero is not executed.
        let aborted = MethodCall(invokingUID: .lockingRange(1), methodUID: MethodID.set,
                                 arguments: [.name(1, .list([.name(6, .unsigned(1))]))])
        var bytes = aborted.encoded()
        let statusAt = bytes.count - 4
        bytes[statusAt] = 0x01
        try o.t.host.send(bytes, tsn: o.tsn, hsn: o.hsn)
        let reply = try MethodPayload.decode(try #require(try o.t.host.receive().methodPayload))
        #expect(reply == .result([], status: .fail))
        #expect(Self.columns(try o.get(.lockingRange(1), columns: 6...6))?[6]?.unsignedValue == 0)
        try o.end()

        // Anybody with a malformed Set: the ACL answers first.
        let anybody = try Owned(authority: nil, pin: nil, write: true, hsn: 300)
        #expect(try anybody.call(.lockingRange(1), MethodID.set, [.unsigned(99)]) == .result([], status: .notAuthorized))
        #expect(try anybody.call(.lockingRange(1), MethodID.get, [.unsigned(99)]) == .result([], status: .invalidParameter))
        #expect(try anybody.get(.kAES256(range: 1)) == .result([], status: .notAuthorized))
    }

    @Test("Next walks a table with and without Where and Count; GetACL names the range ACEs; the read ACE gives a user the range")
    func nextAndGetACL() throws {
        let o = try Owned()
        let authorityTable = UID(0x0000_0009_0000_0000)
        guard case .result(let all, .success) = try o.call(authorityTable, MethodID.next), case .list(let rows)? = all.first else {
            Issue.record("Next failed"); return
        }
        #expect(rows.count == 2 + 4 + 1 + 9 && rows.first?.uidValue == .anybody, "Anybody, Admins, Admin1-4, Users, User1-9")
        guard case .result(let some, .success) = try o.call(authorityTable, MethodID.next,
                                                            [.name(0, .uid(.lockingAdmin(1))), .name(1, .unsigned(2))]),
              case .list(let two)? = some.first else { Issue.record("Next with Where/Count failed"); return }
        #expect(two.map(\.uidValue) == [.lockingAdmin(2), .lockingAdmin(3)])
        #expect(try o.call(authorityTable, MethodID.next, [.name(0, .uid(.sid))]) == .result([], status: .invalidParameter))

        let acl = try o.call(.accessControlTable, MethodID.getACL, [.uid(.lockingRange(1)), .uid(MethodID.set)])
        #expect(acl == .result([.list([.uid(.aceSetReadLocked(range: 1)), .uid(.aceSetWriteLocked(range: 1))])], status: .success))
        let ace = try #require(Self.columns(try o.get(.aceSetReadLocked(range: 1), columns: 3...3)))
        #expect(ace[3]?.listValue == [.named(.bytes(UID.halfUIDAuthorityObjectRef), .uid(.admins))])

        // Give User1 a PIN and the range's read ACE, as the kernel does for a user it adds.
        #expect(try o.set(.cPinUser(1), [.name(3, .bytes(Array("user-pin".utf8)))]) == .result([], status: .success))
        #expect(try o.set(.user(1), [.name(5, .bool(true))]) == .result([], status: .success))
        let expression = TCGValue.list([.named(.bytes(UID.halfUIDAuthorityObjectRef), .uid(.lockingAdmin(1))),
                                        .named(.bytes(UID.halfUIDAuthorityObjectRef), .uid(.user(1))),
                                        .named(.bytes(UID.halfUIDBooleanACE), .unsigned(1))])
        #expect(try o.set(.aceGetRangeStartToActiveKey(range: 1), [.name(3, expression)]) == .result([], status: .success))
        try o.end()
        let user = try Owned.reopen(o.t, authority: .user(1), pin: Array("user-pin".utf8))
        #expect(Self.columns(try user.get(.lockingRange(1), columns: 3...4)) != nil)
        #expect(try user.get(.lockingRange(2), columns: 3...4) == .result([], status: .notAuthorized))
    }

    @Test("DataStore grants: GetACL names ACE_DataStore_Get_All/Set_All; an Admin sets their BooleanExpr to User1, who then reads and writes the DataStore, and the Admins, no longer named, may not; MBRControl's Done by ACE_MBRControl_Set_DoneToDOR, Enable by the Admins only")
    func dataStoreGrants() throws {
        let o = try Owned()
        #expect(try o.call(.accessControlTable, MethodID.getACL, [.uid(.dataStoreTable), .uid(MethodID.get)])
                == .result([.list([.uid(.aceDataStoreGetAll)])], status: .success))
        #expect(try o.call(.accessControlTable, MethodID.getACL, [.uid(.dataStoreTable), .uid(MethodID.set)])
                == .result([.list([.uid(.aceDataStoreSetAll)])], status: .success))
        let preconfigured = try #require(Self.columns(try o.get(.aceDataStoreGetAll, columns: 3...3)))
        #expect(preconfigured[3]?.listValue == [.named(.bytes(UID.halfUIDAuthorityObjectRef), .uid(.admins))])
        let data = Array("written by the admin".utf8)
        #expect(try o.set(.dataStoreTable, []) == .result([], status: .invalidParameter))
        #expect(try o.call(.dataStoreTable, MethodID.set, [.name(0, .unsigned(0)), .name(1, .bytes(data))]) == .result([], status: .success))

        // User1 gets a PIN, is enabled, and is named by both DataStore ACEs and by MBRControl's Done ACE.
        #expect(try o.set(.cPinUser(1), [.name(3, .bytes(Array("user-pin".utf8)))]) == .result([], status: .success))
        #expect(try o.set(.user(1), [.name(5, .bool(true))]) == .result([], status: .success))
        let user1 = TCGValue.list([.named(.bytes(UID.halfUIDAuthorityObjectRef), .uid(.user(1)))])
        for ace in [UID.aceDataStoreGetAll, .aceDataStoreSetAll, .aceMBRControlSetDoneToDOR] {
            #expect(try o.set(ace, [.name(3, user1)]) == .result([], status: .success))
        }
        // An authority the Locking SP does not have is not a grant.
        let stranger = TCGValue.list([.named(.bytes(UID.halfUIDAuthorityObjectRef), .uid(.sid))])
        #expect(try o.set(.aceDataStoreGetAll, [.name(3, stranger)]) == .result([], status: .invalidParameter))
        // Replaced, not added to: the Admins are named no more.
        let read = [TCGValue.list([.name(1, .unsigned(0)), .name(2, .unsigned(UInt64(data.count - 1)))])]
        #expect(try o.call(.dataStoreTable, MethodID.get, read) == .result([], status: .notAuthorized))
        try o.end()

        let user = try Owned.reopen(o.t, authority: .user(1), pin: Array("user-pin".utf8))
        #expect(try user.call(.dataStoreTable, MethodID.get, read) == .result([.bytes(data)], status: .success))
        let mine = Array("the user's own".utf8)
        #expect(try user.call(.dataStoreTable, MethodID.set, [.name(0, .unsigned(64)), .name(1, .bytes(mine))]) == .result([], status: .success))
        #expect(try user.set(.mbrControl, [.name(2, .bool(true))]) == .result([], status: .success))
        #expect(try user.set(.mbrControl, [.name(1, .bool(true))]) == .result([], status: .notAuthorized))
        try user.end()
        // The Admins still read the grants (ACE rows are theirs), and see User1 named.
        let admin = try Owned.reopen(o.t, authority: .lockingAdmin(1), pin: Self.adminPIN, hsn: 500)
        #expect(try #require(Self.columns(try admin.get(.aceDataStoreSetAll, columns: 3...3)))[3]?.listValue == user1.listValue)
        #expect(try admin.call(.dataStoreTable, MethodID.get, [TCGValue.list([.name(1, .unsigned(64)), .name(2, .unsigned(UInt64(63 + mine.count)))])])
                == .result([], status: .notAuthorized))
        try admin.end()
    }

    @Test("Random answers the count asked up to 256 bytes and refuses more; no transactions are advertised")
    func randomAndProperties() throws {
        let o = try Owned()
        guard case .result(let values, .success) = try o.call(.thisSP, MethodID.random, [.unsigned(48)]) else {
            Issue.record("Random failed"); return
        }
        #expect(values.first?.bytesValue?.count == 48)
        #expect(try o.call(.thisSP, MethodID.random, [.unsigned(300)]) == .result([], status: .invalidParameter))
        try o.end()
        let properties = try o.t.host.call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.properties))
        guard case .call(let answer, .success) = properties else { Issue.record("Properties failed"); return }
        #expect(answer.arguments.first?.listValue?.contains(.named(.bytes(Array("MaxTransactionLimit".utf8)), .unsigned(0))) == true)
    }

    @Test("StartSession's SessionTimeout must lie within MinSessionTimeout…MaxSessionTimeout (found by the fuzzer: a huge one trapped)",
          arguments: [(UInt64(1) << 63, MethodStatus.invalidParameter), (500, .invalidParameter), (3_600_001, .invalidParameter),
                      (5000, .success), (3_600_000, .success)])
    func sessionTimeoutBounds(milliseconds: UInt64, expected: MethodStatus) throws {
        let t = try TempArray()
        let reply = try t.host.call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.startSession, arguments: [
            .unsigned(5), .uid(.adminSP), .bool(false), .name(Column.StartSession.sessionTimeout, .unsigned(milliseconds)),
        ]))
        guard case .call(_, let status) = reply else { Issue.record("no SyncSession: \(reply)"); return }
        #expect(status == expected)
    }

    @Test("ACE_C_PIN_UserN_Set_PIN (Admins OR UserN; only that or Admins may be set) and ACE_K_AES_256_RangeN_GenKey (Admins; an Admin may grant a User): GetACL names them, a User sets its own PIN until the Admins keep it, and rekeys a range once granted")
    func userPINAndGenKeyACEs() throws {
        let o = try Owned()
        #expect(try o.call(.accessControlTable, MethodID.getACL, [.uid(.cPinUser(1)), .uid(MethodID.set)])
                == .result([.list([.uid(.aceCPinUserSetPIN(user: 1))])], status: .success))
        #expect(try o.call(.accessControlTable, MethodID.getACL, [.uid(.kAES256(range: 1)), .uid(MethodID.genKey)])
                == .result([.list([.uid(.aceKAES256GenKey(range: 1))])], status: .success))
        let preconfigured = try #require(Self.columns(try o.get(.aceCPinUserSetPIN(user: 1), columns: 3...3)))
        #expect(preconfigured[3]?.listValue == Self.expression([.admins, .user(1)]).listValue)
        #expect(try o.set(.cPinUser(1), [.name(3, .bytes(Array("user-pin".utf8)))]) == .result([], status: .success))
        #expect(try o.set(.user(1), [.name(5, .bool(true))]) == .result([], status: .success))
        // "User1" alone is not a value this ACE takes.
        #expect(try o.set(.aceCPinUserSetPIN(user: 1), [.name(3, Self.expression([.user(1)]))]) == .result([], status: .invalidParameter))
        try o.end()

        var user = try Owned.reopen(o.t, authority: .user(1), pin: Array("user-pin".utf8))
        #expect(try user.set(.cPinUser(1), [.name(3, .bytes(Array("user-pin-2".utf8)))]) == .result([], status: .success))
        #expect(try user.call(.kAES256(range: 1), MethodID.genKey) == .result([], status: .notAuthorized))
        try user.end()

        let admin = try Owned.reopen(o.t, authority: .lockingAdmin(1), pin: Self.adminPIN, hsn: 500)
        #expect(try admin.set(.aceCPinUserSetPIN(user: 1), [.name(3, Self.expression([.admins]))]) == .result([], status: .success))
        #expect(try admin.set(.aceKAES256GenKey(range: 1), [.name(3, Self.expression([.user(1)]))]) == .result([], status: .success))
        try admin.end()

        user = try Owned.reopen(o.t, authority: .user(1), pin: Array("user-pin-2".utf8), hsn: 600)
        #expect(try user.set(.cPinUser(1), [.name(3, .bytes(Array("user-pin-3".utf8)))]) == .result([], status: .notAuthorized))
        let before = o.t.drive.statusReport(index: 0).ranges[1].keyGeneration
        #expect(try user.call(.kAES256(range: 1), MethodID.genKey) == .result([], status: .success))
        #expect(o.t.drive.statusReport(index: 0).ranges[1].keyGeneration == before + 1)
        try user.end()
    }

    /// An ACE BooleanExpr naming `authorities`, joined by OR as hosts write it (the drive's own encoder).
    static func expression(_ authorities: [UID]) -> TCGValue { SimulatedDrive.booleanExpression(authorities) }

    @Test("quirk host-packet-size-unenforced: a host that sent no Properties gets answers up to the drive's own buffer (a 1,500-byte MBR read); once it has sent Properties, what it said holds")
    func hostPacketSizeUnenforced() throws {
        var settings = DriveSettings()
        settings.quirks = [.hostPacketSizeUnenforced]
        let o = try Owned(settings: settings)
        let bytes = [UInt8](repeating: 0x3C, count: 1500)
        #expect(try o.call(.mbrTable, MethodID.set, [.name(0, .unsigned(0)), .name(1, .bytes(bytes))]) == .result([], status: .success))
        let read = { try o.call(.mbrTable, MethodID.get, [.list([.name(1, .unsigned(0)), .name(2, .unsigned(1499))])]) }
        #expect(try read() == .result([.bytes(bytes)], status: .success))
        _ = try o.t.host.call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.properties, arguments: [
            .name(0, .list([.named(.bytes(Array("MaxComPacketSize".utf8)), .unsigned(1024))])),
        ]))
        #expect(try read() == .result([], status: .responseOverflow))
    }

    @Test("Properties: the host's MaxComPacketSize is honoured (RESPONSE_OVERFLOW beyond it) and the answer is what the TPer will use")
    func hostMaxComPacketSize() throws {
        let o = try Owned()
        // Load 2,000 bytes into the MBR table, then read them back without Properties: Core's 1,024 applies.
        #expect(try o.call(.mbrTable, MethodID.set, [.name(0, .unsigned(0)), .name(1, .bytes([UInt8](repeating: 0x5A, count: 2000)))])
                == .result([], status: .success))
        let read = { try o.call(.mbrTable, MethodID.get, [.list([.name(1, .unsigned(0)), .name(2, .unsigned(1999))])]) }
        #expect(try read() == .result([], status: .responseOverflow))

        let offer = { (size: UInt64) -> MethodPayload in
            try o.t.host.call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.properties, arguments: [
                .name(0, .list([.named(.bytes(Array("MaxComPacketSize".utf8)), .unsigned(size)),
                                .named(.bytes(Array("MaxPacketSize".utf8)), .unsigned(size - 20)),
                                .named(.bytes(Array("AckNak".utf8)), .unsigned(1))])),
            ]))
        }
        guard case .call(let small, .success) = try offer(100), case .named(_, let hostSmall)? = small.arguments.dropFirst().first else {
            Issue.record("Properties without host answer"); return
        }
        #expect(hostSmall.field(0) == nil)
        #expect(hostSmall.listValue?.contains(.named(.bytes(Array("MaxComPacketSize".utf8)), .unsigned(1024))) == true)
        #expect(hostSmall.listValue?.contains(.named(.bytes(Array("AckNak".utf8)), .unsigned(0))) == true)

        guard case .call(let large, .success) = try offer(4096), case .named(_, let hostLarge)? = large.arguments.dropFirst().first else {
            Issue.record("Properties without host answer"); return
        }
        #expect(hostLarge.listValue?.contains(.named(.bytes(Array("MaxComPacketSize".utf8)), .unsigned(4096))) == true)
        try o.t.host.send(MethodCall(invokingUID: .mbrTable, methodUID: MethodID.get,
                                     arguments: [.list([.name(1, .unsigned(0)), .name(2, .unsigned(1999))])]).encoded(),
                          tsn: o.tsn, hsn: o.hsn)
        let answer = try #require(try o.t.host.receive(4096).methodPayload)
        guard case .result(let values, .success) = try MethodPayload.decode(answer) else {
            Issue.record("2,000-byte read refused after Properties"); return
        }
        #expect(values.first?.bytesValue == [UInt8](repeating: 0x5A, count: 2000))
        try o.end()
    }

    @Test("TPerInfo: TPER_RESET only once SID enabled ProgrammaticResetEnable, also as ATA TRUSTED NON-DATA; certificate data is empty")
    func tperResetAndNonData() throws {
        let o = try Owned(kind: .sata)
        #expect(try o.set(.lockingRange(0), [.name(5, .bool(true)), .name(7, .bool(false)),
                                             .name(9, .list([.unsigned(0), .unsigned(3)]))]) == .result([], status: .success))
        try o.end()
        // TRUSTED NON-DATA, send (LBA bit 24 = 0), protocol 2, ComID 4: TPER_RESET.
        let nonData: [UInt8] = [0xA1, 3 << 1, 0x00, 0x02, 0, 0, 0x04, 0x00, 0x00, 0x5B, 0, 0]
        let refused = try Self.scsi(o.t, nonData)
        #expect(refused.status == 2, "TPER_RESET is aborted while ProgrammaticResetEnable is False")

        let (status, tsn) = try o.t.host.startSession(sp: .adminSP, authority: .sid, pin: Self.adminPIN, write: true, hsn: 11)
        try #require(status == .success)
        let tperInfo = try o.t.host.call(MethodCall(invokingUID: .tperInfo, methodUID: MethodID.get, arguments: [.list([])]),
                                         tsn: tsn, hsn: 11)
        #expect(Self.columns(tperInfo)?[8]?.unsignedValue == 0 && Self.columns(tperInfo)?[7] != nil)
        #expect(try o.t.host.call(MethodCall(invokingUID: .tperInfo, methodUID: MethodID.set,
                                             arguments: [.name(1, .list([.name(8, .bool(true))]))]), tsn: tsn, hsn: 11)
                == .result([], status: .success))
        try o.t.host.send([ControlToken.endOfSession.rawValue], tsn: tsn, hsn: 11)
        _ = try o.t.host.receive()

        let reset = try Self.scsi(o.t, nonData)
        #expect(reset.status == 0)
        let after = try Owned.reopen(o.t, authority: .lockingAdmin(1), pin: Self.adminPIN)
        #expect(Self.columns(try after.get(.lockingRange(0), columns: 7...7))?[7]?.unsignedValue == 1, "the programmatic reset locked the range")
        try after.end()

        let certificate = try o.t.drive.securityProtocolIn(protocolID: 0, spSpecific: 1, allocationLength: 512)
        #expect(Array(certificate.prefix(4)) == [0, 0, 0, 0])
    }

    static func scsi(_ array: TempArray, _ cdb: [UInt8]) throws -> LinkSCSIResult {
        let response = array.array.handle(LinkSCSICommand(cdb: cdb, dataOut: [], dataInLength: 0).request(drive: 0))
        return try LinkSCSIResult.decode(response.payload)
    }
}

extension TableFidelityTests.Owned {
    /// A new session on a drive already taken over.
    static func reopen(_ t: TempArray, authority: UID, pin: [UInt8], hsn: UInt32 = 400) throws -> TableFidelityTests.Owned {
        let owned = TableFidelityTests.Owned(reusing: t, hsn: hsn)
        let (opened, tsn) = try t.host.startSession(sp: .lockingSP, authority: authority, pin: pin, write: true, hsn: hsn)
        try #require(opened == .success)
        owned.tsn = tsn
        return owned
    }
}
