import Foundation
import KMIPCodec

/// The simulated key server's KMIP semantics: operations, ownership by client CN, lifecycle rules.
public struct KeyServerEngine: Sendable {
    public let store: KeyServerStore
    public static let vendor = "sedsim key server"

    public init(store: KeyServerStore) { self.store = store }

    struct Failure: Error {
        let reason: ResultReason
        let message: String
    }

    /// Answers one request message for the client `identity` (its certificate CN).
    public func respond(to bytes: [UInt8], identity: String, authenticated: Bool = true) -> [UInt8] {
        guard let request = try? TTLVCodec.decode(bytes), request.tag == .requestMessage,
              let header = request.child(.requestHeader),
              let version = header.child(.protocolVersion).flatMap(ProtocolVersion.init) else {
            return Self.errorResponse(.v1_0, .invalidMessage, "the request is not a KMIP Request Message")
        }
        var items: [TTLV] = []
        for batch in request.all(.batchItem) {
            // Every answer carries its request's Unique Batch Item ID (required when the request had one).
            let batchID = batch.child(.uniqueBatchItemID)
            guard let raw = batch.child(.operation)?.enumerationValue else {
                items.append(Self.failedItem(nil, .invalidMessage, "batch item without an operation", batchID: batchID))
                continue
            }
            let operation = KMIPCodec.Operation(rawValue: raw)
            guard authenticated else {
                items.append(Self.failedItem(nil, .authenticationNotSuccessful, "the client certificate is not trusted", batchID: batchID))
                continue
            }
            let payload = batch.child(.requestPayload) ?? .structure(.requestPayload, [])
            do {
                let result = try perform(operation, payload.children, version: version, identity: identity)
                items.append(.structure(.batchItem, [.enumeration(.operation, raw)] + (batchID.map { [$0] } ?? [])
                                        + [.enumeration(.resultStatus, ResultStatus.success.rawValue), .structure(.responsePayload, result)]))
            } catch let failure as Failure {
                items.append(Self.failedItem(operation, failure.reason, failure.message, batchID: batchID))
            } catch {
                items.append(Self.failedItem(operation, .generalFailure, "\(error)", batchID: batchID))
            }
        }
        return TTLVCodec.encode(.structure(.responseMessage, [Self.header(version, count: items.count)] + items))
    }

    /// A value from the request, as far as an error message repeats it: a client that sends a
    /// 10 KB identifier does not get 10 KB back.
    static func echo(_ text: String) -> String {
        text.count <= 64 ? text : String(text.prefix(64)) + "… (\(text.utf8.count) bytes)"
    }

    static func header(_ version: ProtocolVersion, count: Int) -> TTLV {
        .structure(.responseHeader, [version.ttlv, TTLV(.timeStamp, .dateTime(Int64(Date().timeIntervalSince1970))),
                                     .integer(.batchCount, Int32(count))])
    }

    static func failedItem(_ operation: KMIPCodec.Operation?, _ reason: ResultReason, _ message: String, batchID: TTLV? = nil) -> TTLV {
        var children: [TTLV] = []
        if let operation { children.append(.enumeration(.operation, operation.rawValue)) }
        if let batchID { children.append(batchID) }
        children += [.enumeration(.resultStatus, ResultStatus.operationFailed.rawValue), .enumeration(.resultReason, reason.rawValue),
                     .text(.resultMessage, message)]
        return .structure(.batchItem, children)
    }

    public static func errorResponse(_ version: ProtocolVersion, _ reason: ResultReason, _ message: String) -> [UInt8] {
        TTLVCodec.encode(.structure(.responseMessage, [header(version, count: 1), failedItem(nil, reason, message)]))
    }

    // MARK: Operations

