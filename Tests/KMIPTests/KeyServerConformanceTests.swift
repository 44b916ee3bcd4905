import Foundation
import Keys
import KMIP
import KMIPCodec
import KMIPTestSupport
import Testing

/// The simulated key server against the OASIS mandatory test cases' expectations (facts from the
/// KMIP 1.4 and 2.0 specifications, written here as our own tests), through its own request path.
@Suite("Simulated key server: KMIP conformance")
struct KeyServerConformanceTests {
    final class Server {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kms-conf-\(UUID().uuidString.prefix(8))")
        init() throws { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(at: directory) }
        var exchange: InProcessKeyServer { InProcessKeyServer(directory: directory, identity: "conformance", port: 5696) }
        func client(_ version: ProtocolVersion) -> KMIPClient { KMIPClient(connection: exchange, version: version) }

        /// One operation, answered as the server answers it (failures included).
        func send(_ operation: KMIPCodec.Operation, _ payload: [TTLV], version: ProtocolVersion) throws -> ResponseBatchItem {
            let response = try exchange.send(RequestMessage(version: version, items: [RequestBatchItem(operation, payload: payload)]),
                                             deadline: .after(seconds: 5))
            return try #require(response.items.first)
        }
    }

    @Test("GetAttributes carries Digest (SHA-256 of the key) and a Last Change Date that moves with every change",
          arguments: [ProtocolVersion.v1_4, .v2_0])
    func digestAndLastChangeDate(version: ProtocolVersion) throws {
        let server = try Server()
        let client = server.client(version)
        let material: [UInt8] = Array(repeating: 0x5A, count: 32)
        let id = try client.registerSecret(Secret(material), attributes: [.name("conformance-key")])
        let before = try client.getAttributes(id)
        let digest = try #require(before.first { $0.attributeName == "Digest" })
        guard case .other(_, let value) = digest else { Issue.record("Digest is not a structure: \(digest)"); return }
        #expect(value.child(.hashingAlgorithm)?.enumerationValue == KMIPConstant.hashingAlgorithmSHA256)
        #expect(value.child(.digestValue)?.bytesValue?.count == 32)
        func lastChange(_ attributes: [Attribute]) -> Int64? {
            attributes.compactMap { if case .lastChangeDate(let v) = $0 { return v } else { return nil } }.first
        }
        let first = try #require(lastChange(before))
        try client.addAttribute(id, .objectGroup("moved"))
        let second = try #require(lastChange(try client.getAttributes(id)))
        try client.activate(id)
        let third = try #require(lastChange(try client.getAttributes(id)))
        #expect(first < second && second < third, "\(first) \(second) \(third)")
    }

    @Test("ModifyAttribute of a read-only attribute answers Permission Denied, and changes nothing", arguments: [ProtocolVersion.v1_4, .v2_0])
    func readOnlyAttributes(version: ProtocolVersion) throws {
        let server = try Server()
        let client = server.client(version)
        let id = try client.registerSecret(Secret(Array(repeating: 1, count: 32)), attributes: [.name("ro")])
        do {
            try client.modifyAttribute(id, current: .cryptographicUsageMask(12), new: .cryptographicUsageMask(4))
            Issue.record("a read-only attribute was modified")
        } catch {
            #expect(error.resultReason == .permissionDenied, "\(error)")
        }
        #expect(try client.getAttributes(id, names: ["Cryptographic Usage Mask"]) == [.cryptographicUsageMask(12)])
    }

    @Test("SecretData keeps the Key Format Type it was registered with: Raw in, Raw out")
    func secretDataKeepsItsFormat() throws {
        let server = try Server()
        let object: TTLV = .structure(.secretData, [
            .enumeration(.secretDataType, KMIPConstant.secretDataTypePassword),
            .structure(.keyBlock, [
                .enumeration(.keyFormatType, KMIPConstant.keyFormatRaw),
                .structure(.keyValue, [.bytes(.keyMaterial, Array(repeating: 7, count: 16))]),
            ]),
        ])
        let registered = try server.send(.register, [.enumeration(.objectType, ObjectType.secretData.rawValue),
                                                     Attribute.container([], version: .v1_4), object], version: .v1_4)
        let id = try #require(registered.payload?.child(.uniqueIdentifier)?.textValue, "\(registered)")
        let got = try server.send(.get, [.text(.uniqueIdentifier, id)], version: .v1_4)
        #expect(got.payload?.child(.secretData)?.child(.keyBlock)?.child(.keyFormatType)?.enumerationValue == KMIPConstant.keyFormatRaw)
    }
}

