import Testing
@testable import KMIPCodec
import KMIP
import KMIPTestSupport

func hex(_ text: String) -> [UInt8] {
    let clean = text.filter { !$0.isWhitespace && $0 != "|" }
    var out: [UInt8] = []
    var index = clean.startIndex
    while index < clean.endIndex {
        let next = clean.index(index, offsetBy: 2)
        out.append(UInt8(clean[index..<next], radix: 16) ?? 0)
        index = next
    }
    return out
}

@Suite("TTLV codec")
struct TTLVTests {
    static let tag = Tag(0x42_0020)

    /// The examples of KMIP 1.x §9.1.2, byte for byte.
    static let specExamples: [(TTLV, String)] = [
        (TTLV(tag, .integer(8)), "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00"),
        (TTLV(tag, .longInteger(123_456_789_000_000_000)), "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00"),
        (TTLV(tag, .bigInteger(hex("00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00"))),
         "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00"),
        (TTLV(tag, .enumeration(255)), "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00"),
        (TTLV(tag, .boolean(true)), "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01"),
        (TTLV(tag, .textString("Hello World")), "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00"),
        (TTLV(tag, .byteString([1, 2, 3])), "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00"),
        (TTLV(tag, .dateTime(0x47DA_67F8)), "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8"),
        (TTLV(tag, .interval(864_000)), "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00"),
        (TTLV.structure(tag, [TTLV(Tag(0x42_0004), .enumeration(254)), TTLV(Tag(0x42_0005), .integer(255))]),
         "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00"),
    ]

    @Test("every §9.1.2 example encodes and decodes byte-exactly")
    func specVectors() throws {
        for (item, text) in Self.specExamples {
            #expect(TTLVCodec.encode(item) == hex(text), "\(item)")
            #expect(try TTLVCodec.decode(hex(text)) == item)
        }
    }

    @Test("the Big Integer example is 1234567890000000000000000000")
    func bigIntegerValue() {
        // 0x03FD35EB6BC2DF4618080000 = 1234567890000000000000000000; checked by long division in base 2^32.
        let bytes = hex("03 FD 35 EB 6B C2 DF 46 18 08 00 00")
        var limbs: [UInt64] = []  // base 10^9, little-endian
        var number = bytes
        while number.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            number = number.map { byte in
                let value = remainder << 8 | UInt64(byte)
                remainder = value % 1_000_000_000
                return UInt8(value / 1_000_000_000)
            }
            limbs.append(remainder)
        }
        let text = limbs.reversed().enumerated().map { i, limb in
            i == 0 ? String(limb) : String(repeating: "0", count: 9 - String(limb).count) + String(limb)
        }.joined()
        #expect(text == "1234567890000000000000000000")
    }

    @Test("a request captured from PyKMIP (Activate \"1\", KMIP 1.2) is what sedlock sends")
    func pyKMIPCapture() {
        let captured = hex("42007801000000704200770100000038420069010000002042006a0200000004000000010000000042006b02000000040000000200000000"
                           + "42000d0200000004000000010000000042000f010000002842005c05000000040000001200000000420079010000001042009407000000013100000000000000")
        let request = RequestMessage(version: .v1_2, items: [RequestBatchItem(.activate, payload: [.text(.uniqueIdentifier, "1")])])
        #expect(request.encoded() == captured)
    }

    @Test("negative big integers sign-extend; date-time extended round-trips")
    func moreTypes() throws {
        let negative = TTLV(Self.tag, .bigInteger([0xFF, 0x01]))
        #expect(Array(TTLVCodec.encode(negative).suffix(8)) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        let extended = TTLV(Self.tag, .dateTimeExtended(1_700_000_000_123_456))
        #expect(try TTLVCodec.decode(TTLVCodec.encode(extended)) == extended)
        #expect(extended.dateTimeValue == 1_700_000_000)
    }

    @Test("malformed TTLV is a typed error")
    func malformed() {
        let cases: [[UInt8]] = [
            [],
            hex("42 00 20 02 00 00 00 08 00 00 00 00 00 00 00 08"),            // Integer of 8 bytes
            hex("42 00 20 06 00 00 00 08 00 00 00 00 00 00 00 02"),            // Boolean 2
            hex("42 00 20 0C 00 00 00 00"),                                    // unknown type
            hex("42 00 20 07 00 00 00 02 FF FE 00 00 00 00 00 00"),            // not UTF-8
            hex("42 00 20 01 00 00 FF F0"),                                    // structure length lies
            hex("42 00 20 04 00 00 00 03 00 00 00 00 00 00 00 00"),            // Big Integer not a multiple of 8
            hex("42 00 20 02 00 00 00 04 00 00 00 08 00 00 00 00 00"),         // trailing byte
            hex("42 00 20 02 00 00 00 04 00 00 00 08 00 00 00 01"),            // Integer padding not zero
            hex("42 00 20 07 00 00 00 02 41 42 00 00 00 00 FF 00"),            // text padding not zero
            hex("42 00 20 08 00 00 00 01 07 00 00 00 00 00 00 2A"),            // byte-string padding not zero
        ]
        for bytes in cases {
            #expect(throws: TTLVError.self) { try TTLVCodec.decode(bytes) }
        }
        // A nesting bomb: structures inside structures.
        var bomb = TTLV(Self.tag, .integer(1))
        for _ in 0..<100 { bomb = .structure(Self.tag, [bomb]) }
        do {
            _ = try TTLVCodec.decode(TTLVCodec.encode(bomb))
            Issue.record("a nesting bomb decoded")
        } catch {
            #expect(error.code == .nestingTooDeep)
        }
        #expect(throws: TTLVError.self) { try TTLVCodec.decode([UInt8](repeating: 0, count: 2 << 20)) }
    }
}