    func perform(_ operation: KMIPCodec.Operation, _ payload: [TTLV], version: ProtocolVersion, identity: String) throws -> [TTLV] {
        let request = TTLV.structure(.requestPayload, payload)
        switch operation {
        case .discoverVersions:
            // Plain code on purpose: Swift 6.3's release optimizer crashes (CopyPropagation) on
            // `Optional.map(T.init)`-style initializer references in this function (see KMIPClient.query).
            var offered: [ProtocolVersion] = []
            for item in request.all(.protocolVersion) {
                if let version = ProtocolVersion(item) { offered.append(version) }
            }
            let common = offered.isEmpty ? ProtocolVersion.supported : offered.filter { ProtocolVersion.supported.contains($0) }
            return common.map(\.ttlv)
        case .query:
            let operations: [KMIPCodec.Operation] = [.create, .register, .locate, .check, .get, .getAttributes, .getAttributeList,
                                                     .activate, .revoke, .destroy, .query, .discoverVersions, .addAttribute,
                                                     .modifyAttribute, .deleteAttribute, .setAttribute]
            return operations.map { .enumeration(.operation, $0.rawValue) }
                + [ObjectType.symmetricKey, .secretData, .opaqueData].map { .enumeration(.objectType, $0.rawValue) }
                + [.text(.vendorIdentification, Self.vendor)]
        case .create, .register:
            return try create(operation, request, identity: identity)
        case .get:
            return try withOwned(request, identity) { object in
                [.enumeration(.objectType, object.type), .text(.uniqueIdentifier, object.id), Self.managedObject(object)]
            }
        case .check:
            return try check(request, identity: identity)
        case .getAttributes:
            // 1.x names attributes (Attribute Name); 2.0 references them, by the attribute's tag
            // (an Enumeration) or by name (a structure with Attribute Name): all three are taken.
            var wanted: [String] = []
            for item in request.all(.attributeName) {
                if let name = item.textValue { wanted.append(name) }
            }
            for reference in request.all(.attributeReference) {
                if let name = Attribute.name(referencedBy: reference) {
                    wanted.append(name)
                } else if reference.enumerationValue == nil {
                    throw Failure(reason: .invalidField, message: "an Attribute Reference must be a tag or carry an Attribute Name")
                }
                // A standard attribute by a tag this server never sets (Deactivation Date before any
                // deactivation): the object lacks it, and the others asked for are still answered.
            }
            return try withOwned(request, identity) { object in
                var attributes = Self.attributes(of: object, version: version)
                if !wanted.isEmpty { attributes = attributes.filter { wanted.contains($0.attributeName) } }
                if version.usesAttributesStructure {
                    return [.text(.uniqueIdentifier, object.id), Attribute.container(attributes, version: version).renamed(.attributes)]
                }
                return [.text(.uniqueIdentifier, object.id)] + attributes.map { $0.encoded(for: version) }
            }
        case .getAttributeList:
            return try withOwned(request, identity) { object in
                let names = Self.attributes(of: object, version: version).map(\.attributeName)
                let unique = names.enumerated().filter { names.firstIndex(of: $0.element) == $0.offset }.map(\.element)
                if version.usesAttributesStructure {
                    // As PyKMIP's server answers and its client expects: a standard attribute by its tag.
                    return [.text(.uniqueIdentifier, object.id)] + unique.map(Attribute.reference(named:))
                }
                return [.text(.uniqueIdentifier, object.id)] + unique.map { .text(.attributeName, $0) }
            }
        case .locate:
            let filters = Attribute.parse(from: request)
            var maximum: Int?
            if let raw = request.child(.maximumItems)?.integerValue { maximum = Int(raw) }
            let offset = Int(request.child(.offsetItems)?.integerValue ?? 0)
            let ids = try store.withDatabase { db in
                db.objects.filter { $0.owner == identity && Self.matches($0, filters) }
                    .sorted { ($0.initialDate, Int($0.id) ?? 0) > ($1.initialDate, Int($1.id) ?? 0) }
                    .map(\.id)
            }
            let page = ids.dropFirst(max(0, offset)).prefix(max(0, maximum ?? Int.max))
            return page.map { .text(.uniqueIdentifier, $0) }
        case .activate:
            return try mutateOwned(request, identity) { object in
                guard object.state == ObjectState.preActive.rawValue else {
                    throw Failure(reason: .illegalOperation, message: "only a PreActive object can be activated")
                }
                object.state = ObjectState.active.rawValue
                object.activationDate = Int64(Date().timeIntervalSince1970)
            }
        case .revoke:
            let code = request.child(.revocationReason)?.child(.revocationReasonCode)?.enumerationValue
            return try mutateOwned(request, identity) { object in
                guard object.state != ObjectState.destroyed.rawValue else {
                    throw Failure(reason: .illegalOperation, message: "the object is destroyed")
                }
                object.state = code == RevocationReasonCode.keyCompromise.rawValue
                    ? ObjectState.compromised.rawValue : ObjectState.deactivated.rawValue
                if object.state == ObjectState.deactivated.rawValue {
                    object.dates = (object.dates ?? [:]).merging(["Deactivation Date": Int64(Date().timeIntervalSince1970)]) { $1 }
                }
            }
        case .destroy:
            guard let id = request.child(.uniqueIdentifier)?.textValue else {
                throw Failure(reason: .missingData, message: "Destroy needs a Unique Identifier")
            }
            try store.withDatabase { db in
                guard let i = db.objects.firstIndex(where: { $0.id == id }), db.objects[i].owner == identity else {
                    throw Failure(reason: .itemNotFound, message: "Could not locate object: \(Self.echo(id))")
                }
                guard db.objects[i].state != ObjectState.active.rawValue else {
                    throw Failure(reason: .permissionDenied, message: "Object is active and cannot be destroyed.")
                }
                db.objects.remove(at: i)
            }
            return [.text(.uniqueIdentifier, id)]
        case .addAttribute, .modifyAttribute, .deleteAttribute, .setAttribute:
            return try changeAttribute(operation, request, version: version, identity: identity)
        default:
            throw Failure(reason: .operationNotSupported, message: "\(operation) is not supported by the simulated key server")
        }
    }

