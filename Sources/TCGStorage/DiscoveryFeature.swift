/// One Level 0 feature descriptor. Unknown codes are kept whole so nothing a drive reports is lost.
public enum DiscoveryFeature: Hashable, Sendable {
    case tper(TPerFeature)
    case locking(LockingFeature)
    case geometry(GeometryFeature)
    case ssc(SSCFeature)
    case singleUser(SingleUserFeature)
    case dataStore(DataStoreFeature)
    case blockSID(BlockSIDFeature)
    case namespaceLocking(NamespaceLockingFeature)
    case dataRemoval(DataRemovalFeature)
    case unknown(code: UInt16, version: UInt8, body: [UInt8])

    /// Interprets a descriptor body; fields beyond a short body read as zero, extra bytes are ignored.
    public init(code: UInt16, version: UInt8, body: [UInt8]) {
        let b = FeatureBody(body)
        switch code {
        case TPerFeature.code:
            self = .tper(TPerFeature(version: version, flags: b.u8(0)))
        case LockingFeature.code:
            self = .locking(LockingFeature(version: version, flags: b.u8(0)))
        case GeometryFeature.code:
            self = .geometry(GeometryFeature(version: version, alignmentRequired: b.u8(0) & 1 != 0,
                                             logicalBlockSize: UInt32(b.be(8, 4)),
                                             alignmentGranularity: b.be(12, 8), lowestAlignedLBA: b.be(20, 8)))
        case SingleUserFeature.code:
            self = .singleUser(SingleUserFeature(version: version, lockingObjects: UInt32(b.be(0, 4)), flags: b.u8(4)))
        case DataStoreFeature.code:
            self = .dataStore(DataStoreFeature(version: version, maximumTables: UInt16(b.be(2, 2)),
                                               maximumTotalSize: UInt32(b.be(4, 4)), sizeAlignment: UInt32(b.be(8, 4))))
        case BlockSIDFeature.code:
            self = .blockSID(BlockSIDFeature(version: version, stateFlags: b.u8(0), hardwareResetFlag: b.u8(1) & 1 != 0))
        case NamespaceLockingFeature.code:
            self = .namespaceLocking(NamespaceLockingFeature(version: version, flags: b.u8(0),
                                                             maximumKeyCount: UInt32(b.be(4, 4)),
                                                             unusedKeyCount: UInt32(b.be(8, 4)),
                                                             maximumRangesPerNamespace: UInt32(b.be(12, 4))))
        case DataRemovalFeature.code:
            self = .dataRemoval(DataRemovalFeature(version: version, operationFlags: b.u8(1),
                                                   supportedMechanisms: b.u8(2), timeFormats: b.u8(3),
                                                   times: (0..<6).map { UInt16(b.be(4 + $0 * 2, 2)) }))
        default:
            if let kind = SSCFeature.Kind(rawValue: code) {
                self = .ssc(SSCFeature(kind: kind, version: version, body: b))
            } else {
                self = .unknown(code: code, version: version, body: body)
            }
        }
    }

    public var code: UInt16 {
        switch self {
        case .tper: return TPerFeature.code
        case .locking: return LockingFeature.code
        case .geometry: return GeometryFeature.code
        case .ssc(let f): return f.kind.rawValue
        case .singleUser: return SingleUserFeature.code
        case .dataStore: return DataStoreFeature.code
        case .blockSID: return BlockSIDFeature.code
        case .namespaceLocking: return NamespaceLockingFeature.code
        case .dataRemoval: return DataRemovalFeature.code
        case .unknown(let code, _, _): return code
        }
    }

    public var name: String {
        switch self {
        case .tper: return "TPer"
        case .locking: return "Locking"
        case .geometry: return "Geometry"
        case .ssc(let f): return f.kind.name
        case .singleUser: return "Single User Mode"
        case .dataStore: return "DataStore"
        case .blockSID: return "Block SID"
        case .namespaceLocking: return "Namespace Locking"
        case .dataRemoval: return "Data Removal"
        case .unknown(let code, _, _): return "Unknown 0x" + String(code, radix: 16, uppercase: true)
        }
    }

