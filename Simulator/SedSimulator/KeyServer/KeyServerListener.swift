import Platform
import COpenSSL
import Foundation
import KMIPCodec
import SimulatorLink
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The simulated key server's mutual-TLS listener on 127.0.0.1: one thread per client,
/// with the controls in DIR/controls.json applied to every connection and request.
public final class KeyServerListener: @unchecked Sendable {
    public let directory: URL
    public let port: UInt16
    private let listenFD: Int32
    private let context: OpaquePointer
    private let frontDoor: KeyServerFrontDoor

    public init(directory: URL, port: UInt16) throws {
        self.directory = directory
        frontDoor = KeyServerFrontDoor(directory: directory)
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw SimulatorError.crypto("cannot create a TLS server context") }
        context = ctx
        SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        let file = { (name: String) in directory.appendingPathComponent(name).path }
        guard SSL_CTX_use_certificate_chain_file(ctx, file("server.pem")) == 1,
              SSL_CTX_use_PrivateKey_file(ctx, file("server.key"), SSL_FILETYPE_PEM) == 1,
              SSL_CTX_check_private_key(ctx) == 1,
              SSL_CTX_load_verify_locations(ctx, file("ca.pem"), nil) == 1 else {
            SSL_CTX_free(ctx)
            throw SimulatorError.invalidArray("the key server's certificates in \(directory.path) do not load; run `sedsim kmip init`")
        }
        // Mutual TLS: a client without a certificate from our CA fails the handshake.
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)

        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 64) == 0 else {
            close(fd)
            SSL_CTX_free(ctx)
            throw SimulatorError.storage("cannot listen on 127.0.0.1:\(port): \(errnoText())")
        }
        listenFD = fd
        self.port = UInt16(bigEndian: addr.sin_port)
    }

    /// Connections served at once; one more is closed at once (a flood of idle connections must
    /// not cost a thread and buffers each).
    public static let maximumConnections = 256
    /// Seconds a connection may stay silent — in the handshake, inside a message, or between
    /// requests — before it is closed.
    public static let idleSeconds = 10
    private let connections = Mutex(0)

    public func run() -> Never {
        while true {
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                // Out of descriptors (EMFILE) or an aborted connection: keep serving, without spinning.
                usleep(10_000)
                continue
            }
            let admitted = connections.withLock { count -> Bool in
                guard count < Self.maximumConnections else { return false }
                count += 1
                return true
            }
            guard admitted else {
                close(client)
                continue
            }
            Thread.detachNewThread { [self] in
                serve(client)
                connections.withLock { $0 -= 1 }
            }
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        if frontDoor.refusesConnections {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            return
        }
        // Without NODELAY the handshake's small flights wait on delayed ACKs (about 40 ms each).
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: Self.idleSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let ssl = SSL_new(context) else { return }
        defer { SSL_free(ssl) }
        SSL_set_fd(ssl, fd)
        guard SSL_accept(ssl) == 1 else { ERR_clear_error(); return }
        let identity = Self.commonName(ssl) ?? ""
        while let request = readMessage(ssl) {
            switch frontDoor.answer(request, identity: identity) {
            case .hang:
                // Keep the connection open and silent until the client gives up.
                while readMessage(ssl) != nil {}
                return
            case .respond(let response):
                guard write(ssl, response) else { return }
            case .drip(let response, let interval):
                for byte in response {
                    usleep(useconds_t(interval) * 1000)
                    guard write(ssl, [byte]) else { return }
                }
            }
        }
        SSL_shutdown(ssl)
    }

    private func readMessage(_ ssl: OpaquePointer) -> [UInt8]? {
        guard let header = readExactly(ssl, 8), let total = try? TTLVCodec.messageSize(header: header),
              total <= TTLVCodec.defaultMaximumSize, let body = readExactly(ssl, total - 8) else { return nil }
        return header + body
    }

    /// Reads `count` bytes as they arrive, in chunks of at most 64 KiB: a message that announces
    /// 1 MiB and sends nothing costs one chunk, not the megabyte.
    private func readExactly(_ ssl: OpaquePointer, _ count: Int) -> [UInt8]? {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(count, 65_536))
        while buffer.count < count {
            let wanted = min(chunk.count, count - buffer.count)
            let n = chunk.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32(wanted)) }
            if n <= 0 { ERR_clear_error(); return nil }
            buffer.append(contentsOf: chunk[0..<Int(n)])
        }
        return buffer
    }

    private func write(_ ssl: OpaquePointer, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress.map { $0 + done }, Int32(bytes.count - done)) }
            if n <= 0 { ERR_clear_error(); return false }
            done += Int(n)
        }
        return true
    }

    static func commonName(_ ssl: OpaquePointer) -> String? {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(cert) }
        var buffer = [CChar](repeating: 0, count: 256)
        let n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, &buffer, Int32(buffer.count))
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
