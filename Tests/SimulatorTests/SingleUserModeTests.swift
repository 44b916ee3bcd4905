import Foundation
import SedSimulator
import TCGStorage
import Testing

/// Single User Mode as the simulated drive models it (issue 12, item 8), in raw ComPackets.
@Suite("Simulated drive: Single User Mode")
struct SingleUserModeTests {
    static let sidPIN = Array("sid-and-admin".utf8)

    /// A new drive taken over and activated with `parameters` (SUM selection, policy …);
    /// returns the drive and Activate's status.
    static func activated(_ parameters: [TCGValue]) throws -> (TempArray, MethodStatus) {
        let t = try TempArray()
        let msid = try t.host.readMSID()
        let (status, tsn) = try t.host.startSession(sp: .adminSP, authority: .sid, pin: msid, write: true, hsn: 10)
        try #require(status == .success)
        _ = try t.host.call(MethodCall(invokingUID: .cPinSID, methodUID: MethodID.set,
                                       arguments: [.name(1, .list([.name(3, .bytes(sidPIN))]))]), tsn: tsn, hsn: 10)
        let reply = try t.host.call(MethodCall(invokingUID: .lockingSP, methodUID: MethodID.activate, arguments: parameters),
                                    tsn: tsn, hsn: 10)
        try t.host.send([ControlToken.endOfSession.rawValue], tsn: tsn, hsn: 10)
        _ = try t.host.receive()
        guard case .result(_, let activate) = reply else { return (t, .fail) }
        return (t, activate)
    }

    static func selection(_ ranges: [UID]) -> TCGValue { .name(0x06_0000, .list(ranges.map { .uid($0) })) }

    static func session(_ t: TempArray, _ authority: UID, _ pin: [UInt8], hsn: UInt32) throws -> TableFidelityTests.Owned {
        try TableFidelityTests.Owned.reopen(t, authority: authority, pin: pin, hsn: hsn)
    }

