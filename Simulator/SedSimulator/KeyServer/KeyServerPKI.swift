import Foundation

/// The simulated key server's own CA and certificates, made with the openssl command as a key
/// server administrator would make them.
public enum KeyServerPKI {
    static func openssl(_ arguments: [String], in directory: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SimulatorError.crypto("openssl \(arguments.first ?? "") failed: \(String(decoding: message, as: UTF8.self))")
        }
    }

    /// Creates the CA and the server certificate (SAN IP:127.0.0.1, DNS:localhost) unless present.
    public static func initialize(_ directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let has = { (name: String) in FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) }
        if !has("ca.pem") || !has("ca.key") {
            try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
                         "-subj", "/CN=sedsim key server CA", "-addext", "basicConstraints=critical,CA:true"], in: directory)
        }
        if !has("server.pem") || !has("server.key") {
            try Data("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n".utf8)
                .write(to: directory.appendingPathComponent("server.ext"))
            try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
                        in: directory)
            try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                         "-out", "server.pem", "-days", "825", "-extfile", "server.ext"], in: directory)
        }
    }

    /// Issues a client certificate (EKU clientAuth) for `commonName`; returns (certificate, key, CA) paths.
    public static func issueClient(_ directory: URL, commonName: String, prefix: String, days: Int = 365) throws -> (String, String, String) {
        guard !commonName.isEmpty, commonName.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw SimulatorError.invalidArray("a client CN uses letters, digits, '-', '_' and '.' only")
        }
        let out = URL(fileURLWithPath: prefix)
        let folder = out.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SimulatorError.badArgument("--out \(prefix): the folder \(folder) does not exist; create it first")
        }
        guard access(folder, W_OK) == 0 else {
            throw SimulatorError.badArgument("--out \(prefix): the folder \(folder) is not writable (\(String(cString: strerror(errno))))")
        }
        try initialize(directory)
        let key = out.path + ".key", cert = out.path + ".pem", csr = out.path + ".csr", ext = out.path + ".ext", ca = out.path + "-ca.pem"
        try Data("extendedKeyUsage=clientAuth\n".utf8).write(to: URL(fileURLWithPath: ext))
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=\(commonName)"], in: directory)
        try openssl(["x509", "-req", "-in", csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", cert,
                     "-days", "\(days)", "-extfile", ext], in: directory)
        try FileManager.default.removeItem(atPath: csr)
        try FileManager.default.removeItem(atPath: ext)
        try? FileManager.default.removeItem(atPath: ca)
        try FileManager.default.copyItem(atPath: directory.appendingPathComponent("ca.pem").path, toPath: ca)
        chmod(key, 0o600)
        return (cert, key, ca)
    }
}
