/// How the client authenticates to key servers and verifies them.
public struct TLSConfiguration: Sendable, Hashable {
    public var certificatePath: String
    public var privateKeyPath: String
    /// Trusted CA certificates (a bundle may hold intermediates).
    public var caPath: String
    /// Verify the server's certificate names the host (DNS name or IP). On unless an operator turns it off.
    public var verifyServerName: Bool
    /// TLS 1.2 cipher list (TLS 1.3 suites are OpenSSL's defaults). Keeps CBC-SHA256 for PyKMIP.
    public var tls12Ciphers: String
    public var connectTimeout: Double
    public var ioTimeout: Double

    public static let defaultTLS12Ciphers =
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
        + "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:"
        + "DHE-RSA-AES128-SHA256:AES256-SHA256:AES128-SHA256"

    public init(certificatePath: String, privateKeyPath: String, caPath: String, verifyServerName: Bool = true,
                tls12Ciphers: String = TLSConfiguration.defaultTLS12Ciphers, connectTimeout: Double = 5,
                ioTimeout: Double = 10) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.caPath = caPath
        self.verifyServerName = verifyServerName
        self.tls12Ciphers = tls12Ciphers
        self.connectTimeout = connectTimeout
        self.ioTimeout = ioTimeout
    }
}

/// A key server address: host (DNS name, IPv4 or bracketed IPv6) and port (5696 by default).
public struct ServerAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16 = 5696) {
        self.host = host
        self.port = port
    }

    /// Parses `host`, `host:port`, `[v6]:port`.
    public init?(_ text: String) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { port = 5696; return }
            guard rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()) else { return nil }
            port = p
            return
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let first = parts.first, !first.isEmpty else { return nil }
        host = String(first)
        if parts.count == 2 {
            guard let p = UInt16(parts[1]), p > 0 else { return nil }
            port = p
        } else {
            port = 5696
        }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