    public func encoded() -> [UInt8] {
        var body: [UInt8] = []
        let version: UInt8
        switch self {
        case .tper(let f):
            version = f.version
            body = [f.flags] + Array(repeating: 0, count: 11)
        case .locking(let f):
            version = f.version
            body = [f.flags] + Array(repeating: 0, count: 11)
        case .geometry(let f):
            version = f.version
            body.append(f.alignmentRequired ? 1 : 0)
            body.appendZeros(7)
            body.appendBigEndian(f.logicalBlockSize)
            body.appendBigEndian(f.alignmentGranularity)
            body.appendBigEndian(f.lowestAlignedLBA)
        case .ssc(let f):
            version = f.version
            body = f.encodedBody()
        case .singleUser(let f):
            version = f.version
            body.appendBigEndian(f.lockingObjects)
            body.append(f.flags)
            body.appendZeros(7)
        case .dataStore(let f):
            version = f.version
            body.appendZeros(2)
            body.appendBigEndian(f.maximumTables)
            body.appendBigEndian(f.maximumTotalSize)
            body.appendBigEndian(f.sizeAlignment)
        case .blockSID(let f):
            version = f.version
            body = [f.stateFlags, f.hardwareResetFlag ? 1 : 0] + Array(repeating: 0, count: 10)
        case .namespaceLocking(let f):
            version = f.version
            body.append(f.flags)
            body.appendZeros(3)
            body.appendBigEndian(f.maximumKeyCount)
            body.appendBigEndian(f.unusedKeyCount)
            body.appendBigEndian(f.maximumRangesPerNamespace)
        case .dataRemoval(let f):
            version = f.version
            body = [0, f.operationFlags, f.supportedMechanisms, f.timeFormats]
            for i in 0..<6 { body.appendBigEndian(i < f.times.count ? f.times[i] : 0) }
            body.appendZeros(16)
        case .unknown(_, let v, let b):
            version = v
            body = Array(b.prefix(255))
        }
        var out: [UInt8] = []
        out.appendBigEndian(code)
        out.append((version & 0x0F) << 4)
        out.append(UInt8(body.count))
        out.append(contentsOf: body)
        return out
    }
}

/// Reads fixed offsets of a descriptor body; missing bytes read as zero.
struct FeatureBody {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func u8(_ offset: Int) -> UInt8 { offset >= 0 && offset < bytes.count ? bytes[offset] : 0 }
    func be(_ offset: Int, _ width: Int) -> UInt64 {
        (0..<width).reduce(UInt64(0)) { $0 << 8 | UInt64(u8(offset + $1)) }
    }
}

public struct TPerFeature: Hashable, Sendable {
    public static let code: UInt16 = 0x0001
    public var version: UInt8
    public var flags: UInt8
    public init(version: UInt8 = 1, flags: UInt8) { self.version = version; self.flags = flags }
    public var syncSupported: Bool { flags & 0x01 != 0 }
    public var asyncSupported: Bool { flags & 0x02 != 0 }
    public var ackNakSupported: Bool { flags & 0x04 != 0 }
    public var bufferManagementSupported: Bool { flags & 0x08 != 0 }
    public var streamingSupported: Bool { flags & 0x10 != 0 }
    public var comIDManagementSupported: Bool { flags & 0x40 != 0 }
}

public struct LockingFeature: Hashable, Sendable {
    public static let code: UInt16 = 0x0002
    public var version: UInt8
    public var flags: UInt8
    public init(version: UInt8 = 1, flags: UInt8) { self.version = version; self.flags = flags }
    public init(version: UInt8 = 1, supported: Bool, enabled: Bool, locked: Bool, mediaEncryption: Bool,
                mbrEnabled: Bool, mbrDone: Bool, mbrShadowingNotSupported: Bool = false) {
        var f: UInt8 = 0
        for (bit, on) in [supported, enabled, locked, mediaEncryption, mbrEnabled, mbrDone, mbrShadowingNotSupported].enumerated() where on {
            f |= 1 << UInt8(bit)
        }
        self.init(version: version, flags: f)
    }
    public var lockingSupported: Bool { flags & 0x01 != 0 }
    public var lockingEnabled: Bool { flags & 0x02 != 0 }
    public var locked: Bool { flags & 0x04 != 0 }
    public var mediaEncryption: Bool { flags & 0x08 != 0 }
    public var mbrEnabled: Bool { flags & 0x10 != 0 }
    public var mbrDone: Bool { flags & 0x20 != 0 }
    public var mbrShadowingNotSupported: Bool { flags & 0x40 != 0 }
}

