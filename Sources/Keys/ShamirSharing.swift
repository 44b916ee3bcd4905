import Failures
import Platform
/// Shamir's secret sharing over GF(2^128), laid out as pycryptodome's `Crypto.Protocol.SecretSharing`
/// lays it out, so that shares sedlock stores can be recombined without sedlock (disaster
/// recovery): a 16-byte block is a big-endian 128-bit integer whose least significant bit is the
/// constant coefficient, the field polynomial is x^128 + x^7 + x^2 + x + 1, share i (1…n) is the
/// polynomial evaluated at x = i, and the secret is its constant term. Longer secrets are split
/// block by block with the same indices.
public enum ShamirSharing {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// One participant's share: its index and one 16-byte share per 16-byte block of the secret,
    /// in protected memory like the secret itself (k shares are as good as the key).
    public struct Share: Sendable, Equatable {
        public let index: UInt8
        public let material: Secret

        public init(index: UInt8, material: Secret) {
            self.index = index
            self.material = material
        }

        /// A share written out elsewhere (pycryptodome's): the blocks are copied in; clear yours.
        public init(index: UInt8, blocks: [[UInt8]]) {
            var joined: [UInt8] = []
            joined.reserveCapacity(blocks.reduce(0) { $0 + $1.count })
            defer { joined.wipe() }
            for block in blocks { joined += block }
            self.init(index: index, material: Secret(joined))
        }

        public var blockCount: Int { material.count / 16 }

        /// The blocks as transient arrays, for handing to another tool (disaster recovery, a
        /// test against pycryptodome); clear them after use.
        public func exportedBlocks() -> [[UInt8]] {
            material.withUnsafeBytes { raw in (0..<blockCount).map { Array(raw[($0 * 16)..<($0 * 16 + 16)]) } }
        }

        public static func == (a: Share, b: Share) -> Bool { a.index == b.index && a.material == b.material }

        func element(_ block: Int) -> FieldElement {
            material.withUnsafeBytes { FieldElement($0, at: block * 16) }
        }
    }

    /// Splits `secret` (a multiple of 16 bytes) into `n` shares, any `k` of which rebuild it.
    /// The coefficients stay in protected memory and on the stack; each share is built in one
    /// buffer of its final size, cleared once copied into its `Secret`.
    public static func split(_ secret: Secret, threshold k: Int, shares n: Int) throws(Failure) -> [Share] {
        guard k >= 2, n >= k, n <= 255 else { throw Failure(description: "threshold \(k) of \(n) shares is not possible") }
        guard secret.count > 0, secret.count % 16 == 0 else { throw Failure(description: "the secret must be 16-byte blocks") }
        let blocks = secret.count / 16
        // Coefficients of x^(k-1) … x^1, for every block: random; the constant term is the secret block.
        guard let random = Secret.random(count: 16 * (k - 1) * blocks) else { throw Failure(description: "OpenSSL's random generator failed") }
        var perShare = [[UInt8]](repeating: [], count: n)
        defer { for i in perShare.indices { perShare[i].wipe() } }
        for i in perShare.indices { perShare[i].reserveCapacity(secret.count) }
        secret.withUnsafeBytes { secretBytes in
            random.withUnsafeBytes { randomBytes in
                for block in 0..<blocks {
                    let constant = FieldElement(secretBytes, at: block * 16)
                    for i in 1...n {
                        let x = FieldElement(UInt64(i))
                        var y = FieldElement.zero
                        for c in 0..<(k - 1) { y = y * x + FieldElement(randomBytes, at: ((block * (k - 1)) + c) * 16) }
                        y = y * x + constant
                        y.append(to: &perShare[i - 1])
                    }
                }
            }
        }
        return perShare.indices.map { Share(index: UInt8($0 + 1), material: Secret(perShare[$0])) }
    }

    /// Rebuilds the secret from `k` or more shares (Lagrange interpolation at 0).
    public static func combine(_ shares: [Share]) throws(Failure) -> Secret {
        try interpolate(shares, at: 0)
    }

    /// A new share, at `index`, of the secret `shares` (at least the threshold of them) hold: the
    /// same polynomial evaluated at a new point, so it combines with the others as if it had been
    /// made with them — a key server added later gets its own share without any other changing.
    public static func extend(_ shares: [Share], to index: UInt8) throws(Failure) -> Share {
        guard index != 0, !shares.contains(where: { $0.index == index }) else {
            throw Failure(description: "share index \(index) is zero or taken")
        }
        return Share(index: index, material: try interpolate(shares, at: index))
    }

