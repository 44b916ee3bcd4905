import Foundation
import KMIP
import Platform
import SedSimulator

/// The test seam for key servers where TLS is not the point: KMIP messages carried in-process to
/// the simulated key server's own request path (`KeyServerFrontDoor`, the code `sedsim kmip serve`
/// runs behind TLS), with its faults and distrust applied the same way.
public final class InProcessKeyServer: KMIPExchange {
    public let server: ServerAddress
    public let frontDoor: KeyServerFrontDoor
    /// The client certificate CN this carrier stands for.
    public let identity: String

    public convenience init(directory: URL, identity: String, port: UInt16) {
        self.init(directory: directory, identity: identity, address: ServerAddress(host: "in-process", port: port))
    }

    public init(directory: URL, identity: String, address: ServerAddress) {
        server = address
        frontDoor = KeyServerFrontDoor(directory: directory)
        self.identity = identity
    }

    /// Answers at once (no time passes in-process); a hung server is a timeout at once.
    public func send(_ request: RequestMessage, deadline: Deadline) throws(KeyServerError) -> ResponseMessage {
        if frontDoor.refusesConnections {
            throw KeyServerError(.keyServerUnavailable, server: server.description, cause: "connection refused", fix: "start the server")
        }
        switch frontDoor.answer(request.encoded(), identity: identity) {
        case .hang:
            throw KeyServerError(.keyServerUnavailable, server: server.description, cause: "no answer within the timeout",
                                 fix: "check that the key server is responsive")
        case .respond(let bytes), .drip(let bytes, _):
            do {
                _ = try TTLVCodec.messageSize(header: Array(bytes.prefix(8)))
                return try ResponseMessage(decoding: bytes)
            } catch {
                throw KeyServerError(.keyServerProtocolError, server: server.description, cause: "malformed response: \(error)",
                                     fix: "the server is faulty")
            }
        }
    }

    public func connect() throws(KeyServerError) {
        if frontDoor.refusesConnections {
            throw KeyServerError(.keyServerUnavailable, server: server.description, cause: "connection refused", fix: "start the server")
        }
    }
    public func close() {}
    public var tlsSummary: String? { nil }
}