extension KeyServerConformanceTests {
    @Test("KMIP 2.0 GetAttributes naming an attribute the object lacks (Deactivation Date) answers the others")
    func absentAttributeAnswersTheRest() throws {
        let server = try Server()
        let id = try server.client(.v2_0).registerSecret(Secret(Array(repeating: 3, count: 32)), attributes: [.name("partial")])
        let deactivationDate: UInt32 = 0x42_002F
        let answer = try server.send(.getAttributes, [.text(.uniqueIdentifier, id), .enumeration(.attributeReference, deactivationDate),
                                                      Attribute.reference(named: "Name")], version: .v2_0)
        #expect(answer.resultStatus == .success, "\(answer)")
        let attributes = answer.payload.map { Attribute.parse(from: $0) } ?? []
        #expect(attributes == [.name("partial")], "\(attributes)")
    }
}

extension KeyServerConformanceTests {
    static let owner: Attribute = .other(name: "x-Owner", value: .text(.attributeValue, "storage-team"))
    static let newOwner: Attribute = .other(name: "x-Owner", value: .text(.attributeValue, "security-team"))

    @Test("custom attributes (x-…; 2.0's vendor attribute x): registered with the object, got, located, modified and deleted",
          arguments: [ProtocolVersion.v1_4, .v2_0])
    func customAttributes(version: ProtocolVersion) throws {
        let server = try Server()
        let client = server.client(version)
        let id = try client.registerSecret(Secret(Array(repeating: 7, count: 32)), attributes: [.name("custom"), Self.owner])
        #expect(try client.getAttributes(id).contains(Self.owner))
        #expect(try client.locate([Self.owner]) == [id])
        try client.modifyAttribute(id, current: Self.owner, new: Self.newOwner)
        #expect(try client.locate([Self.owner]).isEmpty && client.locate([Self.newOwner]) == [id])
        try client.deleteAttribute(id, Self.newOwner)
        #expect(try !client.getAttributes(id).contains { $0.attributeName == "x-Owner" })
        try client.addAttribute(id, Self.owner)
        #expect(try client.locate([Self.owner]) == [id])
        // The server's own (y-) attributes are not the client's to change.
        #expect { try client.addAttribute(id, .other(name: "y-Audit", value: .text(.attributeValue, "x"))) } throws: {
            ($0 as? KeyServerError)?.resultReason == .permissionDenied
        }
    }

    @Test("1.x DeleteAttribute answers with the attribute it deleted")
    func deleteAnswersTheAttribute() throws {
        let server = try Server()
        let id = try server.client(.v1_4).registerSecret(Secret(Array(repeating: 3, count: 32)), attributes: [.objectGroup("g1"), .objectGroup("g2")])
        let answer = try server.send(.deleteAttribute, [.text(.uniqueIdentifier, id), .text(.attributeName, "Object Group"),
                                                        .integer(.attributeIndex, 1)], version: .v1_4)
        #expect(answer.resultStatus == .success, "\(answer)")
        let deleted = try #require(answer.payload?.child(.attribute).flatMap(Attribute.init(version1:)))
        #expect(deleted == .objectGroup("g2") && answer.payload?.child(.uniqueIdentifier)?.textValue == id)
        #expect(try server.client(.v1_4).getAttributes(id, names: ["Object Group"]) == [.objectGroup("g1")])
    }

    @Test("KMIP 2.0: SetAttribute adds or replaces a single-valued attribute and refuses a multi-valued one; DeleteAttribute by Attribute Reference removes every instance")
    func setAndDeleteByReference() throws {
        let server = try Server()
        let client = server.client(.v2_0)
        let id = try client.registerSecret(Secret(Array(repeating: 9, count: 32)), attributes: [.name("set")])
        for value in [Self.owner, Self.newOwner] {
            let set = try server.send(.setAttribute, [.text(.uniqueIdentifier, id), .structure(.newAttribute, [value.encoded(for: .v2_0)])],
                                      version: .v2_0)
            #expect(set.resultStatus == .success, "\(set)")
            #expect(try client.getAttributes(id).filter { $0.attributeName == "x-Owner" } == [value])
        }
        let multi = try server.send(.setAttribute, [.text(.uniqueIdentifier, id),
                                                    .structure(.newAttribute, [Attribute.objectGroup("g").encoded(for: .v2_0)])], version: .v2_0)
        #expect(multi.resultStatus == .operationFailed && multi.resultReason == .invalidField, "\(multi)")
        try client.addAttribute(id, .objectGroup("a"))
        try client.addAttribute(id, .objectGroup("b"))
        for name in ["Object Group", "x-Owner"] {
            let deleted = try server.send(.deleteAttribute, [.text(.uniqueIdentifier, id), Attribute.reference(named: name)], version: .v2_0)
            #expect(deleted.resultStatus == .success, "\(name): \(deleted)")
        }
        let left = try client.getAttributes(id).map(\.attributeName)
        #expect(!left.contains("Object Group") && !left.contains("x-Owner") && left.contains("Name"), "\(left)")
    }
}

