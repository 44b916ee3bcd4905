/// The Level 0 Discovery response (protocol 0x01, ComID 0x0001): a header and feature descriptors.
public struct Level0Discovery: Hashable, Sendable {
    public static let comID: UInt16 = 0x0001
    public static let headerSize = 48
    /// Sedutil and the kernel read discovery into a 2048-byte buffer; drives fit in it.
    public static let transferLength = 2048

    public var majorVersion: UInt16
    public var minorVersion: UInt16
    public var vendorSpecific: [UInt8]
    public var features: [DiscoveryFeature]

    public init(majorVersion: UInt16 = 0, minorVersion: UInt16 = 1, vendorSpecific: [UInt8] = [],
                features: [DiscoveryFeature]) {
        self.majorVersion = majorVersion
        self.minorVersion = minorVersion
        self.vendorSpecific = Array(vendorSpecific.prefix(32)) + Array(repeating: 0, count: max(0, 32 - vendorSpecific.count))
        self.features = features
    }

    /// Parses a discovery buffer; the header length (which excludes itself) bounds the features.
    public static func decode(_ bytes: [UInt8]) throws(TCGStorageError) -> Level0Discovery {
        var reader = ByteReader(bytes)
        let length = Int(try reader.u32("discovery length"))
        guard length >= headerSize - 4 else {
            throw TCGStorageError(.inconsistentLength, at: 0, "discovery length \(length) is shorter than its header")
        }
        guard length <= reader.remaining else {
            throw TCGStorageError(.inconsistentLength, at: 0,
                                  "discovery length \(length) exceeds the \(reader.remaining) bytes received")
        }
        let major = try reader.u16("major version")
        let minor = try reader.u16("minor version")
        try reader.skip(8, "reserved bytes")
        let vendor = try reader.take(32, "vendor-specific bytes")
        var body = ByteReader(bytes, from: reader.offset, end: 4 + length)
        var features: [DiscoveryFeature] = []
        while !body.isAtEnd {
            let code = try body.u16("feature code")
            let version = try body.u8("feature version") >> 4
            let featureLength = Int(try body.u8("feature length"))
            let featureBody = try body.take(featureLength, "feature 0x\(String(code, radix: 16)) body")
            features.append(DiscoveryFeature(code: code, version: version, body: featureBody))
        }
        return Level0Discovery(majorVersion: major, minorVersion: minor, vendorSpecific: vendor, features: features)
    }

    public func encoded() -> [UInt8] {
        var featureBytes: [UInt8] = []
        for feature in features { featureBytes.append(contentsOf: feature.encoded()) }
        var out: [UInt8] = []
        out.appendBigEndian(UInt32(Self.headerSize - 4 + featureBytes.count))
        out.appendBigEndian(majorVersion)
        out.appendBigEndian(minorVersion)
        out.appendZeros(8)
        out.append(contentsOf: vendorSpecific)
        out.append(contentsOf: featureBytes)
        return out
    }

    public var tper: TPerFeature? {
        for case .tper(let f) in features { return f }
        return nil
    }
    public var locking: LockingFeature? {
        for case .locking(let f) in features { return f }
        return nil
    }
    public var geometry: GeometryFeature? {
        for case .geometry(let f) in features { return f }
        return nil
    }
    public var blockSID: BlockSIDFeature? {
        for case .blockSID(let f) in features { return f }
        return nil
    }
    /// The security subsystem class features (Opal, Enterprise, Pyrite, Ruby …) the drive reports.
    public var subsystemClasses: [SSCFeature] {
        features.compactMap { if case .ssc(let f) = $0 { return f } else { return nil } }
    }
    /// The Opal 2 feature, or the closest SSC sedlock can drive with Opal methods.
    public var opal: SSCFeature? {
        subsystemClasses.first { $0.kind == .opalV2 } ?? subsystemClasses.first { $0.kind == .ruby || $0.kind == .opalV1 }
    }
}