    @Test("Activate hands range 1 to User2: enabled with an empty PIN; Level 0 says Any; Admin1 may read but not lock, rekey or set the user's PIN")
    func rangeBelongsToItsUser() throws {
        let (t, status) = try Self.activated([Self.selection([.lockingRange(1)])])
        #expect(status == .success)
        let feature = try Level0Discovery.decode(t.drive.securityProtocolIn(protocolID: 1, spSpecific: 1, allocationLength: 2048))
            .features.compactMap { if case .singleUser(let f) = $0 { return f } else { return nil } }.first
        #expect(feature?.any == true && feature?.all == false && feature?.policy == false && feature?.lockingObjects == 9)

        let admin = try Self.session(t, .lockingAdmin(1), Self.sidPIN, hsn: 20)
        #expect(TableFidelityTests.columns(try admin.get(.lockingRange(1), columns: 3...8)) != nil, "the Admins still read the range")
        #expect(try admin.set(.lockingRange(1), [.name(7, .bool(true))]) == .result([], status: .notAuthorized))
        #expect(try admin.set(.lockingRange(1), [.name(5, .bool(true))]) == .result([], status: .notAuthorized))
        #expect(try admin.set(.cPinUser(2), [.name(3, .bytes(Array("taken".utf8)))]) == .result([], status: .notAuthorized))
        #expect(try admin.call(.kAES256(range: 1), MethodID.genKey) == .result([], status: .notAuthorized))
        #expect(try admin.set(.user(2), [.name(5, .bool(false))]) == .result([], status: .notAuthorized))
        // Range 2 is not a SUM range: the Admins keep it.
        #expect(try admin.set(.lockingRange(2), [.name(5, .bool(true))]) == .result([], status: .success))
        try admin.end()

        let user = try Self.session(t, .user(2), [], hsn: 21)
        #expect(try user.set(.lockingRange(1), [.name(3, .unsigned(2048)), .name(4, .unsigned(2048)),
                                                .name(5, .bool(true)), .name(6, .bool(true)), .name(7, .bool(true))])
                == .result([], status: .success), "without a policy the user sets the bounds too")
        #expect(try user.call(.kAES256(range: 1), MethodID.genKey) == .result([], status: .success))
        #expect(try user.set(.cPinUser(2), [.name(3, .bytes(Array("user-two".utf8)))]) == .result([], status: .success))
        #expect(try user.set(.lockingRange(2), [.name(7, .bool(true))]) == .result([], status: .notAuthorized))
        try user.end()
        #expect(try t.host.startSession(sp: .lockingSP, authority: .user(2), pin: [], write: false, hsn: 22).0 == .notAuthorized)
    }

    @Test("Erase by Admin1 takes a range back: new key, locking off, the user's PIN empty again; Erase on a normal range is refused")
    func eraseTakesTheRangeBack() throws {
        let (t, _) = try Self.activated([Self.selection([.lockingRange(1)])])
        let user = try Self.session(t, .user(2), [], hsn: 30)
        _ = try user.set(.lockingRange(1), [.name(3, .unsigned(2048)), .name(4, .unsigned(2048)),
                                            .name(5, .bool(true)), .name(6, .bool(true)), .name(7, .bool(true)), .name(8, .bool(true))])
        _ = try user.set(.cPinUser(2), [.name(3, .bytes(Array("forgotten".utf8)))])
        try user.end()
        let before = t.drive.statusReport(index: 0).ranges[1].keyGeneration

        let admin = try Self.session(t, .lockingAdmin(1), Self.sidPIN, hsn: 31)
        #expect(try admin.call(.lockingRange(1), MethodID.erase) == .result([], status: .success))
        #expect(try admin.call(.lockingRange(2), MethodID.erase) == .result([], status: .notAuthorized))
        let range = try #require(TableFidelityTests.columns(try admin.get(.lockingRange(1), columns: 5...8)))
        #expect(range.values.allSatisfy { $0.unsignedValue == 0 })
        try admin.end()
        #expect(t.drive.statusReport(index: 0).ranges[1].keyGeneration == before + 1)
        #expect(try t.host.startSession(sp: .lockingSP, authority: .user(2), pin: [], write: false, hsn: 32).0 == .success)
    }

    @Test("the range policy: Admins set a SUM range's bounds, its user cannot; the whole Locking table selects every range")
    func policyAndAll() throws {
        let (t, status) = try Self.activated([.name(0x06_0000, .uid(UID(0x0000_0802_0000_0000))), .name(0x06_0001, .unsigned(1))])
        #expect(status == .success)
        let feature = try Level0Discovery.decode(t.drive.securityProtocolIn(protocolID: 1, spSpecific: 1, allocationLength: 2048))
            .features.compactMap { if case .singleUser(let f) = $0 { return f } else { return nil } }.first
        #expect(feature?.any == true && feature?.all == true && feature?.policy == true)
        let user = try Self.session(t, .user(4), [], hsn: 40)
        #expect(try user.set(.lockingRange(3), [.name(3, .unsigned(4096))]) == .result([], status: .notAuthorized))
        #expect(try user.set(.lockingRange(3), [.name(5, .bool(true))]) == .result([], status: .success))
        try user.end()
        let admin = try Self.session(t, .lockingAdmin(1), Self.sidPIN, hsn: 41)
        #expect(try admin.set(.lockingRange(3), [.name(3, .unsigned(4096)), .name(4, .unsigned(1024))]) == .result([], status: .success))
        try admin.end()
    }

    @Test("bad selections are refused and nothing is activated", arguments: [
        [TCGValue.name(0x06_0000, .list([.uid(.lockingRange(99))]))],
        [.name(0x06_0000, .list([.uid(.lockingRange(1)), .uid(.lockingRange(1))]))],
        [.name(0x06_0000, .list([.uid(.lockingRange(1))])), .name(0x06_0001, .unsigned(2))],
        [.name(0x06_0009, .unsigned(0))],
    ])
    func badSelections(parameters: [TCGValue]) throws {
        let (t, status) = try Self.activated(parameters)
        #expect(status == .invalidParameter)
        #expect(try t.host.startSession(sp: .lockingSP, authority: .lockingAdmin(1), pin: Self.sidPIN, write: false, hsn: 50).0
                == .invalidParameter, "the Locking SP stays Manufactured-Inactive")
    }

    @Test("Reactivate starts the Locking SP over with a new selection (every range erased, Admin1 kept); refused outside Single User Mode")
    func reactivate() throws {
        let (t, _) = try Self.activated([Self.selection([.lockingRange(1)])])
        let before = t.drive.statusReport(index: 0).ranges.map(\.keyGeneration)
        let admin = try Self.session(t, .lockingAdmin(1), Self.sidPIN, hsn: 60)
        let reply = try admin.call(.thisSP, MethodID.reactivate, [Self.selection([.lockingRange(2)])])
        #expect(reply == .result([], status: .success))
        let after = t.drive.statusReport(index: 0).ranges.map(\.keyGeneration)
        #expect(zip(before, after).allSatisfy { $0 < $1 }, "every range has a new key")
        #expect(try t.host.startSession(sp: .lockingSP, authority: .user(3), pin: [], write: false, hsn: 61).0 == .success)
        #expect(try t.host.startSession(sp: .lockingSP, authority: .user(2), pin: [], write: false, hsn: 62).0 == .notAuthorized)
        let again = try Self.session(t, .lockingAdmin(1), Self.sidPIN, hsn: 63)
        #expect(try again.set(.lockingRange(1), [.name(7, .bool(true))]) == .result([], status: .success), "range 1 is the Admins' again")
        try again.end()

        let (normal, _) = try Self.activated([])
        let plain = try Self.session(normal, .lockingAdmin(1), Self.sidPIN, hsn: 64)
        #expect(try plain.call(.thisSP, MethodID.reactivate, [Self.selection([.lockingRange(1)])]) == .result([], status: .fail))
    }
}
