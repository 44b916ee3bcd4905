/// A small deterministic generator (SplitMix64) so every randomized test is reproducible.
public struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }

    /// A mutated copy of `input`: flips, insertions, deletions, truncation, and length-field lies.
    public mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var out = input
        let edits = Int.random(in: 1...4, using: &self)
        for _ in 0..<edits {
            switch Int.random(in: 0..<6, using: &self) {
            case 0 where !out.isEmpty:
                out[Int.random(in: 0..<out.count, using: &self)] ^= UInt8.random(in: 1...255, using: &self)
            case 1:
                out.insert(UInt8.random(in: 0...255, using: &self), at: Int.random(in: 0...out.count, using: &self))
            case 2 where !out.isEmpty:
                out.remove(at: Int.random(in: 0..<out.count, using: &self))
            case 3 where !out.isEmpty:
                out = Array(out.prefix(Int.random(in: 0..<out.count, using: &self)))
            case 4 where out.count >= 4:
                // Plant a large big-endian length anywhere.
                let at = Int.random(in: 0...(out.count - 4), using: &self)
                for i in 0..<4 { out[at + i] = [0xFF, 0x7F, 0x00, 0x10][Int.random(in: 0..<4, using: &self)] }
            default:
                out += bytes(Int.random(in: 0...8, using: &self))
            }
        }
        return out
    }
}
