import Foundation
import Keys
import KMIP
import KMIPTestSupport
import Platform
import SedSimulator
import Testing

/// Batched requests: several operations in one message, answers matched by Unique Batch Item ID,
/// and a server that answers something else than what was asked is refused.
@Suite("KMIP batches")
struct BatchTests {
    /// The simulated key server in process, with a hook that rewrites its answers.
    final class TamperingExchange: KMIPExchange, @unchecked Sendable {
        let inner: InProcessKeyServer
        var tamper: ((inout ResponseMessage) -> Void)?
        private(set) var messages = 0
        /// Every answer as handed to the client (sharing its buffers with the client's copy).
        private(set) var answers: [ResponseMessage] = []
        var server: ServerAddress { inner.server }

        init(directory: URL) { inner = InProcessKeyServer(directory: directory, identity: "appliance", port: 5800) }

        func send(_ request: RequestMessage, deadline: Deadline) throws(KeyServerError) -> ResponseMessage {
            messages += 1
            var response = try inner.send(request, deadline: deadline)
            tamper?(&response)
            answers.append(response)
            return response
        }

        func connect() throws(KeyServerError) {}
        func close() {}
        var tlsSummary: String? { nil }
    }

    final class Server {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kms-batch-\(UUID().uuidString.prefix(8))")
        let exchange: TamperingExchange
        let client: KMIPClient
        var ids: [String] = []

        init(version: ProtocolVersion) throws {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            exchange = TamperingExchange(directory: directory)
            client = KMIPClient(connection: exchange, version: version)
            for n in 0..<3 {
                let id = try client.registerSecret(Secret(Array(repeating: UInt8(n + 1), count: 32)), attributes: [.name("key-\(n)")])
                try client.activate(id)
                ids.append(id)
            }
        }

        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    @Test("three keys with their names and states in one message; a destroyed one fails alone with Item Not Found",
          arguments: [ProtocolVersion.v1_2, .v1_4, .v2_0])
    func getMany(version: ProtocolVersion) throws {
        let s = try Server(version: version)
        try s.client.revoke(s.ids[2], reason: .keyCompromise)
        try s.client.destroy(s.ids[2])
        let before = s.exchange.messages
        let answers = try s.client.getMany(s.ids)
        #expect(s.exchange.messages == before + 1)
        for n in 0..<2 {
            let (object, attributes) = try #require(try answers[s.ids[n]]?.get())
            #expect(object.material.copyBytes() == Array(repeating: UInt8(n + 1), count: 32))
            #expect(attributes.contains(.name("key-\(n)")) && KMIPClient.state(in: attributes) == .active)
        }
        guard case .failure(let error)? = answers[s.ids[2]] else { Issue.record("a destroyed object was returned"); return }
        #expect(error.resultReason == .itemNotFound)
    }

    @Test("a Get answer's key material is cleared in the decoded message once it is in a Secret: every copy of the answer reads zeros")
    func decodedKeyMaterialCleared() throws {
        let s = try Server(version: .v1_4)
        let answers = try s.client.getMany(s.ids)
        let object = try #require(try answers[s.ids[1]]?.get().0)
        #expect(object.material.copyBytes() == Array(repeating: 2, count: 32))
        func byteStrings(_ item: TTLV) -> [[UInt8]] {
            if case .byteString(let bytes) = item.value { return [bytes] }
            return item.children.flatMap(byteStrings)
        }
        let received = try #require(s.exchange.answers.last).items.compactMap(\.payload).flatMap(byteStrings)
        #expect(received.count >= 3, "the answer's key values")
        #expect(received.allSatisfy { $0.allSatisfy { $0 == 0 } }, "key material left in the decoded answer")
    }

    @Test("answers that do not match the batch are refused: no IDs, an unknown ID, a second answer, one missing, another protocol version")
    func mismatchedAnswers() throws {
        let s = try Server(version: .v1_4)
        let tamperings: [(String, (inout ResponseMessage) -> Void)] = [
            ("no IDs", { response in for i in response.items.indices { response.items[i].uniqueBatchItemID = nil } }),
            ("unknown ID", { response in response.items[0].uniqueBatchItemID = [9, 9, 9, 9] }),
            ("a second answer", { response in response.items.append(response.items[0]) }),
            ("one missing", { response in response.items.removeLast() }),
            ("another version", { response in response.version = .v1_0 }),
        ]
        for (what, tamper) in tamperings {
            s.exchange.tamper = tamper
            do {
                _ = try s.client.getMany(s.ids)
                Issue.record("\(what): accepted")
            } catch {
                #expect(error.code == .keyServerProtocolError, "\(what): \(error)")
            }
        }
    }