    /// The polynomial through `shares`, evaluated at `x`, block by block.
    private static func interpolate(_ shares: [Share], at x: UInt8) throws(Failure) -> Secret {
        guard let first = shares.first, shares.count >= 2 else { throw Failure(description: "at least two shares are needed") }
        guard Set(shares.map(\.index)).count == shares.count, !shares.contains(where: { $0.index == 0 }) else {
            throw Failure(description: "share indices must be distinct and non-zero")
        }
        guard first.material.count > 0, shares.allSatisfy({ $0.material.count == first.material.count && $0.material.count % 16 == 0 }) else {
            throw Failure(description: "the shares do not have the same shape")
        }
        let point = FieldElement(UInt64(x))
        var out: [UInt8] = []
        out.reserveCapacity(first.material.count)
        defer { out.wipe() }
        for block in 0..<first.blockCount {
            var value = FieldElement.zero
            for (j, share) in shares.enumerated() {
                let xj = FieldElement(UInt64(share.index))
                var numerator = FieldElement.one
                var denominator = FieldElement.one
                // In GF(2^128) subtraction is addition: (x - xm) / (xj - xm) = (x + xm) / (xj + xm).
                for (m, other) in shares.enumerated() where m != j {
                    let xm = FieldElement(UInt64(other.index))
                    numerator = numerator * (point + xm)
                    denominator = denominator * (xj + xm)
                }
                value = value + share.element(block) * numerator * denominator.inverse()
            }
            value.append(to: &out)
        }
        return Secret(out)
    }
}

/// An element of GF(2^128) with pycryptodome's representation (see `ShamirSharing`).
struct FieldElement: Equatable {
    /// Bits 64…127 and 0…63 of the polynomial; bit 0 of `low` is the constant coefficient.
    var high: UInt64
    var low: UInt64

    static let zero = FieldElement(high: 0, low: 0)
    static let one = FieldElement(high: 0, low: 1)

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init(_ small: UInt64) { self.init(high: 0, low: small) }

    /// The 16 bytes at `offset`, big-endian (zeros past the end).
    init(_ raw: UnsafeRawBufferPointer, at offset: Int) {
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<8 { h = h << 8 | UInt64(offset + i < raw.count ? raw[offset + i] : 0) }
        for i in 8..<16 { l = l << 8 | UInt64(offset + i < raw.count ? raw[offset + i] : 0) }
        self.init(high: h, low: l)
    }

    /// 16 bytes, big-endian.
    init(_ bytes: [UInt8]) {
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<8 { h = h << 8 | UInt64(bytes.count > i ? bytes[i] : 0) }
        for i in 8..<16 { l = l << 8 | UInt64(bytes.count > i ? bytes[i] : 0) }
        self.init(high: h, low: l)
    }

    /// The 16 bytes appended in place (no transient array to clear).
    func append(to out: inout [UInt8]) {
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: high >> (56 - 8 * i))) }
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: low >> (56 - 8 * i))) }
    }

    var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
    }

    static func + (a: FieldElement, b: FieldElement) -> FieldElement {
        FieldElement(high: a.high ^ b.high, low: a.low ^ b.low)
    }

    /// Carry-less multiplication reduced by x^128 + x^7 + x^2 + x + 1.
    static func * (a: FieldElement, b: FieldElement) -> FieldElement {
        var result = FieldElement.zero
        var shifted = a
        for bit in 0..<128 {
            let set = bit < 64 ? (b.low >> bit) & 1 : (b.high >> (bit - 64)) & 1
            if set == 1 { result = result + shifted }
            let carry = shifted.high >> 63
            shifted.high = shifted.high << 1 | shifted.low >> 63
            shifted.low = shifted.low << 1
            if carry == 1 { shifted.low ^= 0x87 }
        }
        return result
    }

    /// a^(2^128 - 2) = a^-1 for a ≠ 0.
    func inverse() -> FieldElement {
        var result = FieldElement.one
        var base = self
        // 2^128 - 2: every bit set but bit 0.
        for bit in 0..<128 {
            if bit > 0 { result = result * base }
            base = base * base
        }
        return result
    }
}

extension ShamirSharing.Failure: SedlockError {
    public var kind: FailureKind { .failed }
    public var reason: String { "keys.sharing" }
    public var summary: String { description }
}