    private func create(_ operation: KMIPCodec.Operation, _ request: TTLV, identity: String) throws -> [TTLV] {
        guard let rawType = request.child(.objectType)?.enumerationValue, let type = ObjectType(rawValue: rawType),
              [.symmetricKey, .secretData, .opaqueData].contains(type) else {
            throw Failure(reason: .invalidField, message: "only SymmetricKey, SecretData and OpaqueData objects are supported")
        }
        var attributes = Attribute.parse(from: request)
        if let template = request.child(.templateAttribute) { attributes += Attribute.parse(from: template) }
        var object = KeyServerObject(id: "", type: rawType, owner: identity, state: ObjectState.preActive.rawValue,
                                     names: [], groups: [], material: Data(), initialDate: Int64(Date().timeIntervalSince1970))
        for attribute in attributes {
            switch attribute {
            case .name(let n): object.names.append(n)
            case .objectGroup(let g): object.groups.append(g)
            case .cryptographicAlgorithm(let a): object.algorithm = a
            case .cryptographicLength(let l): object.length = l
            case .cryptographicUsageMask(let m): object.usageMask = m
            case .sensitive(let v): object.sensitive = v
            case .other(let name, let value) where name.hasPrefix("x-"):
                object.custom = (object.custom ?? []) + [Self.custom(name, value)]
            case .other(let name, let value) where Attribute.clientDates.contains(name):
                guard let date = value.dateTimeValue else { throw Failure(reason: .invalidField, message: "\(name) must be a Date-Time") }
                object.dates = (object.dates ?? [:]).merging([name: date]) { $1 }
            default: break
            }
        }
        if operation == .create {
            guard type == .symmetricKey else { throw Failure(reason: .invalidField, message: "Create makes symmetric keys only") }
            let bits = Int(object.length ?? 256)
            guard [128, 192, 256].contains(bits) else { throw Failure(reason: .invalidField, message: "unsupported key length \(bits)") }
            var key = [UInt8](repeating: 0, count: bits / 8)
            var rng = SystemRandomNumberGenerator()
            for i in key.indices { key[i] = rng.next() }
            object.material = Data(key)
        } else if type == .opaqueData {
            guard let body = request.child(.opaqueObject), let kind = body.child(.opaqueDataType)?.enumerationValue,
                  let value = body.child(.opaqueDataValue)?.bytesValue, !value.isEmpty else {
                throw Failure(reason: .missingData, message: "Register needs the Opaque Object with its Opaque Data Type and Value")
            }
            object.opaqueDataType = kind
            object.material = Data(value)
        } else {
            let tag: Tag = type == .secretData ? .secretData : .symmetricKey
            guard let body = request.child(tag), let keyBlock = body.child(.keyBlock), let material = keyBlock.child(.keyValue)?.child(.keyMaterial) else {
                throw Failure(reason: .missingData, message: "Register needs the object with its key material")
            }
            let format = keyBlock.child(.keyFormatType)?.enumerationValue
            // A Transparent Symmetric Key holds its bytes in the Key Material's Key; Raw and Opaque are the bytes.
            let bytes = format == KMIPConstant.keyFormatTransparentSymmetric ? material.child(.key)?.bytesValue : material.bytesValue
            guard let bytes, !bytes.isEmpty else {
                throw Failure(reason: .invalidField, message: "the Key Material does not match the Key Format Type")
            }
            guard format != KMIPConstant.keyFormatTransparentSymmetric || type == .symmetricKey else {
                throw Failure(reason: .invalidField, message: "a Transparent Symmetric Key must be a SymmetricKey")
            }
            object.secretDataType = body.child(.secretDataType)?.enumerationValue
            object.keyFormatType = format
            object.material = Data(bytes)
            // A key block that names its algorithm and length counts where the attributes did not.
            if object.algorithm == nil { object.algorithm = keyBlock.child(.cryptographicAlgorithm)?.enumerationValue }
            if object.length == nil, let bits = keyBlock.child(.cryptographicLength)?.integerValue { object.length = bits }
        }
        object.lastChangeDate = object.initialDate
        let id = try store.withDatabase { db -> String in
            object.id = String(db.nextID)
            db.nextID += 1
            db.objects.append(object)
            return object.id
        }
        return operation == .create ? [.enumeration(.objectType, rawType), .text(.uniqueIdentifier, id)] : [.text(.uniqueIdentifier, id)]
    }

