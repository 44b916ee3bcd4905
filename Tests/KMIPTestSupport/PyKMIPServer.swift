import Platform
import Foundation
import KMIP
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Runs a shell command, failing the fixture when it fails.
@discardableResult
public func shell(_ command: String) throws -> String { try ProcessRunner.shell(command) }

public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A certificate authority and the certificates it signs, made with the openssl CLI.
public struct TestPKI {
    public let directory: String

    public init(directory: String, caName: String = "ca") throws {
        self.directory = directory
        try shell("""
            cd '\(directory)' && openssl req -x509 -newkey rsa:2048 -nodes -keyout \(caName).key -out \(caName).pem -days 30 \
              -subj '/CN=sedlock test \(caName)' 2>/dev/null
            """)
        self.caName = caName
    }

    public let caName: String
    public var caPath: String { "\(directory)/\(caName).pem" }

    /// Issues a certificate; returns (certificate, key) paths.
    public func issue(_ name: String, commonName: String, extensions: String) throws -> (String, String) {
        try shell("""
            cd '\(directory)' && openssl req -newkey rsa:2048 -nodes -keyout \(name).key -out \(name).csr -subj '/CN=\(commonName)' 2>/dev/null \
              && printf '\(extensions)\\n' > \(name).ext \
              && openssl x509 -req -in \(name).csr -CA \(caName).pem -CAkey \(caName).key -CAcreateserial -out \(name).pem -days 30 \
                   -extfile \(name).ext 2>/dev/null
            """)
        return ("\(directory)/\(name).pem", "\(directory)/\(name).key")
    }
}

/// PyKMIP's server on a free loopback port with mutual TLS, for the duration of a test.
public final class PyKMIPServer: @unchecked Sendable {
    public let directory: String
    public let pki: TestPKI
    public let port: UInt16
    private let process: SpawnedProcess

    public static var executable: String {
        ProcessInfo.processInfo.environment["SEDLOCK_PYKMIP_SERVER"] ?? packageRoot.appendingPathComponent(".venv/bin/pykmip-server").path
    }

    /// Starts the same server again (same directory, port and database) with `ca.pem` possibly
    /// replaced. The new instance takes over the directory (removed when the last owner goes).
    public func restart() throws -> PyKMIPServer {
        let new = try PyKMIPServer(reusing: self)
        new.ownsDirectory = ownsDirectory
        ownsDirectory = false
        return new
    }

    private init(reusing old: PyKMIPServer) throws {
        directory = old.directory
        pki = old.pki
        port = old.port
        process = try Self.launch(directory: directory, port: port)
        ownsDirectory = false
    }

    private var ownsDirectory: Bool

    private static func launch(directory: String, port: UInt16) throws -> SpawnedProcess {
        let process = try SpawnedProcess(Self.executable, ["-f", directory + "/server.conf", "-l", directory + "/server.log"])
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if Self.accepts(port) { return process }
            if !process.isRunning {
                throw FixtureError("pykmip-server exited: \((try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? "")")
            }
            usleep(50_000)
        }
        process.stop()
        throw FixtureError("pykmip-server did not listen on \(port)")
    }

    public init() throws {
        ownsDirectory = true
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pykmip-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory + "/policies", withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: directory + "/policies/empty.json"))
        pki = try TestPKI(directory: directory)
        let (cert, key) = try pki.issue("server", commonName: "localhost",
                                        extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth")
        port = try Self.freePort()
        let config = """
            [server]
            hostname=127.0.0.1
            port=\(port)
            certificate_path=\(cert)
            key_path=\(key)
            ca_path=\(directory)/ca.pem
            auth_suite=TLS1.2
            policy_path=\(directory)/policies
            enable_tls_client_auth=True
            logging_level=INFO
            database_path=\(directory)/pykmip.sqlite
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: directory + "/server.conf"))
        process = try Self.launch(directory: directory, port: port)
    }

    deinit {
        stop()
        if ownsDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }

    public func stop() { process.stop() }

    /// `count` servers that all trust one client (`commonName`, issued by the first server's CA);
    /// the client trusts every server's CA. Servers after the first are restarted with a CA bundle.
    public static func trustingOneClient(count: Int, commonName: String) throws -> (servers: [PyKMIPServer], client: TLSConfiguration) {
        let first = try PyKMIPServer()
        var servers = [first]
        for _ in 1..<count { servers.append(try PyKMIPServer()) }
        var client = try first.client(commonName)
        let bundle = first.directory + "/all-cas.pem"
        try shell("cat " + servers.map { "'\($0.pki.caPath)'" }.joined(separator: " ") + " > '\(bundle)'")
        for n in 1..<count {
            try shell("cp '\(bundle)' '\(servers[n].directory)/ca.pem'")
            servers[n].stop()
            servers[n] = try servers[n].restart()
        }
        client.caPath = bundle
        return (servers, client)
    }

    public var address: ServerAddress { ServerAddress(host: "127.0.0.1", port: port) }

    /// A client identity (CN) this server trusts.
    public func client(_ commonName: String) throws -> TLSConfiguration {
        let (cert, key) = try pki.issue("client-\(commonName)", commonName: commonName, extensions: "extendedKeyUsage=clientAuth")
        return TLSConfiguration(certificatePath: cert, privateKeyPath: key, caPath: pki.caPath, connectTimeout: 5, ioTimeout: 15)
    }

    public static func freePort() throws -> UInt16 { try LoopbackPort.free() }

    public static func accepts(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
