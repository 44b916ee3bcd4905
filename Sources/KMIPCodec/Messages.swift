/// A KMIP protocol version; the client picks one with DiscoverVersions.
public struct ProtocolVersion: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var major: Int32
    public var minor: Int32

    public init(_ major: Int32, _ minor: Int32) {
        self.major = major
        self.minor = minor
    }

    public static let v1_0 = ProtocolVersion(1, 0)
    public static let v1_1 = ProtocolVersion(1, 1)
    public static let v1_2 = ProtocolVersion(1, 2)
    public static let v1_3 = ProtocolVersion(1, 3)
    public static let v1_4 = ProtocolVersion(1, 4)
    public static let v2_0 = ProtocolVersion(2, 0)
    /// What sedlock speaks, newest first.
    public static let supported: [ProtocolVersion] = [.v2_0, .v1_4, .v1_3, .v1_2, .v1_1, .v1_0]

    public static func < (a: ProtocolVersion, b: ProtocolVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

    public var description: String { "\(major).\(minor)" }

    /// Whether attributes travel in 2.0's `Attributes` structure rather than 1.x `Attribute`s.
    public var usesAttributesStructure: Bool { major >= 2 }

    public var ttlv: TTLV {
        .structure(.protocolVersion, [.integer(.protocolVersionMajor, major), .integer(.protocolVersionMinor, minor)])
    }

    public init?(_ item: TTLV) {
        guard let major = item.child(.protocolVersionMajor)?.integerValue,
              let minor = item.child(.protocolVersionMinor)?.integerValue else { return nil }
        self.init(major, minor)
    }
}

/// One operation in a request.
public struct RequestBatchItem: Hashable, Sendable {
    public var operation: Operation
    public var payload: [TTLV]
    public var uniqueBatchItemID: [UInt8]?

    public init(_ operation: Operation, payload: [TTLV], uniqueBatchItemID: [UInt8]? = nil) {
        self.operation = operation
        self.payload = payload
        self.uniqueBatchItemID = uniqueBatchItemID
    }
}

/// A request message. No Time Stamp is sent: servers reject stale ones under clock skew.
public struct RequestMessage: Hashable, Sendable {
    public var version: ProtocolVersion
    public var maximumResponseSize: Int32?
    public var items: [RequestBatchItem]

    public init(version: ProtocolVersion, maximumResponseSize: Int32? = nil, items: [RequestBatchItem]) {
        self.version = version
        self.maximumResponseSize = maximumResponseSize
        self.items = items
    }

    public var ttlv: TTLV {
        var header: [TTLV] = [version.ttlv]
        if let maximumResponseSize { header.append(.integer(.maximumResponseSize, maximumResponseSize)) }
        header.append(.integer(.batchCount, Int32(items.count)))
        var children: [TTLV] = [.structure(.requestHeader, header)]
        for item in items {
            var batch: [TTLV] = [.enumeration(.operation, item.operation.rawValue)]
            if let id = item.uniqueBatchItemID { batch.append(.bytes(.uniqueBatchItemID, id)) }
            batch.append(.structure(.requestPayload, item.payload))
            children.append(.structure(.batchItem, batch))
        }
        return .structure(.requestMessage, children)
    }

    public func encoded() -> [UInt8] { TTLVCodec.encode(ttlv) }
}

/// One operation's result.
public struct ResponseBatchItem: Hashable, Sendable {
    /// Servers omit the operation in some error items (PyKMIP's authentication failures).
    public var operation: Operation?
    public var uniqueBatchItemID: [UInt8]?
    public var resultStatus: ResultStatus
    public var resultReason: ResultReason?
    public var resultMessage: String?
    public var payload: TTLV?

    public init(operation: Operation? = nil, uniqueBatchItemID: [UInt8]? = nil, resultStatus: ResultStatus,
                resultReason: ResultReason? = nil, resultMessage: String? = nil, payload: TTLV? = nil) {
        self.operation = operation
        self.uniqueBatchItemID = uniqueBatchItemID
        self.resultStatus = resultStatus
        self.resultReason = resultReason
        self.resultMessage = resultMessage
        self.payload = payload
    }
}

public struct ResponseMessage: Hashable, Sendable {
    public var version: ProtocolVersion
    public var timeStamp: Int64?
    public var items: [ResponseBatchItem]

    /// Reads a response, tolerating unknown fields; missing required fields are `invalidValue` errors.
    public init(_ message: TTLV) throws(TTLVError) {
        guard message.tag == .responseMessage else {
            throw TTLVError(.invalidValue, at: 0, "expected a Response Message, got tag \(message.tag)")
        }
        guard let header = message.child(.responseHeader),
              let versionItem = header.child(.protocolVersion), let version = ProtocolVersion(versionItem) else {
            throw TTLVError(.invalidValue, at: 0, "the response has no header or protocol version")
        }
        self.version = version
        timeStamp = header.child(.timeStamp)?.dateTimeValue
        var items: [ResponseBatchItem] = []
        for batch in message.all(.batchItem) {
            items.append(try Self.batchItem(batch))
        }
        guard !items.isEmpty else { throw TTLVError(.invalidValue, at: 0, "the response has no batch items") }
        // The header's Batch Count (required) must say how many items the message holds.
        guard let count = header.child(.batchCount)?.integerValue else {
            throw TTLVError(.invalidValue, at: 0, "the response header has no Batch Count")
        }
        guard Int(count) == items.count else {
            throw TTLVError(.invalidValue, at: 0, "the response header's Batch Count is \(count) but it holds \(items.count) batch items")
        }
        self.items = items
    }

    private static func batchItem(_ batch: TTLV) throws(TTLVError) -> ResponseBatchItem {
        guard let raw = batch.child(.resultStatus)?.enumerationValue, let status = ResultStatus(rawValue: raw) else {
            throw TTLVError(.invalidValue, at: 0, "a batch item has no valid Result Status")
        }
        var item = ResponseBatchItem(resultStatus: status)
        if let op = batch.child(.operation)?.enumerationValue { item.operation = Operation(rawValue: op) }
        item.uniqueBatchItemID = batch.child(.uniqueBatchItemID)?.bytesValue
        if let reason = batch.child(.resultReason)?.enumerationValue { item.resultReason = ResultReason(rawValue: reason) }
        item.resultMessage = batch.child(.resultMessage)?.textValue
        item.payload = batch.child(.responsePayload)
        return item
    }

    public init(decoding bytes: [UInt8], maximumSize: Int = TTLVCodec.defaultMaximumSize) throws(TTLVError) {
        try self.init(try TTLVCodec.decode(bytes, maximumSize: maximumSize))
    }
}