@Suite("KMIP messages")
struct MessageTests {
    @Test("a message header announcing a length that is not a multiple of 8 is refused at once, not waited on")
    func messageLengthNotPadded() throws {
        #expect(throws: TTLVError.self) { try TTLVCodec.messageSize(header: [0x42, 0x00, 0x7B, 0x01, 0x00, 0x00, 0x00, 0x0C]) }
        #expect(try TTLVCodec.messageSize(header: [0x42, 0x00, 0x7B, 0x01, 0x00, 0x00, 0x00, 0x10]) == 24)
    }

    @Test("a response whose header's Batch Count is missing or differs from its items is refused")
    func batchCount() throws {
        let item: TTLV = .structure(.batchItem, [.enumeration(.resultStatus, 0)])
        for count in [nil, Int32(2), Int32(0)] {
            var header: [TTLV] = [ProtocolVersion.v1_4.ttlv, TTLV(.timeStamp, .dateTime(1))]
            if let count { header.append(.integer(.batchCount, count)) }
            let message: TTLV = .structure(.responseMessage, [.structure(.responseHeader, header), item])
            #expect(throws: TTLVError.self, "Batch Count \(String(describing: count))") { try ResponseMessage(decoding: TTLVCodec.encode(message)) }
        }
    }

    @Test("responses tolerate unknown fields and error items without an operation")
    func tolerantResponse() throws {
        let response: TTLV = .structure(.responseMessage, [
            .structure(.responseHeader, [ProtocolVersion.v1_0.ttlv, TTLV(.timeStamp, .dateTime(1)),
                                         .integer(.batchCount, 1), .text(Tag(0x54_0001), "vendor extension")]),
            .structure(.batchItem, [.enumeration(.resultStatus, 1), .enumeration(.resultReason, 3),
                                    .text(.resultMessage, "bad client"), .bytes(Tag(0x54_0002), [9])]),
        ])
        let parsed = try ResponseMessage(decoding: TTLVCodec.encode(response))
        #expect(parsed.version == .v1_0 && parsed.items.count == 1)
        #expect(parsed.items[0].operation == nil && parsed.items[0].resultReason == .authenticationNotSuccessful)
        #expect(parsed.items[0].resultMessage == "bad client")
    }

    @Test("attributes encode as 1.x Attribute and 2.0 tagged items, and parse back")
    func attributes() {
        let name = Attribute.name("drive-key")
        let v1 = name.encoded(for: .v1_4)
        #expect(v1.tag == .attribute && v1.child(.attributeName)?.textValue == "Name")
        #expect(Attribute(version1: v1) == name)
        let v2 = name.encoded(for: .v2_0)
        #expect(v2.tag == .name && v2.child(.nameValue)?.textValue == "drive-key")
        #expect(Attribute(version2: v2) == name)
        #expect(Attribute(version2: Attribute.state(.active).encoded(for: .v2_0)) == .state(.active))
        #expect(Attribute(version1: Attribute.objectGroup("sedlock").encoded(for: .v1_2)) == .objectGroup("sedlock"))
    }

    @Test("server addresses parse with default port 5696")
    func addresses() {
        #expect(ServerAddress("kms.example") == ServerAddress(host: "kms.example", port: 5696))
        #expect(ServerAddress("127.0.0.1:5697") == ServerAddress(host: "127.0.0.1", port: 5697))
        #expect(ServerAddress("[::1]:6000") == ServerAddress(host: "::1", port: 6000))
        #expect(ServerAddress("host:0") == nil && ServerAddress(":5") == nil && ServerAddress("a:b:c") == nil)
    }
}