public struct GeometryFeature: Hashable, Sendable {
    public static let code: UInt16 = 0x0003
    public var version: UInt8
    public var alignmentRequired: Bool
    public var logicalBlockSize: UInt32
    public var alignmentGranularity: UInt64
    public var lowestAlignedLBA: UInt64
    public init(version: UInt8 = 1, alignmentRequired: Bool, logicalBlockSize: UInt32,
                alignmentGranularity: UInt64, lowestAlignedLBA: UInt64) {
        self.version = version
        self.alignmentRequired = alignmentRequired
        self.logicalBlockSize = logicalBlockSize
        self.alignmentGranularity = alignmentGranularity
        self.lowestAlignedLBA = lowestAlignedLBA
    }
}

/// A security subsystem class descriptor: Opal v1/v2, Enterprise, Pyrite v1/v2, Ruby, Opalite.
public struct SSCFeature: Hashable, Sendable {
    public enum Kind: UInt16, Sendable, CaseIterable {
        case enterprise = 0x0100
        case opalV1 = 0x0200
        case opalV2 = 0x0203
        case opalite = 0x0301
        case pyriteV1 = 0x0302
        case pyriteV2 = 0x0303
        case ruby = 0x0304

        public var name: String {
            switch self {
            case .enterprise: return "Enterprise"
            case .opalV1: return "Opal v1"
            case .opalV2: return "Opal v2"
            case .opalite: return "Opalite"
            case .pyriteV1: return "Pyrite v1"
            case .pyriteV2: return "Pyrite v2"
            case .ruby: return "Ruby"
            }
        }

        /// Whether the body carries range crossing and authority counts (Opal 2 layout).
        var hasOpal2Layout: Bool { self == .opalV2 || self == .ruby }
        /// Whether the body carries only PIN indicators after the ComIDs (Pyrite layout).
        var hasPyriteLayout: Bool { self == .opalite || self == .pyriteV1 || self == .pyriteV2 }
    }

    public var kind: Kind
    public var version: UInt8
    public var baseComID: UInt16
    public var numberOfComIDs: UInt16
    public var rangeCrossing: Bool
    public var lockingAdminAuthorities: UInt16
    public var lockingUserAuthorities: UInt16
    /// 0x00: initial C_PIN_SID is MSID; 0xFF: vendor unique.
    public var initialPIN: UInt8
    public var revertedPIN: UInt8

    public init(kind: Kind, version: UInt8 = 1, baseComID: UInt16, numberOfComIDs: UInt16 = 1,
                rangeCrossing: Bool = false, lockingAdminAuthorities: UInt16 = 0, lockingUserAuthorities: UInt16 = 0,
                initialPIN: UInt8 = 0, revertedPIN: UInt8 = 0) {
        self.kind = kind
        self.version = version
        self.baseComID = baseComID
        self.numberOfComIDs = numberOfComIDs
        self.rangeCrossing = kind.hasPyriteLayout ? false : rangeCrossing
        self.lockingAdminAuthorities = kind.hasOpal2Layout ? lockingAdminAuthorities : 0
        self.lockingUserAuthorities = kind.hasOpal2Layout ? lockingUserAuthorities : 0
        let hasPins = kind.hasOpal2Layout || kind.hasPyriteLayout
        self.initialPIN = hasPins ? initialPIN : 0
        self.revertedPIN = hasPins ? revertedPIN : 0
    }

    init(kind: Kind, version: UInt8, body b: FeatureBody) {
        if kind.hasOpal2Layout {
            self.init(kind: kind, version: version, baseComID: UInt16(b.be(0, 2)), numberOfComIDs: UInt16(b.be(2, 2)),
                      rangeCrossing: b.u8(4) & 1 != 0, lockingAdminAuthorities: UInt16(b.be(5, 2)),
                      lockingUserAuthorities: UInt16(b.be(7, 2)), initialPIN: b.u8(9), revertedPIN: b.u8(10))
        } else if kind.hasPyriteLayout {
            self.init(kind: kind, version: version, baseComID: UInt16(b.be(0, 2)), numberOfComIDs: UInt16(b.be(2, 2)),
                      initialPIN: b.u8(9), revertedPIN: b.u8(10))
        } else {
            self.init(kind: kind, version: version, baseComID: UInt16(b.be(0, 2)), numberOfComIDs: UInt16(b.be(2, 2)),
                      rangeCrossing: b.u8(4) & 1 != 0)
        }
    }

