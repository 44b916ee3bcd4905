import Keys
import Platform
import Synchronization

/// A managed object as Get returns it. Key material is held as a `Secret`.
public struct ManagedObject: Sendable {
    public var uniqueIdentifier: String
    public var objectType: ObjectType
    public var material: Secret
}

/// Typed KMIP operations against one server, in the chosen protocol version.
public final class KMIPClient: Sendable {
    public let connection: any KMIPExchange
    private let negotiated: Mutex<ProtocolVersion>
    /// Every request and its whole answer end before this (the caller's wait, on the system clock).
    public let deadline: Deadline

    public init(connection: any KMIPExchange, version: ProtocolVersion = .v1_2, deadline: Deadline = .never) {
        self.connection = connection
        negotiated = Mutex(version)
        self.deadline = deadline
    }

    /// The protocol version requests are sent in (changed by `negotiateVersion`).
    public var version: ProtocolVersion {
        get { negotiated.withLock { $0 } }
        set { negotiated.withLock { $0 = newValue } }
    }

    public var server: String { connection.server.description }

    /// Runs one operation; a failed result becomes a `KeyServerError` with the server's reason and message.
    @discardableResult
    func perform(_ operation: Operation, _ payload: [TTLV], version override: ProtocolVersion? = nil) throws(KeyServerError) -> TTLV {
        let asked = override ?? version
        let response = try connection.send(RequestMessage(version: asked, items: [RequestBatchItem(operation, payload: payload)]),
                                           deadline: deadline)
        // DiscoverVersions goes out in 1.1 framing, which servers answer in various versions; every
        // other answer must be in the version asked.
        guard operation == .discoverVersions || response.version == asked else {
            throw KeyServerError(.keyServerProtocolError, server: server, cause: "asked in KMIP \(asked), answered in \(response.version)",
                                 fix: "the server is faulty")
        }
        guard response.items.count == 1, let item = response.items.first else {
            throw KeyServerError(.keyServerProtocolError, server: server,
                                 cause: response.items.isEmpty ? "empty response" : "\(response.items.count) answers to one request",
                                 fix: "the server is faulty")
        }
        // A single request carries no Unique Batch Item ID: an answer naming one answers something else.
        guard item.uniqueBatchItemID == nil else {
            throw KeyServerError(.keyServerProtocolError, server: server, cause: "the answer names a Unique Batch Item ID that was never sent",
                                 fix: "the server is faulty")
        }
        return try result(of: item, asked: operation)
    }

    /// Several operations in one request message: one round trip. Answers are matched to requests
    /// by Unique Batch Item ID; an answer for no request, a request without an answer, or another
    /// protocol version in the response header fails the whole batch. Each item's own failure is
    /// its result.
    func performBatch(_ operations: [(Operation, [TTLV])]) throws(KeyServerError) -> [Result<TTLV, KeyServerError>] {
        let items = operations.enumerated().map { index, operation in
            RequestBatchItem(operation.0, payload: operation.1, uniqueBatchItemID: Self.batchItemID(index))
        }
        let asked = version
        let response = try connection.send(RequestMessage(version: asked, items: items), deadline: deadline)
        guard response.version == asked else {
            throw KeyServerError(.keyServerProtocolError, server: server, cause: "asked in KMIP \(asked), answered in \(response.version)",
                                 fix: "the server is faulty")
        }
        var results: [Result<TTLV, KeyServerError>?] = Array(repeating: nil, count: items.count)
        for item in response.items {
            guard let id = item.uniqueBatchItemID, let index = items.firstIndex(where: { $0.uniqueBatchItemID == id }), results[index] == nil else {
                throw KeyServerError(.keyServerProtocolError, server: server,
                                     cause: "an answer whose Unique Batch Item ID matches no request of the batch (or a second answer to one)",
                                     fix: "the server is faulty")
            }
            do throws(KeyServerError) {
                results[index] = .success(try result(of: item, asked: operations[index].0))
            } catch {
                results[index] = .failure(error)
            }
        }
        var out: [Result<TTLV, KeyServerError>] = []
        for (index, result) in results.enumerated() {
            guard let result else {
                throw KeyServerError(.keyServerProtocolError, server: server,
                                     cause: "no answer to batch item \(index + 1) (\(operations[index].0)) of \(items.count)",
                                     fix: "the server is faulty")
            }
            out.append(result)
        }
        return out
    }

