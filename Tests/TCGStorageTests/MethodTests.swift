import Testing
@testable import TCGStorage

@Suite("Method calls and results")
struct MethodTests {
    @Test("a method call has the reference layout")
    func callLayout() {
        let call = MethodCall(invokingUID: .cPinMSID, methodUID: MethodID.get,
                              arguments: [.list([.name(3, .unsigned(3)), .name(4, .unsigned(3))])])
        let expected: [UInt8] = [0xF8, 0xA8, 0, 0, 0, 0x0B, 0, 0, 0x84, 0x02, 0xA8, 0, 0, 0, 6, 0, 0, 0, 0x16,
                                 0xF0, 0xF0, 0xF2, 3, 3, 0xF3, 0xF2, 4, 3, 0xF3, 0xF1, 0xF1, 0xF9, 0xF0, 0, 0, 0, 0xF1]
        #expect(call.encoded() == expected)
    }

    @Test("payloads parse: results, calls, end of session")
    func payloads() throws {
        let result = MethodPayload.result([.list([.name(3, .bytes([1, 2]))])], status: .success)
        #expect(try MethodPayload.decode(result.encoded()) == result)
        let sync = MethodPayload.call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.syncSession,
                                                 arguments: [.unsigned(105), .unsigned(4097)]), status: .success)
        #expect(try MethodPayload.decode(sync.encoded()) == sync)
        #expect(try MethodPayload.decode([0xFA]) == .endOfSession)
        let failed = MethodPayload.result([], status: .authorityLockedOut)
        #expect(try MethodPayload.decode(failed.encoded()) == failed)
    }

    @Test("every named status has its spec code and name")
    func statuses() {
        #expect(MethodStatus.allNamed.count == 19)
        #expect(MethodStatus.notAuthorized.rawValue == 0x01 && MethodStatus.notAuthorized.name == "NOT_AUTHORIZED")
        #expect(MethodStatus.authorityLockedOut.rawValue == 0x12)
        #expect(MethodStatus.fail.rawValue == 0x3F)
        #expect(MethodStatus(rawValue: 0x20).name.hasPrefix("UNKNOWN"))
        #expect(Set(MethodStatus.allNamed.map(\.name)).count == 19)
    }

    @Test("missing status lists, bad UIDs and nesting bombs are typed errors")
    func malformed() {
        #expect(throws: TCGStorageError.self) { try MethodPayload.decode([0xF0, 0xF1, 0xF9]) }
        #expect(throws: TCGStorageError.self) { try MethodPayload.decode([0xF8, 0xA1, 0x00, 0xA1, 0x00, 0xF0, 0xF1, 0xF9, 0xF0, 0, 0, 0, 0xF1]) }
        #expect(throws: TCGStorageError.self) { try MethodPayload.decode([0xF0, 0xF1, 0xF9, 0xF0, 0, 0, 0, 0xF1, 0x05]) }
        let bomb = [UInt8](repeating: 0xF0, count: 100_000)
        do {
            _ = try MethodPayload.decode(bomb)
            Issue.record("a nesting bomb decoded")
        } catch {
            #expect(error.code == .nestingTooDeep)
        }
    }

    @Test("UIDs and their helpers")
    func uids() {
        #expect(UID.lockingRange(0) == .lockingGlobalRange)
        #expect(UID.lockingRange(3).bytes == [0, 0, 8, 2, 0, 3, 0, 3])
        #expect(UID.lockingRange(3).lockingRangeIndex == 3)
        #expect(UID.lockingGlobalRange.lockingRangeIndex == 0)
        #expect(UID.kAES256(range: 2).mediaKeyRangeIndex == 2)
        #expect(UID.kAES128(range: 0).mediaKeyRangeIndex == 0)
        #expect(UID.aceSetReadLocked(range: 1) == UID(0x0000_0008_0003_E001))
        // The two Admin1s are distinct objects.
        #expect(UID.lockingAdmin(1) != UID.adminSPAdmin(1))
        #expect(UID(bytes: [1, 2, 3]) == nil)
        #expect(UID.psid.description == "00000009 0001FF01")
    }
}
