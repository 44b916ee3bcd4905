import Platform

/// One request, one response with a key server. Production speaks mutual TLS (`KMIPConnection`);
/// tests whose point is not TLS can carry the same messages to the simulated key server in-process.
public protocol KMIPExchange: AnyObject, Sendable {
    /// The server this exchange reaches (for messages and failover reports).
    var server: ServerAddress { get }

    /// Sends a request and returns the decoded response, the whole answer before `deadline`.
    func send(_ request: RequestMessage, deadline: Deadline) throws(KeyServerError) -> ResponseMessage

    /// Opens the underlying connection now (a handshake test); a no-op where there is none.
    func connect() throws(KeyServerError)

    /// Closes the underlying connection; the next request opens a new one.
    func close()

    /// The negotiated TLS protocol and cipher, where there is TLS.
    var tlsSummary: String? { get }
}
