/// A vendor-unique Level 0 feature (code 0xC0A5) in which a drive that keeps a drive-wide count
/// of consecutive failed authentications — and erases itself for good when it reaches a limit,
/// as some enterprise drives do — reports the count, the limit and whether it has erased itself.
/// sedsim's drives offer it; sedlock reads it where a drive does, to name the real cause of a
/// refused authentication. Body: count (4, big-endian), limit (4), erased (1), 3 reserved.
public struct LifetimeFailureFeature: Sendable, Equatable {
    public static let code: UInt16 = 0xC0A5
    public static let version: UInt8 = 1

    public var consecutiveFailures: UInt32
    public var limit: UInt32
    public var erased: Bool

    public init(consecutiveFailures: UInt32, limit: UInt32, erased: Bool) {
        self.consecutiveFailures = consecutiveFailures
        self.limit = limit
        self.erased = erased
    }

    public init?(body: [UInt8]) {
        guard body.count >= 9 else { return nil }
        let b = FeatureBody(body)
        consecutiveFailures = UInt32(b.be(0, 4))
        limit = UInt32(b.be(4, 4))
        erased = b.u8(8) & 0x01 != 0
    }

    public var body: [UInt8] {
        var out: [UInt8] = []
        out.appendBigEndian(consecutiveFailures)
        out.appendBigEndian(limit)
        out.append(erased ? 1 : 0)
        out.appendZeros(3)
        return out
    }

    public var feature: DiscoveryFeature { .unknown(code: Self.code, version: Self.version, body: body) }
}

extension Level0Discovery {
    /// The drive's lifetime failure counter, where it reports one.
    public var lifetimeFailures: LifetimeFailureFeature? {
        for feature in features {
            if case .unknown(let code, _, let body) = feature, code == LifetimeFailureFeature.code { return LifetimeFailureFeature(body: body) }
        }
        return nil
    }
}
