import Certificates
import COpenSSL
import Platform
#if canImport(Glibc)
import Glibc
#endif

/// One mutually authenticated TLS connection to a key server, through the system OpenSSL.
/// Non-blocking underneath so every step honours a deadline.
final class TLSConnection {
    let server: ServerAddress
    private var fd: Int32 = -1
    private var context: OpaquePointer?
    private var ssl: OpaquePointer?
    private let ioTimeout: Double
    /// Protocol and cipher suite agreed in the handshake, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384".
    private(set) var negotiated = ""

    /// Connects, handshakes and verifies, each within the connect timeout and never past
    /// `deadline`; every failure is a `KeyServerError` naming the cause.
    init(server: ServerAddress, configuration c: TLSConfiguration, deadline: Deadline = .never) throws(KeyServerError) {
        self.server = server
        ioTimeout = c.ioTimeout
        do {
            try makeContext(c)
            try connectSocket(timeout: c.connectTimeout, deadline: deadline)
            try handshake(c, deadline: deadline)
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        if let ssl {
            // Best effort close_notify without waiting for the peer's (the peer may be gone: no SIGPIPE).
            withoutSIGPIPE { _ = SSL_shutdown(ssl) }
            SSL_free(ssl)
        }
        ssl = nil
        if let context { SSL_CTX_free(context) }
        context = nil
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private func fail(_ code: KeyServerError.Code, _ cause: String, _ fix: String) -> KeyServerError {
        KeyServerError(code, server: server.description, cause: cause, fix: fix)
    }

    private func makeContext(_ c: TLSConfiguration) throws(KeyServerError) {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw fail(.keyServerSslError, "OpenSSL could not create a TLS context: \(Self.drainErrors())", "check the OpenSSL installation")
        }
        context = ctx
        SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        // OpenSSL keeps the last record it deciphered (a Get answer: a key) in its read buffer until
        // the next one overwrites it; SSL_OP_CLEANSE_PLAINTEXT (bit 1, a macro Swift cannot import)
        // clears it as soon as it is handed over, and when the connection is freed.
        SSL_CTX_set_options(ctx, UInt64(1) << 1)
        guard SSL_CTX_set_cipher_list(ctx, c.tls12Ciphers) == 1 else {
            throw fail(.keyServerConfigurationError, "no usable TLS 1.2 cipher in '\(c.tls12Ciphers)'", "fix the cipher list")
        }
        guard SSL_CTX_use_certificate_chain_file(ctx, c.certificatePath) == 1 else {
            throw fail(.keyServerConfigurationError, "cannot load the client certificate \(c.certificatePath): \(Self.drainErrors())",
                       "give a PEM certificate file (with intermediates after it)")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, c.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            throw fail(.keyServerConfigurationError, "cannot load the client private key \(c.privateKeyPath): \(Self.drainErrors())",
                       "give the PEM private key that belongs to the certificate")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw fail(.keyServerConfigurationError, "the private key does not match the client certificate",
                       "pair the certificate with the key it was issued for")
        }
        guard SSL_CTX_load_verify_locations(ctx, c.caPath, nil) == 1 else {
            throw fail(.keyServerConfigurationError, "cannot load the CA certificates \(c.caPath): \(Self.drainErrors())",
                       "give a PEM file with the CA (and intermediate) certificates that signed the server's certificate")
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
    }

    private func connectSocket(timeout: Double, deadline overall: Deadline) throws(KeyServerError) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(server.host, String(server.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw fail(.keyServerUnavailable, "cannot resolve \(server.host): \(String(cString: gai_strerror(rc)))",
                       "check the server name or use its IP address")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        let deadline = Deadline.after(seconds: timeout).earlier(overall)
        while let ai = entry {
            entry = ai.pointee.ai_next
            let s = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                           ai.pointee.ai_protocol)
            if s < 0 { lastError = String(cString: strerror(errno)); continue }
            var result = Glibc.connect(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen)
            if result != 0 && errno == EINPROGRESS {
                var pfd = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
                let wait = Int32(max(1, deadline.remainingMilliseconds))
                if poll(&pfd, 1, wait) == 1 {
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len)
                    result = err == 0 ? 0 : -1
                    if err != 0 { lastError = String(cString: strerror(err)) }
                } else {
                    lastError = "no answer within \(timeout) s"
                }
            } else if result != 0 {
                lastError = String(cString: strerror(errno))
            }
            if result == 0 {
                fd = s
                var one: Int32 = 1
                setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return
            }
            Glibc.close(s)
        }
        throw fail(.keyServerUnavailable, "cannot connect to \(server): \(lastError)",
                   "check that the key server is running and reachable on port \(server.port)")
    }

    private func handshake(_ c: TLSConfiguration, deadline overall: Deadline) throws(KeyServerError) {
        guard let context, let ssl = SSL_new(context) else {
            throw fail(.keyServerSslError, "OpenSSL could not create a connection", "check the OpenSSL installation")
        }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        let isIP = Self.isIPAddress(server.host)
        if !isIP {
            // SNI; PyKMIP ignores it, virtual-hosted servers need it.
            server.host.withCString { name in
                _ = SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: name))
            }
        }
        if c.verifyServerName {
            let param = SSL_get0_param(ssl)
            if isIP { X509_VERIFY_PARAM_set1_ip_asc(param, server.host) } else { SSL_set1_host(ssl, server.host) }
        }
        let deadline = Deadline.after(seconds: c.connectTimeout).earlier(overall)
        ERR_clear_error()
        while true {
            let rc = SSL_connect(ssl)
            if rc == 1 {
                let version = SSL_get_version(ssl).map { String(cString: $0) } ?? "?"
                let cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)).map { String(cString: $0) } ?? "?"
                negotiated = "\(version) \(cipher)"
                return
            }
            let err = SSL_get_error(ssl, rc)
            if err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE {
                try waitReady(reading: err == SSL_ERROR_WANT_READ, deadline: deadline, during: "during the TLS handshake")
                continue
            }
            throw classifyHandshakeFailure(ssl)
        }
    }

    private func classifyHandshakeFailure(_ ssl: OpaquePointer) -> KeyServerError {
        let verify = SSL_get_verify_result(ssl)
        let errors = Self.drainErrors()
        if verify != Int(X509_V_OK) {
            let reason = String(cString: X509_verify_cert_error_string(verify))
            let nameProblem = verify == Int(X509_V_ERR_HOSTNAME_MISMATCH) || verify == Int(X509_V_ERR_IP_ADDRESS_MISMATCH)
            let dated = verify == Int(X509_V_ERR_CERT_HAS_EXPIRED) || verify == Int(X509_V_ERR_CERT_NOT_YET_VALID)
            let weak = verify == Int(X509_V_ERR_EE_KEY_TOO_SMALL) || verify == Int(X509_V_ERR_CA_KEY_TOO_SMALL)
                || verify == Int(X509_V_ERR_CA_MD_TOO_WEAK)
            let fix = nameProblem ? "connect by a name or IP the server certificate lists, or turn off server-name verification"
                : dated ? "the key server's certificate (or one of its chain) is outside its validity: have it renewed, and check this host's clock"
                : weak ? "the key server's certificate uses a key or signature too weak for this host's OpenSSL policy: have it reissued"
                : "install the CA (and intermediates) that signed the server's certificate"
            return fail(.keyServerSslError, "the server's certificate is not trusted: \(reason)", fix)
        }
        let lower = errors.lowercased()
        if lower.contains("alert") && (lower.contains("certificate") || lower.contains("unknown ca") || lower.contains("access denied")) {
            return fail(.keyServerAuthFailed, "the server rejected the client certificate (\(errors))",
                        "have the server trust the CA that signed the client certificate; check it is not revoked or expired and has EKU clientAuth")
        }
        if errors.isEmpty {
            return fail(.keyServerUnavailable, "the server closed the connection during the TLS handshake",
                        "check the server's TLS settings and that it trusts this client")
        }
        return fail(.keyServerSslError, "TLS handshake failed: \(errors)",
                    "check TLS versions and cipher suites on both sides (TLS 1.2+ with a common suite)")
    }

    private func waitReady(reading: Bool, deadline: Deadline, during what: String) throws(KeyServerError) {
        let remaining = deadline.remainingMilliseconds
        guard remaining > 0 else {
            throw fail(.keyServerUnavailable, "no answer \(what) within the timeout", "check that the key server is responsive")
        }
        var pfd = pollfd(fd: fd, events: Int16(reading ? POLLIN : POLLOUT), revents: 0)
        let rc = poll(&pfd, 1, Int32(remaining))
        if rc == 0 {
            throw fail(.keyServerUnavailable, "no answer \(what) within the timeout", "check that the key server is responsive")
        }
    }

    /// Writes all bytes before `deadline`.
    func write(_ bytes: [UInt8], deadline: Deadline) throws(KeyServerError) {
        guard let ssl else { throw fail(.keyServerUnavailable, "the connection is closed", "reconnect") }
        var done = 0
        ERR_clear_error()
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw in SSL_write(ssl, raw.baseAddress.map { $0 + done }, Int32(bytes.count - done)) }
            if n > 0 { done += Int(n); continue }
            let err = SSL_get_error(ssl, n)
            if err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE {
                try waitReady(reading: err == SSL_ERROR_WANT_READ, deadline: deadline, during: "while sending")
                continue
            }
            throw fail(.keyServerUnavailable, "sending failed: \(Self.drainErrors())", "the server closed the connection; retry")
        }
    }

    /// Reads exactly `count` bytes. `.closedBeforeAnyByte` lets the caller reconnect an idle connection.
    enum ReadOutcome { case bytes([UInt8]), closedBeforeAnyByte }

    /// Reads exactly `count` bytes before `deadline`, however the server spreads them out (a
    /// server sending a byte at a time gets no more time than one that sends nothing).
    func read(_ count: Int, deadline: Deadline) throws(KeyServerError) -> ReadOutcome {
        guard let ssl else { throw fail(.keyServerUnavailable, "the connection is closed", "reconnect") }
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        ERR_clear_error()
        while done < count {
            let n = buffer.withUnsafeMutableBytes { raw in SSL_read(ssl, raw.baseAddress.map { $0 + done }, Int32(count - done)) }
            if n > 0 { done += Int(n); continue }
            let err = SSL_get_error(ssl, n)
            if err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE {
                try waitReady(reading: err == SSL_ERROR_WANT_READ, deadline: deadline, during: "while waiting for the response")
                continue
            }
            if err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL {
                let errors = Self.drainErrors()
                if done == 0 && !errors.lowercased().contains("alert") { return .closedBeforeAnyByte }
                if errors.lowercased().contains("alert") {
                    throw fail(.keyServerAuthFailed, "the server ended the session with an alert: \(errors)",
                               "check that the server still trusts the client certificate")
                }
                throw fail(.keyServerProtocolError, "the server closed the connection in the middle of a response",
                           "retry; if it persists the server is faulty")
            }
            throw fail(.keyServerUnavailable, "receiving failed: \(Self.drainErrors())", "retry")
        }
        return .bytes(buffer)
    }

    static func drainErrors() -> String { OpenSSLErrorQueue.drain() }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
