import TestSupport
import Testing
@testable import KMIPCodec

@Suite("TTLV decoder under mutation")
struct TTLVMutationTests {
    @Test("100,000 mutated and random inputs: a value or a typed error, never a trap")
    func mutate() {
        let seeds: [[UInt8]] = [
            RequestMessage(version: .v1_4, items: [RequestBatchItem(.register, payload: [
                .enumeration(.objectType, 7), Attribute.container([.name("k"), .objectGroup("g")], version: .v1_4),
                .structure(.secretData, [.enumeration(.secretDataType, 1),
                                         .structure(.keyBlock, [.enumeration(.keyFormatType, 2),
                                                                .structure(.keyValue, [.bytes(.keyMaterial, [1, 2, 3])])])]),
            ])]).encoded(),
            TTLVCodec.encode(.structure(.responseMessage, [
                .structure(.responseHeader, [ProtocolVersion.v2_0.ttlv, TTLV(.timeStamp, .dateTimeExtended(5)), .integer(.batchCount, 1)]),
                .structure(.batchItem, [.enumeration(.operation, 0x0A), .enumeration(.resultStatus, 0),
                                        .structure(.responsePayload, [.text(.uniqueIdentifier, "42"), TTLV(.state, .bigInteger([0, 0, 0, 0, 0, 0, 0, 1]))])]),
            ])),
        ]
        var rng = SeededRandom(seed: 99)
        var decoded = 0
        for i in 0..<100_000 {
            var input: [UInt8]
            if i % 10 == 9 {
                input = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                input = seeds[i % seeds.count]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0 where !input.isEmpty: input[Int.random(in: 0..<input.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                    case 1 where !input.isEmpty: input = Array(input.prefix(Int.random(in: 0..<input.count, using: &rng)))
                    case 2 where input.count > 8:
                        let at = Int.random(in: 0..<(input.count - 8), using: &rng)
                        input[at + 4] = 0x7F
                    default: input.append(UInt8.random(in: 0...255, using: &rng))
                    }
                }
            }
            if let item = try? TTLVCodec.decode(input) {
                decoded += 1
                _ = try? ResponseMessage(item)
                #expect(TTLVCodec.encode(item).count <= input.count + 8)
            }
        }
        #expect(decoded > 0)
    }
}
