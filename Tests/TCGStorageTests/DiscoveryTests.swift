import Testing
@testable import TCGStorage

@Suite("Level 0 Discovery")
struct DiscoveryTests {
    static let everyFeature: [DiscoveryFeature] = [
        .tper(TPerFeature(flags: 0x51)),
        .locking(LockingFeature(supported: true, enabled: true, locked: true, mediaEncryption: true, mbrEnabled: true, mbrDone: false)),
        .geometry(GeometryFeature(alignmentRequired: true, logicalBlockSize: 4096, alignmentGranularity: 8, lowestAlignedLBA: 0)),
        .ssc(SSCFeature(kind: .enterprise, baseComID: 0x07FE, numberOfComIDs: 2, rangeCrossing: true)),
        .ssc(SSCFeature(kind: .opalV1, baseComID: 0x1000, numberOfComIDs: 1)),
        .ssc(SSCFeature(kind: .opalV2, version: 2, baseComID: 0x1000, numberOfComIDs: 1, rangeCrossing: false,
                        lockingAdminAuthorities: 4, lockingUserAuthorities: 8, initialPIN: 0, revertedPIN: 0xFF)),
        .ssc(SSCFeature(kind: .pyriteV1, baseComID: 0x2000, initialPIN: 0xFF, revertedPIN: 0)),
        .ssc(SSCFeature(kind: .pyriteV2, baseComID: 0x2000)),
        .ssc(SSCFeature(kind: .ruby, baseComID: 0x3000, lockingAdminAuthorities: 2, lockingUserAuthorities: 4)),
        .ssc(SSCFeature(kind: .opalite, baseComID: 0x4000)),
        .singleUser(SingleUserFeature(lockingObjects: 9, flags: 0x05)),
        .dataStore(DataStoreFeature(maximumTables: 9, maximumTotalSize: 10 << 20, sizeAlignment: 1)),
        .blockSID(BlockSIDFeature(sidValueDiffersFromMSID: true, sidAuthenticationBlocked: true, hardwareReset: true)),
        .namespaceLocking(NamespaceLockingFeature(flags: 0xC0, maximumKeyCount: 16, unusedKeyCount: 3, maximumRangesPerNamespace: 8)),
        .dataRemoval(DataRemovalFeature(operationFlags: 1, supportedMechanisms: 0x24, timeFormats: 0, times: [1, 2, 3])),
        .unknown(code: 0xC001, version: 3, body: [1, 2, 3, 4]),
    ]

    @Test("every feature survives build and parse")
    func roundTrip() throws {
        let discovery = Level0Discovery(majorVersion: 0, minorVersion: 1, vendorSpecific: [9, 9], features: Self.everyFeature)
        let parsed = try Level0Discovery.decode(discovery.encoded())
        #expect(parsed == discovery)
        #expect(parsed.opal?.kind == .opalV2)
        #expect(parsed.blockSID?.sidAuthenticationBlocked == true)
        #expect(parsed.locking?.locked == true && parsed.locking?.mbrDone == false)
    }

    @Test("the header length excludes itself; trailing buffer bytes are ignored")
    func headerLength() throws {
        let bytes = Level0Discovery(features: [.tper(TPerFeature(flags: 1))]).encoded()
        #expect(bytes.count == 48 + 16)
        #expect(Array(bytes[0..<4]) == [0, 0, 0, 44 + 16])
        let parsed = try Level0Discovery.decode(bytes + [UInt8](repeating: 0, count: 2048 - bytes.count))
        #expect(parsed.features.count == 1 && parsed.tper?.syncSupported == true)
    }

    @Test("a known Opal 2 descriptor decodes field by field")
    func opal2Bytes() throws {
        let descriptor: [UInt8] = [0x02, 0x03, 0x10, 0x10, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x04, 0x00, 0x08, 0x00, 0x00,
                                   0, 0, 0, 0, 0]
        #expect(DiscoveryFeature(code: 0x0203, version: 1, body: Array(descriptor[4...])) ==
                .ssc(SSCFeature(kind: .opalV2, version: 1, baseComID: 0x1000, numberOfComIDs: 1,
                                lockingAdminAuthorities: 4, lockingUserAuthorities: 8)))
        #expect(Array(DiscoveryFeature.ssc(SSCFeature(kind: .opalV2, baseComID: 0x1000, lockingAdminAuthorities: 4,
                                                      lockingUserAuthorities: 8)).encoded()) == descriptor)
    }

    @Test("lengths that lie are typed errors")
    func lies() {
        var bytes = Level0Discovery(features: [.tper(TPerFeature(flags: 1))]).encoded()
        bytes[3] = 0xF0
        #expect(throws: TCGStorageError.self) { try Level0Discovery.decode(bytes) }
        var feature = Level0Discovery(features: [.tper(TPerFeature(flags: 1))]).encoded()
        feature[51] = 0x40
        #expect(throws: TCGStorageError.self) { try Level0Discovery.decode(feature) }
        #expect(throws: TCGStorageError.self) { try Level0Discovery.decode([0, 0, 0, 1]) }
    }
}
