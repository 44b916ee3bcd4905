import Foundation
import KMIPCodec
import SedSimulator
import SimulatorLink
import TCGStorage

/// Valid inputs for each target, made by the project's own encoders: the seed corpus in
/// Fuzz/corpus/TARGET/ (`sedlock-fuzz seeds Fuzz/corpus` writes it again).
enum Seeds {
    static func inputs(_ target: FuzzTarget) -> [[UInt8]] {
        let startSession = MethodCall(invokingUID: .sessionManager, methodUID: MethodID.startSession,
                                      arguments: [.unsigned(1), .uid(.adminSP), .bool(true),
                                                  .name(Column.StartSession.hostChallenge, .bytes(Array("password".utf8))),
                                                  .name(Column.StartSession.hostSigningAuthority, .uid(.sid))])
        let getResult = MethodPayload.result([.list([.name(3, .bytes([1, 2, 3])), .name(5, .unsigned(7))])], status: .success)
        let comPacket = ComPacket(comID: 0x1000, packets: [
            Packet(tperSessionNumber: 0x100, hostSessionNumber: 1, sequenceNumber: 1, subpackets: [SubPacket(payload: getResult.encoded())]),
        ])
        switch target {
        case .tokens:
            return [comPacket.encoded(), comPacket.encoded(padTo: 512), MethodPayload.call(startSession, status: .success).encoded()]
        case .level0:
            return [Level0Discovery(features: [
                .tper(TPerFeature(flags: 0x51)),
                .locking(LockingFeature(supported: true, enabled: true, locked: true, mediaEncryption: true, mbrEnabled: false, mbrDone: false)),
                .ssc(SSCFeature(kind: .opalV2, version: 1, baseComID: 0x1000, numberOfComIDs: 1, rangeCrossing: false,
                                lockingAdminAuthorities: 4, lockingUserAuthorities: 8, initialPIN: 0, revertedPIN: 0)),
                LifetimeFailureFeature(consecutiveFailures: 1, limit: 10, erased: false).feature,
            ]).encoded()]
        case .methods:
            return [getResult.encoded(), MethodPayload.call(startSession, status: .success).encoded(), MethodPayload.endOfSession.encoded(),
                    MethodPayload.result([], status: .notAuthorized).encoded()]
        case .ttlv:
            let request = RequestMessage(version: .v1_4, items: [
                RequestBatchItem(.get, payload: [.text(.uniqueIdentifier, "1")], uniqueBatchItemID: [0, 0, 0, 1]),
                RequestBatchItem(.getAttributes, payload: [.text(.uniqueIdentifier, "1"), .text(.attributeName, "State")],
                                 uniqueBatchItemID: [0, 0, 0, 2]),
            ])
            let response: TTLV = .structure(.responseMessage, [
                .structure(.responseHeader, [ProtocolVersion.v1_4.ttlv, TTLV(.timeStamp, .dateTime(1_800_000_000)), .integer(.batchCount, 1)]),
                .structure(.batchItem, [.enumeration(.operation, KMIPCodec.Operation.get.rawValue), .bytes(.uniqueBatchItemID, [0, 0, 0, 1]),
                                        .enumeration(.resultStatus, ResultStatus.success.rawValue),
                                        .structure(.responsePayload, [.text(.uniqueIdentifier, "1")])]),
            ])
            return [request.encoded(), TTLVCodec.encode(response)]
        case .sense:
            return [[0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0], [0x72, 0x07, 0x27, 0x02, 0, 0, 0, 0],
                    [0, 0, 0x06, 0x02, 31, 0, 0, 0] + Array("SEDSIM  SAS Opal 2      1.0 ".utf8), [0x00, 0x02]]
        case .simulator:
            // Session manager calls, then calls on the first session a scratch drive opens (TSN 0x100).
            func frame(_ payload: [UInt8], tsn: UInt32 = 0, hsn: UInt32 = 0) -> [UInt8] {
                [1] + ComPacket(comID: 0x1000, packets: [
                    Packet(tperSessionNumber: tsn, hostSessionNumber: hsn, subpackets: [SubPacket(payload: payload)]),
                ]).encoded(padTo: 512)
            }
            let properties = MethodCall(invokingUID: .sessionManager, methodUID: MethodID.properties, arguments: [
                .name(0, .list([.named(.bytes(Array("MaxComPacketSize".utf8)), .unsigned(4096))])),
            ])
            let anybody = MethodCall(invokingUID: .sessionManager, methodUID: MethodID.startSession,
                                     arguments: [.unsigned(1), .uid(.adminSP), .bool(false)])
            let inSession = { (call: MethodCall) in frame(call.encoded(), tsn: 0x100, hsn: 1) }
            return [frame(MethodPayload.call(startSession, status: .success).encoded()),
                    [2, 1, 0x10, 0x00, 0, 0, 0, 0, 0, 2],
                    LinkRequest(.identify, drive: 0).encoded(),
                    frame(properties.encoded()),
                    frame(anybody.encoded()),
                    inSession(MethodCall(invokingUID: .tperInfo, methodUID: MethodID.get, arguments: [.list([])])),
                    inSession(MethodCall(invokingUID: UID(0x0000_0009_0000_0000), methodUID: MethodID.next,
                                         arguments: [.name(1, .unsigned(2))])),
                    inSession(MethodCall(invokingUID: .lockingSP, methodUID: MethodID.activate,
                                         arguments: [.name(0x06_0000, .list([.uid(.lockingRange(1))]))])),
                    frame(MethodCall(invokingUID: .cPinMSID, methodUID: MethodID.get, arguments: [.list([])]).encoded() + [0xFA],
                          tsn: 0x100, hsn: 1),
                    // The same on the drive with every quirk (top bit of the first byte).
                    [0x81] + frame(anybody.encoded(), hsn: 3).dropFirst(),
                    [0x81] + frame(MethodCall(invokingUID: .cPinMSID, methodUID: MethodID.get, arguments: [.list([])]).encoded() + [0xFA],
                                   tsn: 0x100, hsn: 1).dropFirst(),
                    // The Enterprise SSC drive (top bits 11): a session, Authenticate, Get and Set by names, Erase.
                    [0xC1] + frame(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.startSession,
                                              arguments: [.unsigned(1), .uid(.enterpriseLockingSP), .bool(true),
                                                          .named(.bytes(Array("SessionTimeout".utf8)), .unsigned(60000))]).encoded()).dropFirst(),
                    [0xC1] + inSession(MethodCall(invokingUID: .thisSP, methodUID: MethodID.enterpriseAuthenticate,
                                                  arguments: [.uid(.bandMaster0), .named(.bytes(Array("Challenge".utf8)), .bytes([0x41]))])).dropFirst(),
                    [0xC1] + inSession(MethodCall(invokingUID: .band(0), methodUID: MethodID.enterpriseGet, arguments: [.list([
                        .named(.bytes(Array("startColumn".utf8)), .bytes(Array("Name".utf8))),
                        .named(.bytes(Array("endColumn".utf8)), .bytes(Array("LockOnReset".utf8))),
                    ])])).dropFirst(),
                    [0xC1] + inSession(MethodCall(invokingUID: .band(1), methodUID: MethodID.enterpriseSet, arguments: [
                        .list([]), .list([.list([.named(.bytes(Array("ReadLockEnabled".utf8)), .bool(true))])]),
                    ])).dropFirst(),
                    [0xC1] + inSession(MethodCall(invokingUID: .band(0), methodUID: MethodID.erase)).dropFirst()]
        }
    }

    static func write(to root: String) throws {
        for target in FuzzTarget.allCases {
            let directory = root + "/" + target.rawValue
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for (n, input) in inputs(target).enumerated() {
                try Data(input).write(to: URL(fileURLWithPath: "\(directory)/seed-\(n)"))
            }
        }
    }
}
