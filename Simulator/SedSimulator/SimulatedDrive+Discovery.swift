import TCGStorage

/// Level 0 Discovery built from live state.
extension SimulatedDrive {
    func discovery() -> Level0Discovery {
        let active = record.lockingLifeCycle == .manufactured
        let anyLocked = record.ranges.indices.contains { i in
            let r = record.ranges[i]
            return (r.readLockEnabled && r.readLocked) || (r.writeLockEnabled && r.writeLocked)
        }
        let sidDiffers = record.sidEverChanged
        let lifetime = LifetimeFailureFeature(consecutiveFailures: UInt32(clamping: record.consecutiveFailedAuthentications),
                                              limit: UInt32(clamping: record.settings.lifetimeFailureLimit),
                                              erased: record.erasedForGood).feature
        let ssc = record.settings.ssc ?? .opal
        // The Enterprise SSC defines TPer, Locking and its own feature; Geometry, Single User
        // Mode, DataStore and Block SID are Opal family features its drives do not report.
        if ssc == .enterprise {
            return Level0Discovery(majorVersion: 0, minorVersion: 1, features: [
                .tper(TPerFeature(flags: 0x01 | 0x10 | 0x40)),
                .locking(LockingFeature(supported: true, enabled: true, locked: anyLocked, mediaEncryption: true,
                                        mbrEnabled: false, mbrDone: false)),
                .ssc(SSCFeature(kind: .enterprise, version: 1, baseComID: Self.baseComID, numberOfComIDs: UInt16(comIDs.count),
                                rangeCrossing: false, lockingAdminAuthorities: 0, lockingUserAuthorities: 0, initialPIN: 0, revertedPIN: 0)),
                lifetime,
            ])
        }
        let kind: SSCFeature.Kind = switch ssc {
        case .pyrite: .pyriteV2
        case .ruby: .ruby
        case .opalite: .opalite
        case .opal, .enterprise: .opalV2
        }
        // Opalite defines neither Single User Mode nor the DataStore feature set (it has the
        // DataStore table, without the descriptor).
        let opalExtras: [DiscoveryFeature] = ssc == .opalite ? [] : [
            .singleUser(singleUserFeature()),
            .dataStore(DataStoreFeature(maximumTables: 1, maximumTotalSize: UInt32(record.settings.dataStoreSize), sizeAlignment: 1)),
        ]
        return Level0Discovery(majorVersion: 0, minorVersion: 1, features: [
            .tper(TPerFeature(flags: 0x01 | 0x10 | 0x40)),
            .locking(LockingFeature(supported: true, enabled: active, locked: active && anyLocked, mediaEncryption: ssc.encryptsMedia,
                                    mbrEnabled: record.mbr.enable, mbrDone: record.mbr.enable && record.mbr.done)),
        ] + (ssc == .opalite ? [] : [
            // Opalite's Level 0 answer is TPer, Locking and its own descriptor (plus Block SID's).
            .geometry(GeometryFeature(alignmentRequired: false, logicalBlockSize: UInt32(record.identity.blockSize),
                                      alignmentGranularity: 8, lowestAlignedLBA: 0)),
        ]) + [
            .ssc(SSCFeature(kind: kind, version: 1, baseComID: Self.baseComID, numberOfComIDs: UInt16(comIDs.count), rangeCrossing: false,
                            lockingAdminAuthorities: UInt16(record.lockingAdmins.count),
                            lockingUserAuthorities: UInt16(record.lockingUsers.count), initialPIN: 0, revertedPIN: 0)),
        ] + opalExtras + [
            .blockSID(BlockSIDFeature(sidValueDiffersFromMSID: sidDiffers, sidAuthenticationBlocked: blockSIDActive,
                                      hardwareReset: blockSIDClearsOnHardwareReset)),
            lifetime,
        ])
    }
}