    /// Add/Modify/Delete (and 2.0's Set) of Name, Object Group and custom attributes ("x-…"), in
    /// the 1.x (Attribute, Attribute Name + Index) and 2.0 (New and Current Attribute, Attribute
    /// Reference) forms. A 1.x DeleteAttribute answers with the attribute it deleted.
    private func changeAttribute(_ operation: KMIPCodec.Operation, _ request: TTLV, version: ProtocolVersion,
                                 identity: String) throws -> [TTLV] {
        func attribute(in container: Tag?) -> Attribute? {
            if version.usesAttributesStructure {
                guard let container, let item = request.child(container)?.children.first else { return nil }
                return Attribute(version2: item)
            }
            return request.child(.attribute).flatMap { Attribute(version1: $0) }
        }
        let new = attribute(in: .newAttribute)
        let current = version.usesAttributesStructure ? attribute(in: .currentAttribute) : nil
        let referenced = request.child(.attributeReference).flatMap(Attribute.name(referencedBy:))
        let deleteName = request.child(.attributeName)?.textValue
        let index = Int(request.child(.attributeIndex)?.integerValue ?? 0)
        var deleted: Attribute?
        var payload = try mutateOwned(request, identity) { object in
            var instances = try Self.changeable(object, named: (new ?? current)?.attributeName ?? referenced ?? deleteName ?? "")
            switch operation {
            case .addAttribute:
                guard let new else { throw Failure(reason: .invalidField, message: "AddAttribute needs the attribute") }
                instances.list.append(new)
            case .modifyAttribute:
                guard let new else { throw Failure(reason: .invalidField, message: "ModifyAttribute needs the attribute") }
                if let current {
                    guard let i = instances.list.firstIndex(of: current) else { throw Failure(reason: .itemNotFound, message: "no such current value") }
                    instances.list[i] = new
                } else {
                    guard !instances.list.isEmpty else { throw Failure(reason: .itemNotFound, message: "nothing to modify") }
                    instances.list[0] = new
                }
            case .setAttribute:
                // 2.0: added when absent, replaced when present; only for a single-valued attribute.
                guard let new else { throw Failure(reason: .invalidField, message: "SetAttribute needs the New Attribute") }
                guard instances.singleValued else {
                    throw Failure(reason: .invalidField, message: "\(new.attributeName) takes several values: use AddAttribute or ModifyAttribute")
                }
                instances.list = [new]
            default:
                if let current {
                    guard let i = instances.list.firstIndex(of: current) else { throw Failure(reason: .itemNotFound, message: "no such value") }
                    deleted = instances.list.remove(at: i)
                } else if referenced != nil {
                    // 2.0 by Attribute Reference: every instance.
                    guard !instances.list.isEmpty else { throw Failure(reason: .itemNotFound, message: "the object has no such attribute") }
                    deleted = instances.list.first
                    instances.list = []
                } else if deleteName != nil {
                    guard index >= 0 && index < instances.list.count else { throw Failure(reason: .itemNotFound, message: "no such index") }
                    deleted = instances.list.remove(at: index)
                } else {
                    throw Failure(reason: .missingData, message: "DeleteAttribute needs the attribute to delete")
                }
            }
            try Self.store(instances, into: &object)
        }
        if operation == .deleteAttribute, !version.usesAttributesStructure, let deleted {
            payload.append(deleted.encoded(for: version))
        }
        return payload
    }

