import Foundation
import Logging
import Platform
import ServiceLifecycle
import Synchronization

/// `GET /metrics` on a loopback address ([metrics] listen): the same Prometheus text as the
/// textfile, rendered at each scrape from what the monitors last found. Anything else is 404.
///
/// HTTP/1.1 at its smallest, on the daemon's own deadline-bounded sockets: one request per
/// connection (`Connection: close`), its head within 8 KiB and 10 s. At most eight connections
/// are served at once; when all are taken, the one waiting longest for its request is closed to
/// make room, so a local user holding connections open costs a scrape nothing. (An HTTP server
/// package brought FoundationNetworking and with it libcurl, GnuTLS, LDAP and Kerberos into a
/// daemon that holds keys: 44 shared libraries mapped, 3.9 MB of them for this one page.)
struct MetricsEndpoint: Service {
    let exporter: MetricsExporter
    let address: MetricsAddress
    let logger: Logger

    static let headLimit = 8192
    static let requestTimeout = 10.0
    static let connectionLimit = 8

    func run() async throws {
        let listener: StreamSocket
        do { listener = try StreamSocket.listen(host: address.host, port: address.port) } catch {
            // The daemon stops with it: a metrics endpoint asked for and missing would go unnoticed.
            throw DaemonFailure("cannot serve metrics on \(address.description): \(error)", status: 1)
        }
        let server = MetricsServer(listener: listener, exporter: exporter, logger: logger)
        server.start()
        logger.info("metrics on http://\(address.description)/metrics")
        try? await gracefulShutdown()
        await server.stop()
    }
}

/// The accept loop and its connections, each on a thread of its own.
final class MetricsServer: Sendable {
    private struct State {
        var nextID = 0
        /// Connections still reading their request, by when they came.
        var waiting: [Int: (socket: StreamSocket, since: UInt64)] = [:]
    }

    private let listener: StreamSocket
    private let exporter: MetricsExporter
    private let logger: Logger
    private let state = Mutex(State())
    private let threads = ServingThreads(name: "metrics")

    init(listener: StreamSocket, exporter: MetricsExporter, logger: Logger) {
        self.listener = listener
        self.exporter = exporter
        self.logger = logger
    }

    func start() {
        threads.startAcceptLoop { [self] in acceptLoop() }
    }

    /// Stops accepting, closes connections still waiting for their request, and returns once
    /// every connection ended.
    func stop() async {
        await threads.stop { [self] in
            for socket in state.withLock({ $0.waiting.values.map(\.socket) }) { socket.shutdown() }
        }
    }

    private func acceptLoop() {
        while !threads.isStopping {
            let client: StreamSocket?
            do { client = try listener.accept(deadline: .after(seconds: 0.2)) } catch {
                logger.error("metrics endpoint: accept failed: \(error)")
                Thread.sleep(forTimeInterval: 0.2)
                continue
            }
            guard let client else { continue }
            let now = DispatchTime.now().uptimeNanoseconds
            let full = threads.connectionCount >= MetricsEndpoint.connectionLimit
            let (id, evicted) = state.withLock { state -> (Int, StreamSocket?) in
                var evicted: StreamSocket?
                if full, let oldest = state.waiting.min(by: { $0.value.since < $1.value.since }) {
                    evicted = state.waiting.removeValue(forKey: oldest.key)?.socket
                }
                state.nextID += 1
                state.waiting[state.nextID] = (client, now)
                return (state.nextID, evicted)
            }
            evicted?.shutdown()  // its thread sees the hang-up and ends
            threads.serve { [self] in serve(client, id: id) }
        }
    }

    private func serve(_ client: StreamSocket, id: Int) {
        // One deadline for the whole exchange: the head in, the answer out.
        let deadline = Deadline.after(seconds: MetricsEndpoint.requestTimeout)
        let head = HTTPRequestHead.read(from: client, limit: MetricsEndpoint.headLimit, deadline: deadline)
        state.withLock { _ = $0.waiting.removeValue(forKey: id) }
        let response: HTTPResponse
        switch head {
        case .failure(.unreadable): return  // timed out, closed or cut off: nobody to answer
        case .failure(.tooLarge): response = HTTPResponse(status: "431 Request Header Fields Too Large")
        case .failure(.malformed): response = HTTPResponse(status: "400 Bad Request")
        case .success(let request):
            switch (request.method, request.path) {
            case ("GET", "/metrics"), ("HEAD", "/metrics"):
                response = HTTPResponse(status: "200 OK", contentType: "text/plain; version=0.0.4; charset=utf-8",
                                        body: Array(exporter.render().utf8), omitBody: request.method == "HEAD")
            case (_, "/metrics"): response = HTTPResponse(status: "405 Method Not Allowed", extraHeaders: ["Allow: GET, HEAD"])
            default: response = HTTPResponse(status: "404 Not Found")
            }
        }
        try? client.send(response.encoded, deadline: deadline)
    }
}

/// What the endpoint needs of a request: its method and path (headers are read past and ignored).
struct HTTPRequestHead: Equatable {
    let method: String
    let path: String

    enum Failure: Error, Equatable {
        /// Nothing usable arrived in time, or the peer went away.
        case unreadable
        case tooLarge
        case malformed
    }

    /// Reads until the blank line that ends the head, at most `limit` bytes, before `deadline`.
    static func read(from socket: StreamSocket, limit: Int, deadline: Deadline) -> Result<HTTPRequestHead, Failure> {
        var buffer: [UInt8] = []
        while true {
            if let end = headEnd(buffer) { return parse(Array(buffer[..<end])) }
            guard buffer.count < limit else { return .failure(.tooLarge) }
            guard let chunk = try? socket.receiveSome(limit: limit - buffer.count, deadline: deadline), !chunk.isEmpty else {
                return .failure(.unreadable)
            }
            buffer += chunk
        }
    }

    /// Where the head ends: after CRLF CRLF (or a bare LF LF, which RFC 9112 lets a server accept).
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 0x0A {
                if bytes[index + 1] == 0x0A { return index }
                if bytes[index + 1] == 0x0D, index + 2 < bytes.count, bytes[index + 2] == 0x0A { return index }
            }
            index += 1
        }
        return nil
    }

    /// The request line, `METHOD SP TARGET SP HTTP/1.x` (RFC 9112 §3); the query is not the path.
    static func parse(_ head: [UInt8]) -> Result<HTTPRequestHead, Failure> {
        // On bytes: for Swift's String, CR LF is one Character.
        let lineBytes = head.prefix { $0 != 0x0D && $0 != 0x0A }
        guard let line = String(validating: lineBytes, as: UTF8.self) else { return .failure(.malformed) }
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isASCII && $0.isUppercase }),
              parts[1].hasPrefix("/"), parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0" else { return .failure(.malformed) }
        let path = parts[1].prefix { $0 != "?" }
        return .success(HTTPRequestHead(method: String(parts[0]), path: String(path)))
    }
}

/// One answer, closing the connection after it.
struct HTTPResponse {
    let status: String
    let contentType: String
    let body: [UInt8]
    let omitBody: Bool
    let extraHeaders: [String]

    init(status: String, contentType: String = "text/plain; charset=utf-8", body: [UInt8]? = nil, omitBody: Bool = false,
         extraHeaders: [String] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body ?? Array((status + "\n").utf8)
        self.omitBody = omitBody
        self.extraHeaders = extraHeaders
    }

    var encoded: [UInt8] {
        var head = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for header in extraHeaders { head += header + "\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (omitBody ? [] : body)
    }
}