    @Test("a single request answered in another protocol version, or with two answers, is refused")
    func singleRequestChecks() throws {
        let s = try Server(version: .v1_4)
        /// The Get payload with Key Wrapping Data added to the key block (the material left as it was).
        func wrapped(_ payload: TTLV?) -> TTLV? {
            guard let payload, case .structure(let fields) = payload.value else { return payload }
            return .structure(payload.tag, fields.map { field in
                guard field.tag == .secretData || field.tag == .symmetricKey, case .structure(let parts) = field.value else { return field }
                return .structure(field.tag, parts.map { part in
                    guard part.tag == .keyBlock, case .structure(let block) = part.value else { return part }
                    return .structure(.keyBlock, block + [.structure(.keyWrappingData, [.enumeration(Tag(0x42_009E), 1)])])
                })
            })
        }
        for (what, tamper) in [("another version", { (r: inout ResponseMessage) in r.version = .v1_2 }),
                               ("two answers", { (r: inout ResponseMessage) in r.items.append(r.items[0]) }),
                               ("an unsent Unique Batch Item ID", { (r: inout ResponseMessage) in r.items[0].uniqueBatchItemID = [1] }),
                               ("wrapped key material", { (r: inout ResponseMessage) in r.items[0].payload = wrapped(r.items[0].payload) })]
                as [(String, (inout ResponseMessage) -> Void)] {
            s.exchange.tamper = tamper
            do {
                _ = try s.client.get(s.ids[0])
                Issue.record("\(what): accepted")
            } catch {
                #expect(error.code == .keyServerProtocolError, "\(what): \(error)")
            }
        }
        s.exchange.tamper = nil
        #expect(try s.client.get(s.ids[0]).material.count == 32)
        // DiscoverVersions answered with no version in common: no version is assumed.
        s.exchange.tamper = { r in r.items[0].payload = .structure(.responsePayload, []) }
        #expect { try s.client.negotiateVersion() } throws: { ($0 as? KeyServerError)?.code == .keyServerProtocolError }
    }

    @Test("a Get answered for another object than the one asked is refused, batched or not; its key is never returned")
    func answerForAnotherObject() throws {
        let s = try Server(version: .v1_4)
        let other = s.ids[1]
        s.exchange.tamper = { response in
            for i in response.items.indices where response.items[i].operation == .get {
                guard case .structure(let children)? = response.items[i].payload?.value else { continue }
                response.items[i].payload = .structure(.responsePayload, children.map {
                    $0.tag == .uniqueIdentifier ? .text(.uniqueIdentifier, other) : $0
                })
            }
        }
        do {
            _ = try s.client.get(s.ids[0])
            Issue.record("accepted")
        } catch {
            #expect(error.code == .keyServerProtocolError && error.cause.contains("answered for"))
        }
        let answers = try s.client.getMany([s.ids[0], s.ids[1]])
        guard case .failure(let error)? = answers[s.ids[0]] else { Issue.record("the swapped answer was accepted"); return }
        #expect(error.code == .keyServerProtocolError)
        #expect((try? answers[s.ids[1]]?.get()) != nil)
    }

    @Test("KMIP 2.0 Attribute References in both forms: GetAttributes by tag (Enumeration) or by name (structure) returns just those; GetAttributeList answers tags; the client reads both")
    func attributeReferences() throws {
        let s = try Server(version: .v2_0)
        func getAttributes(_ references: [TTLV]) throws -> [Attribute] {
            let response = try s.exchange.send(RequestMessage(version: .v2_0, items: [
                RequestBatchItem(.getAttributes, payload: [.text(.uniqueIdentifier, s.ids[0])] + references),
            ]), deadline: .never)
            let item = try #require(response.items.first)
            #expect(item.resultStatus == .success, "\(String(describing: item.resultMessage))")
            return Attribute.parse(from: try #require(item.payload))
        }
        let stateTag = try #require(Attribute.tagsByName["State"])
        let byTag = try getAttributes([.enumeration(.attributeReference, stateTag.rawValue)])
        #expect(byTag == [.state(.active)], "\(byTag)")
        let byName = try getAttributes([.structure(.attributeReference, [.text(.attributeName, "Name")])])
        #expect(byName == [.name("key-0")], "\(byName)")
        #expect(try getAttributes([]).count > 2)

        let list = try s.exchange.send(RequestMessage(version: .v2_0, items: [
            RequestBatchItem(.getAttributeList, payload: [.text(.uniqueIdentifier, s.ids[0])]),
        ]), deadline: .never)
        let references = try #require(list.items.first?.payload).all(.attributeReference)
        #expect(!references.isEmpty && references.allSatisfy { $0.enumerationValue != nil }, "\(references)")
        let names = try s.client.getAttributeList(s.ids[0])
        #expect(names.contains("State") && names.contains("Name"), "\(names)")
        #expect(try s.client.getAttributes(s.ids[0], names: ["State"]) == [.state(.active)])
    }
}
