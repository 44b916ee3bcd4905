import TestSupport
import Testing
@testable import TCGStorage

@Suite("Token codec")
struct TokenCodecTests {
    @Test("atoms encode in their shortest form, per the reference")
    func knownEncodings() {
        #expect(TokenEncoder.encode([.unsigned(5)]) == [0x05])
        #expect(TokenEncoder.encode([.unsigned(63)]) == [0x3F])
        #expect(TokenEncoder.encode([.unsigned(64)]) == [0x81, 0x40])
        #expect(TokenEncoder.encode([.unsigned(0x1234)]) == [0x82, 0x12, 0x34])
        #expect(TokenEncoder.encode([.unsigned(.max)]) == [0x88] + [UInt8](repeating: 0xFF, count: 8))
        #expect(TokenEncoder.encode([.signed(-1)]) == [0x7F])
        #expect(TokenEncoder.encode([.signed(-32)]) == [0x60])
        #expect(TokenEncoder.encode([.signed(31)]) == [0x5F])
        #expect(TokenEncoder.encode([.signed(-33)]) == [0x91, 0xDF])
        #expect(TokenEncoder.encode([.signed(200)]) == [0x92, 0x00, 0xC8])
        #expect(TokenEncoder.encode([.bytes([1, 2, 3])]) == [0xA3, 1, 2, 3])
        let pin = [UInt8](repeating: 0xAB, count: 32)
        // sedutil sends a hashed PIN as the medium atom D0 20 <32 bytes>.
        #expect(TokenEncoder.encode([.bytes(pin)]) == [0xD0, 0x20] + pin)
        let long = [UInt8](repeating: 7, count: 3000)
        #expect(Array(TokenEncoder.encode([.bytes(long)]).prefix(4)) == [0xE2, 0x00, 0x0B, 0xB8])
        #expect(TokenEncoder.encode([.startList, .endList, .startName, .endName, .call, .endOfData, .endOfSession, .empty])
                == [0xF0, 0xF1, 0xF2, 0xF3, 0xF8, 0xF9, 0xFA, 0xFF])
    }

    @Test("decoding honours sign bits and padded integers")
    func decodeForms() throws {
        #expect(try TokenDecoder.decode([0x7F]) == [.signed(-1)])
        #expect(try TokenDecoder.decode([0x91, 0xFF]) == [.signed(-1)])
        #expect(try TokenDecoder.decode([0xC0, 0x02, 0x01, 0x00]) == [.unsigned(0x100)])
        #expect(try TokenDecoder.decode([0xE0, 0x00, 0x00, 0x02, 0x12, 0x34]) == [.unsigned(0x1234)])
        // Nine bytes with a zero pad still fit 64 bits.
        #expect(try TokenDecoder.decode([0x89, 0x00] + [UInt8](repeating: 0xFF, count: 8)) == [.unsigned(.max)])
        #expect(try TokenDecoder.decode([0xD0, 0x02, 0xAA, 0xBB]) == [.bytes([0xAA, 0xBB])])
    }

    @Test("malformed atoms are typed errors")
    func malformed() {
        #expect(throws: TCGStorageError.self) { try TokenDecoder.decode([0x89, 0x01] + [UInt8](repeating: 0, count: 8)) }
        #expect(throws: TCGStorageError.self) { try TokenDecoder.decode([0xA5, 1, 2]) }
        #expect(throws: TCGStorageError.self) { try TokenDecoder.decode([0xE4]) }
        #expect(throws: TCGStorageError.self) { try TokenDecoder.decode([0xF4]) }
        #expect(throws: TCGStorageError.self) { try TokenDecoder.decode([0xB1, 0x00]) }
        #expect(throws: TCGStorageError.self) { try TokenDecoder.decode([0xE2, 0xFF, 0xFF, 0xFF]) }
    }

    @Test("random tokens round-trip through encode and decode")
    func roundTrip() throws {
        var rng = SeededRandom(seed: 1)
        for _ in 0..<5_000 {
            var tokens: [Token] = []
            for _ in 0..<Int.random(in: 0...20, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: tokens.append(.unsigned(UInt64.random(in: 0...UInt64.max, using: &rng) >> UInt64.random(in: 0...63, using: &rng)))
                case 1: tokens.append(.signed(Int64.random(in: Int64.min...Int64.max, using: &rng) >> Int64.random(in: 0...63, using: &rng)))
                case 2: tokens.append(.bytes(rng.bytes(Int.random(in: 0...2100, using: &rng))))
                default: tokens.append(.control(ControlToken.allCases.randomElement(using: &rng) ?? .empty))
                }
            }
            #expect(try TokenDecoder.decode(TokenEncoder.encode(tokens)) == tokens)
        }
    }
}
