/// A method invocation: `Call InvokingUID MethodUID [args] EndOfData [status 0 0]`.
public struct MethodCall: Hashable, Sendable {
    public var invokingUID: UID
    public var methodUID: UID
    public var arguments: [TCGValue]

    public init(invokingUID: UID, methodUID: UID, arguments: [TCGValue] = []) {
        self.invokingUID = invokingUID
        self.methodUID = methodUID
        self.arguments = arguments
    }

    /// Tokens for this call; `status` is appended as the trailing status list (hosts send 0).
    public func tokens(status: MethodStatus = .success) -> [Token] {
        var out: [Token] = [.call, .bytes(invokingUID.bytes), .bytes(methodUID.bytes)]
        TCGValue.list(arguments).appendTokens(to: &out)
        out.append(.endOfData)
        out.append(contentsOf: [.startList, .unsigned(UInt64(status.rawValue)), .unsigned(0), .unsigned(0), .endList])
        return out
    }

    public func encoded(status: MethodStatus = .success) -> [UInt8] { TokenEncoder.encode(tokens(status: status)) }
}

/// What one data subpacket carries: a call, a method result, or the end of a session.
public enum MethodPayload: Hashable, Sendable {
    /// A call (from a host, or a TPer's SyncSession / CloseSession) with its status list.
    case call(MethodCall, status: MethodStatus)
    /// A method result: the returned values and status.
    case result([TCGValue], status: MethodStatus)
    case endOfSession

    /// Parses a subpacket payload. Trailing zero padding is not part of the tokens.
    public static func decode(_ bytes: [UInt8]) throws(TCGStorageError) -> MethodPayload {
        let tokens = try TokenDecoder.decode(bytes)
        var parser = TCGValueParser(tokens)
        guard let first = parser.next else {
            throw TCGStorageError(.truncated, at: 0, "empty method payload")
        }
        let payload: MethodPayload
        switch first {
        case .endOfSession:
            return .endOfSession
        case .call:
            try parser.expect(.call, "Call")
            guard let invoking = try parser.value().uidValue, let method = try parser.value().uidValue else {
                throw TCGStorageError(.malformedValue, at: parser.position, "call UIDs must be 8-byte strings")
            }
            guard case .list(let arguments) = try parser.value() else {
                throw TCGStorageError(.malformedValue, at: parser.position, "call arguments must be a list")
            }
            try parser.expect(.endOfData, "EndOfData after call arguments")
            payload = .call(MethodCall(invokingUID: invoking, methodUID: method, arguments: arguments),
                            status: try status(&parser))
        case .startList:
            guard case .list(let results) = try parser.value() else {
                throw TCGStorageError(.malformedValue, at: parser.position, "results must be a list")
            }
            try parser.expect(.endOfData, "EndOfData after results")
            payload = .result(results, status: try status(&parser))
        default:
            throw TCGStorageError(.unexpectedToken, at: 0, "payload starts with neither Call, a list, nor EndOfSession")
        }
        // Some drives pad with Empty tokens; anything else after the status list is malformed.
        while let extra = parser.next {
            guard extra == .empty else {
                throw TCGStorageError(.unexpectedToken, at: parser.position, "tokens after the status list")
            }
            _ = try parser.value()
        }
        return payload
    }

    private static func status(_ parser: inout TCGValueParser) throws(TCGStorageError) -> MethodStatus {
        guard case .list(let items) = try parser.value(), items.count == 3,
              let code = items[0].unsignedValue, code <= UInt64(UInt8.max) else {
            throw TCGStorageError(.malformedValue, at: parser.position, "status list must be [status 0 0]")
        }
        return MethodStatus(rawValue: UInt8(code))
    }

    public func tokens() -> [Token] {
        switch self {
        case .call(let call, let status): return call.tokens(status: status)
        case .result(let values, let status):
            var out: [Token] = []
            TCGValue.list(values).appendTokens(to: &out)
            out.append(.endOfData)
            out.append(contentsOf: [.startList, .unsigned(UInt64(status.rawValue)), .unsigned(0), .unsigned(0), .endList])
            return out
        case .endOfSession: return [.endOfSession]
        }
    }

    public func encoded() -> [UInt8] { TokenEncoder.encode(tokens()) }
}