    private static func batchItemID(_ index: Int) -> [UInt8] {
        withUnsafeBytes(of: UInt32(index).bigEndian) { Array($0) }
    }

    /// The payload of a successful item; a failed one as a `KeyServerError`.
    private func result(of item: ResponseBatchItem, asked operation: Operation) throws(KeyServerError) -> TTLV {
        guard item.resultStatus == .success else {
            let reason = item.resultReason
            let message = item.resultMessage.map { ": \($0)" } ?? ""
            let what = "\(operation) failed: \(reason?.description ?? "no reason given")\(message)"
            switch reason {
            case ResultReason.authenticationNotSuccessful?:
                throw KeyServerError(.keyServerInvalidAuth, server: server, cause: what,
                                     fix: "the server did not accept the client's identity: check EKU clientAuth and the server's trust settings",
                                     resultReason: reason)
            case ResultReason.permissionDenied?:
                throw KeyServerError(.keyServerInvalidAuth, server: server, cause: what,
                                     fix: "this client identity may not do that to the object (owner or policy), "
                                        + "or its state forbids it (revoke an Active object before destroying it)",
                                     resultReason: reason)
            default:
                throw KeyServerError(.keyServerFailed, server: server, cause: what,
                                     fix: "see the server's reason; the request was refused", resultReason: reason)
            }
        }
        if let op = item.operation, op != operation {
            throw KeyServerError(.keyServerProtocolError, server: server, cause: "asked \(operation), answered \(op)",
                                 fix: "the server is faulty")
        }
        return item.payload ?? .structure(.responsePayload, [])
    }

    private func uniqueIdentifier(_ payload: TTLV, _ operation: Operation) throws(KeyServerError) -> String {
        guard let id = payload.child(.uniqueIdentifier)?.textValue else {
            throw KeyServerError(.keyServerProtocolError, server: server, cause: "\(operation) returned no Unique Identifier",
                                 fix: "the server is faulty")
        }
        return id
    }

    // MARK: Operations

    /// The versions both sides speak, best first. Sent as 1.0 framing, which every server reads.
    public func discoverVersions(offering: [ProtocolVersion] = ProtocolVersion.supported) throws(KeyServerError) -> [ProtocolVersion] {
        let payload = try perform(.discoverVersions, offering.map(\.ttlv), version: .v1_1)
        var versions: [ProtocolVersion] = []
        for item in payload.all(.protocolVersion) {
            if let v = ProtocolVersion(item) { versions.append(v) }
        }
        return versions
    }

    /// Chooses the newest version both sides speak (DiscoverVersions); none in common is an error.
    @discardableResult
    public func negotiateVersion() throws(KeyServerError) -> ProtocolVersion {
        let common = try discoverVersions()
        // An empty answer means the server speaks none of the versions offered: going on in
        // one of them anyway would be answered in a protocol the server does not have.
        guard let chosen = common.first(where: { ProtocolVersion.supported.contains($0) }) else {
            throw KeyServerError(.keyServerProtocolError, server: server,
                                 cause: "the server speaks none of KMIP \(ProtocolVersion.supported.map(\.description).joined(separator: ", "))"
                                     + (common.isEmpty ? " (DiscoverVersions answered an empty list)" : " (it offers \(common.map(\.description).joined(separator: ", ")))"),
                                 fix: "use a key server that speaks KMIP 1.2 or later")
        }
        version = chosen
        return version
    }

    public struct QueryResult: Sendable, Hashable {
        public var operations: [Operation]
        public var objectTypes: [ObjectType]
        public var vendorIdentification: String?
    }