    /// The instances of an attribute a client may change, and whether it takes one value.
    private struct Instances {
        let name: String
        var list: [Attribute]
        let singleValued: Bool
    }

    private static func changeable(_ object: KeyServerObject, named name: String) throws -> Instances {
        switch name {
        case "Name": return Instances(name: name, list: object.names.map(Attribute.name), singleValued: false)
        case "Object Group": return Instances(name: name, list: object.groups.map(Attribute.objectGroup), singleValued: false)
        case _ where name.hasPrefix("x-"):
            return Instances(name: name, list: attributes(of: object).filter { $0.attributeName == name }, singleValued: true)
        case _ where name.hasPrefix("y-"):
            throw Failure(reason: .permissionDenied, message: "\(name) is the server's own attribute")
        case "":
            throw Failure(reason: .missingData, message: "the request names no attribute")
        default:
            // A read-only attribute (State, the dates, the algorithm) is refused as KMIP says: Permission Denied.
            throw Failure(reason: .permissionDenied, message: "\(name) is read-only")
        }
    }

    private static func store(_ instances: Instances, into object: inout KeyServerObject) throws {
        for value in instances.list where value.attributeName != instances.name {
            throw Failure(reason: .invalidField, message: "\(value.attributeName) cannot replace \(instances.name)")
        }
        switch instances.name {
        case "Name": object.names = instances.list.compactMap { if case .name(let v) = $0 { v } else { nil } }
        case "Object Group": object.groups = instances.list.compactMap { if case .objectGroup(let v) = $0 { v } else { nil } }
        default:
            let others = (object.custom ?? []).filter { $0.name != instances.name }
            object.custom = others + instances.list.compactMap { if case .other(let name, let value) = $0 { custom(name, value) } else { nil } }
        }
    }

    private func withOwned(_ request: TTLV, _ identity: String, _ body: (KeyServerObject) throws -> [TTLV]) throws -> [TTLV] {
        guard let id = request.child(.uniqueIdentifier)?.textValue else {
            throw Failure(reason: .missingData, message: "the request needs a Unique Identifier")
        }
        let object = try store.withDatabase { db in db.objects.first { $0.id == id } }
        guard let object else { throw Failure(reason: .itemNotFound, message: "Could not locate object: \(Self.echo(id))") }
        guard object.owner == identity else { throw Failure(reason: .permissionDenied, message: "Not allowed to access object \(Self.echo(id))") }
        return try body(object)
    }