extension KeyServerConformanceTests {
    static func protectStop(_ date: Int64) -> Attribute { .other(name: "Protect Stop Date", value: TTLV(.attributeValue, .dateTime(date))) }

    @Test("Locate by dates: two instances of a date attribute are an inclusive range, one its exact value (Protect Stop Date kept from registration, Activation Date set by Activate)",
          arguments: [ProtocolVersion.v1_4, .v2_0])
    func locateByDates(version: ProtocolVersion) throws {
        let server = try Server()
        let client = server.client(version)
        let base: Int64 = 1_900_000_000
        var ids: [String] = []
        for n in 0..<3 {
            ids.append(try client.registerSecret(Secret(Array(repeating: UInt8(n + 1), count: 32)),
                                                 attributes: [.name("dated-\(n)"), Self.protectStop(base + Int64(n) * 1000)]))
        }
        #expect(try client.getAttributes(ids[1], names: ["Protect Stop Date"]) == [Self.protectStop(base + 1000)])
        #expect(Set(try client.locate([Self.protectStop(base), Self.protectStop(base + 1500)])) == Set(ids.prefix(2)))
        #expect(try client.locate([Self.protectStop(base + 2000)]) == [ids[2]])
        #expect(try client.locate([Self.protectStop(base + 2001), Self.protectStop(base + 9000)]).isEmpty)
        try client.activate(ids[0])
        let now = Int64(Date().timeIntervalSince1970)
        #expect(try client.locate([.activationDate(now - 60), .activationDate(now + 60)]) == [ids[0]])
        // A date filter and another attribute: both must hold.
        #expect(try client.locate([Self.protectStop(base), Self.protectStop(base + 1500), .name("dated-1")]) == [ids[1]])
    }