    public func query() throws(KeyServerError) -> QueryResult {
        let payload = try perform(.query, [QueryFunction.operations, .objects, .serverInformation].map {
            .enumeration(.queryFunction, $0.rawValue)
        })
        // Plain loops on purpose: Swift 6.3's release optimizer crashes (CopyPropagation) on
        // `compactMap { $0.x.map(T.init(rawValue:)) }` inside typed-throws functions.
        var operations: [Operation] = []
        for item in payload.all(.operation) {
            if let raw = item.enumerationValue { operations.append(Operation(rawValue: raw)) }
        }
        var objectTypes: [ObjectType] = []
        for item in payload.all(.objectType) {
            if let raw = item.enumerationValue, let type = ObjectType(rawValue: raw) { objectTypes.append(type) }
        }
        return QueryResult(operations: operations, objectTypes: objectTypes,
                           vendorIdentification: payload.child(.vendorIdentification)?.textValue)
    }

    /// Creates an AES symmetric key on the server.
    public func createSymmetricKey(bits: Int32 = 256, attributes: [Attribute]) throws(KeyServerError) -> String {
        let all: [Attribute] = [.cryptographicAlgorithm(KMIPConstant.algorithmAES), .cryptographicLength(bits),
                                .cryptographicUsageMask(KMIPConstant.usageEncrypt | KMIPConstant.usageDecrypt)] + attributes
        let payload = try perform(.create, [.enumeration(.objectType, ObjectType.symmetricKey.rawValue),
                                            Attribute.container(all, version: version)])
        return try uniqueIdentifier(payload, .create)
    }

    /// Registers a SecretData of type Password (the SASED way to hold a drive authentication key).
    public func registerSecret(_ secret: Secret, attributes: [Attribute]) throws(KeyServerError) -> String {
        var material = secret.copyBytes()
        defer { material.wipe() }
        let object: TTLV = .structure(.secretData, [
            .enumeration(.secretDataType, KMIPConstant.secretDataTypePassword),
            .structure(.keyBlock, [
                .enumeration(.keyFormatType, KMIPConstant.keyFormatOpaque),
                .structure(.keyValue, [.bytes(.keyMaterial, material)]),
            ]),
        ])
        let usage: [Attribute] = [.cryptographicUsageMask(KMIPConstant.usageEncrypt | KMIPConstant.usageDecrypt)]
        let payload = try perform(.register, [.enumeration(.objectType, ObjectType.secretData.rawValue),
                                              Attribute.container(usage + attributes, version: version), object])
        return try uniqueIdentifier(payload, .register)
    }

    /// Registers raw AES key bytes as a SymmetricKey.
    public func registerSymmetricKey(_ key: Secret, attributes: [Attribute]) throws(KeyServerError) -> String {
        var material = key.copyBytes()
        defer { material.wipe() }
        let object: TTLV = .structure(.symmetricKey, [
            .structure(.keyBlock, [
                .enumeration(.keyFormatType, KMIPConstant.keyFormatRaw),
                .structure(.keyValue, [.bytes(.keyMaterial, material)]),
                .enumeration(.cryptographicAlgorithm, KMIPConstant.algorithmAES),
                .integer(.cryptographicLength, Int32(key.count * 8)),
            ]),
        ])
        let all: [Attribute] = [.cryptographicAlgorithm(KMIPConstant.algorithmAES), .cryptographicLength(Int32(key.count * 8)),
                                .cryptographicUsageMask(KMIPConstant.usageEncrypt | KMIPConstant.usageDecrypt)] + attributes
        let payload = try perform(.register, [.enumeration(.objectType, ObjectType.symmetricKey.rawValue),
                                              Attribute.container(all, version: version), object])
        return try uniqueIdentifier(payload, .register)
    }

    public func get(_ id: String) throws(KeyServerError) -> ManagedObject {
        try managedObject(try perform(.get, [.text(.uniqueIdentifier, id)]), asked: id)
    }