    private func mutateOwned(_ request: TTLV, _ identity: String, _ change: (inout KeyServerObject) throws -> Void) throws -> [TTLV] {
        guard let id = request.child(.uniqueIdentifier)?.textValue else {
            throw Failure(reason: .missingData, message: "the request needs a Unique Identifier")
        }
        try store.withDatabase { db in
            guard let i = db.objects.firstIndex(where: { $0.id == id }) else {
                throw Failure(reason: .itemNotFound, message: "Could not locate object: \(Self.echo(id))")
            }
            guard db.objects[i].owner == identity else { throw Failure(reason: .permissionDenied, message: "Not allowed to access object \(Self.echo(id))") }
            try change(&db.objects[i])
            // Every change moves the Last Change Date, by at least a second (its resolution).
            let previous = db.objects[i].lastChangeDate ?? db.objects[i].initialDate
            db.objects[i].lastChangeDate = max(Int64(Date().timeIntervalSince1970), previous + 1)
        }
        return [.text(.uniqueIdentifier, id)]
    }

    /// The object's attributes as a client speaking `version` sees them (Sensitive from 1.4 on).
    static func attributes(of object: KeyServerObject, version: ProtocolVersion = .v2_0) -> [Attribute] {
        var out: [Attribute] = [.uniqueIdentifier(object.id)]
        if let type = ObjectType(rawValue: object.type) { out.append(.objectType(type)) }
        if let state = ObjectState(rawValue: object.state) { out.append(.state(state)) }
        out += object.names.map(Attribute.name) + object.groups.map(Attribute.objectGroup)
        if let a = object.algorithm { out.append(.cryptographicAlgorithm(a)) }
        if let l = object.length { out.append(.cryptographicLength(l)) }
        if let m = object.usageMask { out.append(.cryptographicUsageMask(m)) }
        out.append(.initialDate(object.initialDate))
        if let d = object.activationDate { out.append(.activationDate(d)) }
        out.append(.lastChangeDate(object.lastChangeDate ?? object.initialDate))
        for (name, date) in (object.dates ?? [:]).sorted(by: { $0.key < $1.key }) {
            out.append(.other(name: name, value: TTLV(.attributeValue, .dateTime(date))))
        }
        if !object.material.isEmpty {
            // A key's digest names the format it was taken over; an Opaque Object has none.
            let format: [TTLV] = object.type == ObjectType.opaqueData.rawValue ? [] : [.enumeration(.keyFormatType, keyFormat(of: object))]
            out.append(.other(name: "Digest", value: .structure(.digest, [
                .enumeration(.hashingAlgorithm, KMIPConstant.hashingAlgorithmSHA256),
                .bytes(.digestValue, DriveCrypto.sha256(Array(object.material))),
            ] + format)))
        }
        if version >= .v1_4 { out.append(.sensitive(object.sensitive ?? false)) }
        for custom in object.custom ?? [] {
            if let value = try? TTLVCodec.decode(Array(custom.value)) { out.append(.other(name: custom.name, value: value)) }
        }
        return out
    }

    /// A custom attribute's instance as it is kept: the value tagged Attribute Value, encoded.
    static func custom(_ name: String, _ value: TTLV) -> CustomAttribute {
        CustomAttribute(name: name, value: Data(TTLVCodec.encode(value.renamed(.attributeValue))))
    }

    /// The Key Format Type the object is returned in: as registered, else Opaque for SecretData, Raw for keys.
    static func keyFormat(of object: KeyServerObject) -> UInt32 {
        object.keyFormatType ?? (object.type == ObjectType.secretData.rawValue ? KMIPConstant.keyFormatOpaque : KMIPConstant.keyFormatRaw)
    }

