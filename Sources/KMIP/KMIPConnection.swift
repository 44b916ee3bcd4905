import Foundation
import Platform
import Synchronization

/// What a piece of work sent to key servers: messages (each a round trip) and TLS connections
/// opened. Work runs under a meter (`KMIPTraffic.$meter.withValue(…)`) to learn its cost — the
/// boot unlock reports it; a task-local, so work running beside it is not counted.
public final class KMIPTrafficMeter: Sendable {
    fileprivate let messages = Atomic<Int>(0)
    fileprivate let connections = Atomic<Int>(0)

    public init() {}

    public var roundTrips: Int { messages.load(ordering: .relaxed) }
    public var connectionsOpened: Int { connections.load(ordering: .relaxed) }
}

public enum KMIPTraffic {
    @TaskLocal public static var meter: KMIPTrafficMeter?
}

/// Request/response exchanges with one key server over one reused TLS connection, reopened when
/// the server has closed an idle connection.
/// `connection` is guarded by `lock` (held for a whole exchange); everything else is immutable.
public final class KMIPConnection: KMIPExchange, @unchecked Sendable {
    public let server: ServerAddress
    public let configuration: TLSConfiguration
    public let maximumResponseSize: Int
    private let lock = NSLock()
    private var connection: TLSConnection?

    public init(server: ServerAddress, configuration: TLSConfiguration, maximumResponseSize: Int = TTLVCodec.defaultMaximumSize) {
        self.server = server
        self.configuration = configuration
        self.maximumResponseSize = maximumResponseSize
    }

    /// Opens the TLS connection now (a handshake test).
    public func connect() throws(KeyServerError) {
        lock.lock()
        defer { lock.unlock() }
        if connection == nil {
            connection = try withoutSIGPIPE { () throws(KeyServerError) in
                try TLSConnection(server: server, configuration: configuration)
            }
            KMIPTraffic.meter?.connections.add(1, ordering: .relaxed)
        }
    }

    /// The TLS protocol and cipher of the open connection, if any.
    public var tlsSummary: String? { lock.withLock { connection?.negotiated } }

    public func close() {
        lock.withLock {
            withoutSIGPIPE { connection?.close() }
            connection = nil
        }
    }

    /// Sends a request and returns the decoded response: connecting (when needed) within the
    /// connect timeout, and the request and the whole answer within the I/O timeout, all of it
    /// never past `deadline`.
    public func send(_ request: RequestMessage, deadline: Deadline) throws(KeyServerError) -> ResponseMessage {
        lock.lock()
        defer { lock.unlock() }
        return try withoutSIGPIPE { () throws(KeyServerError) in try exchange(request, deadline: deadline) }
    }

    private func exchange(_ request: RequestMessage, deadline: Deadline) throws(KeyServerError) -> ResponseMessage {
        // A Register carries key material: the encoded request is cleared once done with.
        var bytes = request.encoded()
        defer { bytes.wipe() }
        // One retry, only on a reused connection the server had closed: the request could not be
        // sent, or the connection ended before any byte of an answer. Never after a timeout: the
        // server may be working on it, and a second Create or Register would make two objects.
        for attempt in 0..<2 {
            let reused = connection != nil
            let tls: TLSConnection
            if let existing = connection { tls = existing } else {
                tls = try TLSConnection(server: server, configuration: configuration, deadline: deadline)
                connection = tls
                KMIPTraffic.meter?.connections.add(1, ordering: .relaxed)
            }
            var sent = false
            // One bound for the request and the whole answer, header and body together.
            let answer = Deadline.after(seconds: configuration.ioTimeout).earlier(deadline)
            do throws(KeyServerError) {
                KMIPTraffic.meter?.messages.add(1, ordering: .relaxed)
                try tls.write(bytes, deadline: answer)
                sent = true
                guard case .bytes(let header) = try tls.read(8, deadline: answer) else {
                    connection = nil
                    if reused && attempt == 0 { continue }
                    throw KeyServerError(.keyServerUnavailable, server: server.description,
                                         cause: "the server closed the connection without answering",
                                         fix: "check the server's log; it may reject this client or the request")
                }
                return try decodeResponse(header: header, tls: tls, deadline: answer)
            } catch {
                connection?.close()
                connection = nil
                if reused && attempt == 0 && !sent && error.code == .keyServerUnavailable { continue }
                throw error
            }
        }
        throw KeyServerError(.keyServerUnavailable, server: server.description, cause: "the connection kept closing",
                             fix: "check the key server")
    }

    private func decodeResponse(header: [UInt8], tls: TLSConnection, deadline: Deadline) throws(KeyServerError) -> ResponseMessage {
        let total: Int
        do { total = try TTLVCodec.messageSize(header: header) } catch {
            throw protocolError("unreadable response header: \(error)")
        }
        guard header[3] == 0x01, header[0] == 0x42, header[1] == 0x00, header[2] == 0x7B else {
            throw protocolError("the answer is not a KMIP Response Message")
        }
        guard total <= maximumResponseSize else {
            throw protocolError("the response announces \(total) bytes, over the \(maximumResponseSize)-byte limit")
        }
        guard case .bytes(var body) = try tls.read(total - 8, deadline: deadline) else {
            throw protocolError("the server closed the connection in the middle of a response")
        }
        // A Get answer carries key material: the received bytes are cleared once decoded.
        var message: [UInt8] = []
        message.reserveCapacity(total)
        message += header
        message += body
        body.wipe()
        defer { message.wipe() }
        do { return try ResponseMessage(decoding: message, maximumSize: maximumResponseSize) } catch {
            throw protocolError("malformed response: \(error)")
        }
    }

    private func protocolError(_ cause: String) -> KeyServerError {
        KeyServerError(.keyServerProtocolError, server: server.description, cause: cause,
                       fix: "check that the port serves KMIP over TLS and the server is healthy")
    }
}