    /// Get of several objects, each with its Name and State attributes, in one message: one round
    /// trip however many keys a boot needs. The names let the caller check that an identifier
    /// still means the object it was recorded for.
    public func getMany(_ ids: [String]) throws(KeyServerError) -> [String: Result<(ManagedObject, [Attribute]), KeyServerError>] {
        var operations: [(Operation, [TTLV])] = []
        for id in ids {
            operations.append((.get, [.text(.uniqueIdentifier, id)]))
            operations.append((.getAttributes, attributesRequest(id, names: ["Name", "State"])))
        }
        let results = try performBatch(operations)
        var out: [String: Result<(ManagedObject, [Attribute]), KeyServerError>] = [:]
        for (index, id) in ids.enumerated() {
            do throws(KeyServerError) {
                let object = try managedObject(try results[index * 2].get(), asked: id)
                out[id] = .success((object, Attribute.parse(from: try results[index * 2 + 1].get())))
            } catch {
                out[id] = .failure(error)
            }
        }
        return out
    }

    /// A Get answer read as a managed object; an answer about another object than the one asked
    /// for is refused (its key must never be taken for the asked one's).
    private func managedObject(_ payload: TTLV, asked id: String) throws(KeyServerError) -> ManagedObject {
        let answered = try uniqueIdentifier(payload, .get)
        guard answered == id else {
            throw KeyServerError(.keyServerProtocolError, server: server, cause: "asked Get of object \(id.prefix(64)), answered for \(answered.prefix(64))",
                                 fix: "the server is faulty")
        }
        guard let raw = payload.child(.objectType)?.enumerationValue, let type = ObjectType(rawValue: raw) else {
            throw KeyServerError(.keyServerProtocolError, server: server, cause: "Get returned no object type", fix: "the server is faulty")
        }
        let objectTag: Tag = type == .secretData ? .secretData : .symmetricKey
        guard let keyBlock = payload.child(objectTag)?.child(.keyBlock), let keyValue = keyBlock.child(.keyValue) else {
            throw KeyServerError(.keyServerProtocolError, server: server, cause: "Get returned no key block for \(type.name)",
                                 fix: "sedlock reads SecretData and SymmetricKey objects")
        }
        // sedlock asks for keys in the clear (inside TLS): wrapped material is not the key, and
        // taking it for one would derive PINs no drive holds.
        guard keyBlock.child(.keyWrappingData) == nil, keyValue.bytesValue == nil else {
            throw KeyServerError(.keyServerProtocolError, server: server,
                                 cause: "Get returned object \(answered.prefix(64)) wrapped (Key Wrapping Data), not the key itself",
                                 fix: "turn off key wrapping for this client on the key server; sedlock reads keys in the clear over TLS")
        }
        guard let bytes = keyValue.child(.keyMaterial)?.bytesValue else {
            throw KeyServerError(.keyServerProtocolError, server: server, cause: "the key value has no byte material",
                                 fix: "sedlock reads raw or opaque key material")
        }
        // The received message is cleared by the connection; the decoded answer's buffers (shared
        // by every copy of this payload) are cleared here, once the key is in protected memory.
        defer { payload.wipeByteStrings() }
        return ManagedObject(uniqueIdentifier: answered, objectType: type, material: Secret(bytes))
    }

    public func getAttributes(_ id: String, names: [String] = []) throws(KeyServerError) -> [Attribute] {
        let attributes = Attribute.parse(from: try perform(.getAttributes, attributesRequest(id, names: names)))
        return names.isEmpty ? attributes : attributes.filter { names.contains($0.attributeName) }
    }

    private func attributesRequest(_ id: String, names: [String]) -> [TTLV] {
        // 1.x names attributes; 2.0 references a standard one by its tag (an Enumeration, as
        // PyKMIP sends it), another by name.
        guard version.usesAttributesStructure else { return [.text(.uniqueIdentifier, id)] + names.map { .text(.attributeName, $0) } }
        return [.text(.uniqueIdentifier, id)] + names.map(Attribute.reference(named:))
    }

    /// The object's State attribute (nil when the server gives none).
    public func state(of id: String) throws(KeyServerError) -> ObjectState? {
        Self.state(in: try getAttributes(id, names: ["State"]))
    }

