import TestSupport
import Testing
@testable import TCGStorage

/// Every decoder takes untrusted bytes: 100,000 mutated and random inputs each must yield a value
/// or a typed error, never a trap, and never more output than input.
@Suite("Decoders under mutation")
struct MutationTests {
    static let iterations = 100_000

    static var methodSeeds: [[UInt8]] {
        [
            MethodCall(invokingUID: .sessionManager, methodUID: MethodID.startSession,
                       arguments: [.unsigned(105), .uid(.lockingSP), .bool(true), .name(0, .bytes(Array(repeating: 1, count: 32))),
                                   .name(3, .uid(.lockingAdmin(1)))]).encoded(),
            MethodPayload.result([.list([.name(3, .bytes([1, 2, 3])), .name(5, .unsigned(5)), .name(9, .list([.unsigned(0)]))])],
                                 status: .success).encoded(),
            MethodPayload.call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.syncSession,
                                          arguments: [.unsigned(1), .unsigned(4097)]), status: .success).encoded(),
        ]
    }

    static func run(seed: UInt64, seeds: [[UInt8]], _ decode: ([UInt8]) -> Int?) {
        var rng = SeededRandom(seed: seed)
        var decoded = 0
        for i in 0..<iterations {
            let input: [UInt8]
            if i % 10 == 9 {
                input = rng.bytes(Int.random(in: 0...300, using: &rng))
            } else {
                input = rng.mutate(seeds[i % seeds.count])
            }
            if let size = decode(input) {
                decoded += 1
                #expect(size <= input.count, "decoded more items than input bytes")
            }
        }
        // Some mutations must still decode, or the seeds are not exercising the grammar.
        #expect(decoded > 0)
    }

    @Test func tokenDecoder() {
        Self.run(seed: 11, seeds: Self.methodSeeds) { (try? TokenDecoder.decode($0))?.count }
    }

    @Test func methodPayload() {
        Self.run(seed: 12, seeds: Self.methodSeeds) { (try? MethodPayload.decode($0)).map { _ in 0 } }
    }

    @Test func comPacket() {
        let seeds = Self.methodSeeds.map { payload in
            ComPacket(comID: 0x1000, packets: [Packet(tperSessionNumber: 1, hostSessionNumber: 2,
                                                      subpackets: [SubPacket(payload: payload)])]).encoded()
        }
        Self.run(seed: 13, seeds: seeds) { bytes in
            (try? ComPacket.decode(bytes)).map { $0.packets.reduce(0) { $0 + $1.subpackets.count } }
        }
    }

    @Test func level0Discovery() {
        let seeds = [Level0Discovery(features: DiscoveryTests.everyFeature).encoded(),
                     Level0Discovery(features: Array(DiscoveryTests.everyFeature.prefix(4))).encoded()]
        Self.run(seed: 14, seeds: seeds) { (try? Level0Discovery.decode($0))?.features.count }
    }
}