    func encodedBody() -> [UInt8] {
        var body: [UInt8] = []
        body.appendBigEndian(baseComID)
        body.appendBigEndian(numberOfComIDs)
        if kind.hasOpal2Layout {
            body.append(rangeCrossing ? 1 : 0)
            body.appendBigEndian(lockingAdminAuthorities)
            body.appendBigEndian(lockingUserAuthorities)
            body.append(initialPIN)
            body.append(revertedPIN)
            body.appendZeros(5)
        } else if kind.hasPyriteLayout {
            body.appendZeros(5)
            body.append(initialPIN)
            body.append(revertedPIN)
            body.appendZeros(5)
        } else {
            body.append(rangeCrossing ? 1 : 0)
            body.appendZeros(7)
        }
        return body
    }
}

public struct SingleUserFeature: Hashable, Sendable {
    public static let code: UInt16 = 0x0201
    public var version: UInt8
    public var lockingObjects: UInt32
    public var flags: UInt8
    public init(version: UInt8 = 1, lockingObjects: UInt32, flags: UInt8) {
        self.version = version; self.lockingObjects = lockingObjects; self.flags = flags
    }
    public var any: Bool { flags & 0x01 != 0 }
    public var all: Bool { flags & 0x02 != 0 }
    public var policy: Bool { flags & 0x04 != 0 }
}

public struct DataStoreFeature: Hashable, Sendable {
    public static let code: UInt16 = 0x0202
    public var version: UInt8
    public var maximumTables: UInt16
    public var maximumTotalSize: UInt32
    public var sizeAlignment: UInt32
    public init(version: UInt8 = 1, maximumTables: UInt16, maximumTotalSize: UInt32, sizeAlignment: UInt32) {
        self.version = version; self.maximumTables = maximumTables
        self.maximumTotalSize = maximumTotalSize; self.sizeAlignment = sizeAlignment
    }
}

public struct BlockSIDFeature: Hashable, Sendable {
    public static let code: UInt16 = 0x0402
    public var version: UInt8
    public var stateFlags: UInt8
    public var hardwareResetFlag: Bool
    public init(version: UInt8 = 1, stateFlags: UInt8, hardwareResetFlag: Bool) {
        self.version = version; self.stateFlags = stateFlags; self.hardwareResetFlag = hardwareResetFlag
    }
    public init(version: UInt8 = 1, sidValueDiffersFromMSID: Bool, sidAuthenticationBlocked: Bool, hardwareReset: Bool) {
        self.init(version: version, stateFlags: (sidValueDiffersFromMSID ? 1 : 0) | (sidAuthenticationBlocked ? 2 : 0),
                  hardwareResetFlag: hardwareReset)
    }
    /// True when C_PIN_SID no longer equals C_PIN_MSID.
    public var sidValueState: Bool { stateFlags & 0x01 != 0 }
    public var sidAuthenticationBlocked: Bool { stateFlags & 0x02 != 0 }
}

public struct NamespaceLockingFeature: Hashable, Sendable {
    public static let code: UInt16 = 0x0403
    public var version: UInt8
    public var flags: UInt8
    public var maximumKeyCount: UInt32
    public var unusedKeyCount: UInt32
    public var maximumRangesPerNamespace: UInt32
    public init(version: UInt8 = 1, flags: UInt8, maximumKeyCount: UInt32, unusedKeyCount: UInt32,
                maximumRangesPerNamespace: UInt32) {
        self.version = version; self.flags = flags; self.maximumKeyCount = maximumKeyCount
        self.unusedKeyCount = unusedKeyCount; self.maximumRangesPerNamespace = maximumRangesPerNamespace
    }
    public var rangeC: Bool { flags & 0x80 != 0 }
    public var rangeP: Bool { flags & 0x40 != 0 }
}

public struct DataRemovalFeature: Hashable, Sendable {
    public static let code: UInt16 = 0x0404
    public var version: UInt8
    public var operationFlags: UInt8
    public var supportedMechanisms: UInt8
    public var timeFormats: UInt8
    /// Estimated time per mechanism (units per `timeFormats`), six entries.
    public var times: [UInt16]
    public init(version: UInt8 = 1, operationFlags: UInt8, supportedMechanisms: UInt8, timeFormats: UInt8, times: [UInt16]) {
        self.version = version; self.operationFlags = operationFlags; self.supportedMechanisms = supportedMechanisms
        self.timeFormats = timeFormats
        self.times = (0..<6).map { $0 < times.count ? times[$0] : 0 }
    }
}