    public static func state(in attributes: [Attribute]) -> ObjectState? {
        for attribute in attributes {
            if case .state(let value) = attribute { return value }
        }
        return nil
    }

    public func getAttributeList(_ id: String) throws(KeyServerError) -> [String] {
        let payload = try perform(.getAttributeList, [.text(.uniqueIdentifier, id)])
        if version.usesAttributesStructure {
            return payload.all(.attributeReference).map { ref in
                Attribute.name(referencedBy: ref) ?? "Tag \(ref.enumerationValue.map { String($0, radix: 16) } ?? "?")"
            }
        }
        return payload.all(.attributeName).compactMap(\.textValue)
    }

    /// Locate by attributes (all must match); `offset` needs KMIP 1.3+.
    public func locate(_ filters: [Attribute], maximumItems: Int32? = nil, offset: Int32? = nil) throws(KeyServerError) -> [String] {
        var request: [TTLV] = []
        if let maximumItems { request.append(.integer(.maximumItems, maximumItems)) }
        if let offset { request.append(.integer(.offsetItems, offset)) }
        if version.usesAttributesStructure {
            request.append(Attribute.container(filters, version: version))
        } else {
            request += filters.map { $0.encoded(for: version) }
        }
        return try perform(.locate, request).all(.uniqueIdentifier).compactMap(\.textValue)
    }

    public func activate(_ id: String) throws(KeyServerError) {
        try perform(.activate, [.text(.uniqueIdentifier, id)])
    }

    public func revoke(_ id: String, reason: RevocationReasonCode, message: String? = nil) throws(KeyServerError) {
        var reasonItems: [TTLV] = [.enumeration(.revocationReasonCode, reason.rawValue)]
        if let message { reasonItems.append(.text(.revocationMessage, message)) }
        try perform(.revoke, [.text(.uniqueIdentifier, id), .structure(.revocationReason, reasonItems)])
    }

    public func destroy(_ id: String) throws(KeyServerError) {
        try perform(.destroy, [.text(.uniqueIdentifier, id)])
    }

    /// Adds an attribute (1.x AddAttribute; 2.0 AddAttribute with New Attribute).
    public func addAttribute(_ id: String, _ attribute: Attribute) throws(KeyServerError) {
        if version.usesAttributesStructure {
            try perform(.addAttribute, [.text(.uniqueIdentifier, id),
                                        .structure(.newAttribute, [attribute.encoded(for: version)])])
        } else {
            try perform(.addAttribute, [.text(.uniqueIdentifier, id), attribute.encoded(for: version)])
        }
    }

    /// Replaces an attribute's value (1.x ModifyAttribute; 2.0 with Current and New Attribute).
    public func modifyAttribute(_ id: String, current: Attribute, new: Attribute) throws(KeyServerError) {
        if version.usesAttributesStructure {
            try perform(.modifyAttribute, [.text(.uniqueIdentifier, id),
                                           .structure(.currentAttribute, [current.encoded(for: version)]),
                                           .structure(.newAttribute, [new.encoded(for: version)])])
        } else {
            try perform(.modifyAttribute, [.text(.uniqueIdentifier, id), new.encoded(for: version)])
        }
    }

    /// Deletes an attribute (1.x by name and index 0; 2.0 by Current Attribute).
    public func deleteAttribute(_ id: String, _ attribute: Attribute) throws(KeyServerError) {
        if version.usesAttributesStructure {
            try perform(.deleteAttribute, [.text(.uniqueIdentifier, id),
                                           .structure(.currentAttribute, [attribute.encoded(for: version)])])
        } else {
            try perform(.deleteAttribute, [.text(.uniqueIdentifier, id), .text(.attributeName, attribute.attributeName),
                                           .integer(.attributeIndex, 0)])
        }
    }
}

extension TTLV {
    /// Clears every byte string and big integer of this tree in place, in every copy of it.
    func wipeByteStrings() {
        switch value {
        case .structure(let children): for child in children { child.wipeByteStrings() }
        case .byteString(let bytes), .bigInteger(let bytes): bytes.wipeSharedBuffer()
        default: break
        }
    }
}