    /// Locate's filters: every attribute given must match, except that two instances of one date
    /// attribute give an inclusive range (KMIP 1.x §4.9), and one instance its exact value.
    static func matches(_ object: KeyServerObject, _ filters: [Attribute]) -> Bool {
        let held = attributes(of: object)
        var dateFilters: [String: [Int64]] = [:]
        for filter in filters {
            if let date = filter.dateValue { dateFilters[filter.attributeName, default: []].append(date) }
        }
        for (name, bounds) in dateFilters {
            guard let value = held.first(where: { $0.attributeName == name })?.dateValue,
                  let low = bounds.min(), let high = bounds.max() else { return false }
            guard bounds.count == 1 ? value == low : (low...high).contains(value) else { return false }
        }
        return filters.allSatisfy { filter in
            switch filter {
            case _ where filter.dateValue != nil: return true  // ranges, above
            case .name(let n): return object.names.contains(n)
            case .objectGroup(let g): return object.groups.contains(g)
            case .objectType(let t): return object.type == t.rawValue
            case .state(let s): return object.state == s.rawValue
            case .uniqueIdentifier(let id): return object.id == id
            default: return held.contains(filter)
            }
        }
    }

    /// The managed object as Get returns it, in the form it was registered (Key Format Type kept;
    /// a Transparent Symmetric Key's bytes inside its Key Material's Key; an Opaque Object's type).
    static func managedObject(_ object: KeyServerObject) -> TTLV {
        if object.type == ObjectType.opaqueData.rawValue {
            return .structure(.opaqueObject, [.enumeration(.opaqueDataType, object.opaqueDataType ?? 0),
                                              .bytes(.opaqueDataValue, Array(object.material))])
        }
        var block: [TTLV] = []
        if object.type == ObjectType.secretData.rawValue {
            block.append(.enumeration(.secretDataType, object.secretDataType ?? KMIPConstant.secretDataTypePassword))
        }
        let format = keyFormat(of: object)
        let material: TTLV = format == KMIPConstant.keyFormatTransparentSymmetric
            ? .structure(.keyMaterial, [.bytes(.key, Array(object.material))])
            : .bytes(.keyMaterial, Array(object.material))
        var keyBlockItems: [TTLV] = [.enumeration(.keyFormatType, format), .structure(.keyValue, [material])]
        if object.type == ObjectType.symmetricKey.rawValue {
            // A Raw key's block must say what the bytes are (KMIP 1.x §2.1.3): PyKMIP's client refuses one that does not.
            keyBlockItems.append(.enumeration(.cryptographicAlgorithm, object.algorithm ?? KMIPConstant.algorithmAES))
            keyBlockItems.append(.integer(.cryptographicLength, object.length ?? Int32(object.material.count * 8)))
        }
        let tag: Tag = object.type == ObjectType.secretData.rawValue ? .secretData : .symmetricKey
        return .structure(tag, block + [.structure(.keyBlock, keyBlockItems)])
    }

    /// Check (KMIP 1.x §4.10): may the object be used as the request says? This server keeps no
    /// usage limits or leases, so those pass; a Cryptographic Usage Mask must be within the
    /// object's, and the object must be Active. A failed check answers Operation Failed, naming
    /// the check that failed.
    private func check(_ request: TTLV, identity: String) throws -> [TTLV] {
        try withOwned(request, identity) { object in
            guard object.state == ObjectState.active.rawValue else {
                throw Failure(reason: .illegalOperation, message: "the object is not Active: it may not be used")
            }
            if let wanted = request.child(.cryptographicUsageMask)?.integerValue {
                let allowed = object.usageMask ?? 0
                guard wanted & ~allowed == 0 else {
                    throw Failure(reason: .illegalOperation,
                                  message: "Cryptographic Usage Mask 0x\(String(wanted, radix: 16)) is not within the object's 0x\(String(allowed, radix: 16))")
                }
            }
            var answer: [TTLV] = [.text(.uniqueIdentifier, object.id)]
            if let count = request.child(.usageLimitsCount) { answer.append(count) }
            if let mask = request.child(.cryptographicUsageMask) { answer.append(mask) }
            if let lease = request.child(.leaseTime) { answer.append(lease) }
            return answer
        }
    }
}

extension TTLV {
    /// The same value under another tag.
    func renamed(_ tag: Tag) -> TTLV { TTLV(tag, value) }
}