    @Test("a Transparent Symmetric Key is registered and got back as it came: Key Format Type 7, the bytes in the Key Material's Key",
          arguments: [ProtocolVersion.v1_4, .v2_0])
    func transparentSymmetricKey(version: ProtocolVersion) throws {
        let server = try Server()
        let key = [UInt8](repeating: 0x3C, count: 32)
        let object: TTLV = .structure(.symmetricKey, [.structure(.keyBlock, [
            .enumeration(.keyFormatType, KMIPConstant.keyFormatTransparentSymmetric),
            .structure(.keyValue, [.structure(.keyMaterial, [.bytes(.key, key)])]),
            .enumeration(.cryptographicAlgorithm, KMIPConstant.algorithmAES), .integer(.cryptographicLength, 256),
        ])])
        let registered = try server.send(.register, [.enumeration(.objectType, ObjectType.symmetricKey.rawValue),
                                                     Attribute.container([.name("transparent")], version: version), object], version: version)
        let id = try #require(registered.payload?.child(.uniqueIdentifier)?.textValue, "\(registered)")
        let got = try server.send(.get, [.text(.uniqueIdentifier, id)], version: version)
        let block = got.payload?.child(.symmetricKey)?.child(.keyBlock)
        #expect(block?.child(.keyFormatType)?.enumerationValue == KMIPConstant.keyFormatTransparentSymmetric)
        #expect(block?.child(.keyValue)?.child(.keyMaterial)?.child(.key)?.bytesValue == key)
        // Key Material of the wrong shape for its format is refused, and nothing is kept.
        let wrong: TTLV = .structure(.symmetricKey, [.structure(.keyBlock, [
            .enumeration(.keyFormatType, KMIPConstant.keyFormatTransparentSymmetric),
            .structure(.keyValue, [.bytes(.keyMaterial, key)]),
        ])])
        let refused = try server.send(.register, [.enumeration(.objectType, ObjectType.symmetricKey.rawValue),
                                                  Attribute.container([], version: version), wrong], version: version)
        #expect(refused.resultStatus == .operationFailed && refused.resultReason == .invalidField, "\(refused)")
        #expect(try server.client(version).locate([.objectType(.symmetricKey)]) == [id])
    }

    @Test("an Opaque Object is registered, got (its Opaque Data Type and Value as given), located by type and has a Digest",
          arguments: [ProtocolVersion.v1_4, .v2_0])
    func opaqueObject(version: ProtocolVersion) throws {
        let server = try Server()
        let value = Array("a blob only its owner understands".utf8)
        let vendorType: UInt32 = 0x8000_0001
        let registered = try server.send(.register, [
            .enumeration(.objectType, ObjectType.opaqueData.rawValue), Attribute.container([.name("opaque")], version: version),
            .structure(.opaqueObject, [.enumeration(.opaqueDataType, vendorType), .bytes(.opaqueDataValue, value)]),
        ], version: version)
        let id = try #require(registered.payload?.child(.uniqueIdentifier)?.textValue, "\(registered)")
        let got = try server.send(.get, [.text(.uniqueIdentifier, id)], version: version)
        #expect(got.payload?.child(.objectType)?.enumerationValue == ObjectType.opaqueData.rawValue)
        #expect(got.payload?.child(.opaqueObject)?.child(.opaqueDataType)?.enumerationValue == vendorType)
        #expect(got.payload?.child(.opaqueObject)?.child(.opaqueDataValue)?.bytesValue == value)
        let client = server.client(version)
        #expect(try client.locate([.objectType(.opaqueData)]) == [id])
        #expect(try client.getAttributes(id).contains { $0.attributeName == "Digest" })
    }

    @Test("Check: an Active key within its usage mask passes (the Unique Identifier back); a usage outside the mask, or an object not Active, fails")
    func check() throws {
        let server = try Server()
        let client = server.client(.v1_4)
        let id = try client.createSymmetricKey(attributes: [.name("checked"), .cryptographicUsageMask(KMIPConstant.usageEncrypt | KMIPConstant.usageDecrypt)])
        let early = try server.send(.check, [.text(.uniqueIdentifier, id), .integer(.cryptographicUsageMask, KMIPConstant.usageEncrypt)], version: .v1_4)
        #expect(early.resultStatus == .operationFailed && early.resultReason == .illegalOperation, "\(early)")
        try client.activate(id)
        let passes = try server.send(.check, [.text(.uniqueIdentifier, id), .integer(.cryptographicUsageMask, KMIPConstant.usageEncrypt)], version: .v1_4)
        #expect(passes.resultStatus == .success && passes.payload?.child(.uniqueIdentifier)?.textValue == id, "\(passes)")
        let exportMask: Int32 = 0x40
        let fails = try server.send(.check, [.text(.uniqueIdentifier, id), .integer(.cryptographicUsageMask, exportMask)], version: .v1_4)
        #expect(fails.resultStatus == .operationFailed && fails.resultReason == .illegalOperation, "\(fails)")
        let missing = try server.send(.check, [.text(.uniqueIdentifier, "999")], version: .v1_4)
        #expect(missing.resultReason == .itemNotFound)
        #expect(try client.query().operations.contains(.check))
    }
}
