import Certificates
import Foundation
import TestSupport
import Testing

@discardableResult
func sh(_ command: String) throws -> String { try ProcessRunner.shell(command) }

func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("certs-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite("Certificates")
struct CertificatesTests {
    @Test("PEM format checks: BEGIN/END lines, base64 body")
    func pemFormat() throws {
        let good = "-----BEGIN CERTIFICATE-----\nQUJD\nREVG\n-----END CERTIFICATE-----\n"
        #expect(try PEMFormat.blocks(good) == [PEMFormat.Block(label: "CERTIFICATE", base64: "QUJDREVG")])
        let bad = [
            "",
            "no pem here",
            "-----BEGIN CERTIFICATE-----\nQUJD\n",
            "-----BEGIN CERTIFICATE-----\nQU*D\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nQUJD\n-----END PRIVATE KEY-----",
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
            "-----END CERTIFICATE-----",
        ]
        for text in bad { #expect(throws: CertificateError.self) { try PEMFormat.blocks(text) } }
    }

    @Test("expiry classes: warning under 30 days, error under 7, critical under 3, expired")
    func expiry() {
        let day: Int64 = 86_400, now: Int64 = 1_800_000_000
        #expect(ExpiryClass.classify(notAfter: now + 31 * day, now: now) == .ok)
        #expect(ExpiryClass.classify(notAfter: now + 30 * day - 1, now: now) == .warning)
        #expect(ExpiryClass.classify(notAfter: now + 7 * day - 1, now: now) == .error)
        #expect(ExpiryClass.classify(notAfter: now + 3 * day - 1, now: now) == .critical)
        #expect(ExpiryClass.classify(notAfter: now, now: now) == .expired)
        #expect(ExpiryClass.warning < ExpiryClass.critical)
    }

    @Test("key pairs, a CSR with EKU clientAuth, a self-signed certificate — checked with the openssl CLI",
          arguments: [PrivateKey.Kind.rsa2048, .ecP256])
    func generate(kind: PrivateKey.Kind) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try PrivateKey.generate(kind)
        try key.pem().write(toFile: dir + "/key.pem", atomically: true, encoding: .utf8)
        let csr = try CertificateRequests.signingRequest(key: key, subject: .init(commonName: "array-7", organizationalUnit: "storage"))
        try csr.write(toFile: dir + "/req.pem", atomically: true, encoding: .utf8)
        let text = try sh("openssl req -in '\(dir)/req.pem' -verify -noout -text")
        #expect(text.contains("CN = array-7") || text.contains("CN=array-7"))
        #expect(text.contains("TLS Web Client Authentication"))

        let cert = try CertificateRequests.selfSigned(key: key, subject: .init(commonName: "array-7"), days: 365)
        try cert.pem().write(toFile: dir + "/cert.pem", atomically: true, encoding: .utf8)
        #expect(cert.matches(key) && cert.isSelfSigned && cert.hasClientAuthUsage)
        #expect(!cert.matches(try PrivateKey.generate(.ecP256)))
        #expect(cert.subject.contains("CN=array-7"))
        let fingerprint = try sh("openssl x509 -in '\(dir)/cert.pem' -noout -fingerprint -sha256")
        #expect(fingerprint.contains(cert.fingerprint))
        #expect(cert.expiry(now: Int64(Date().timeIntervalSince1970)) == .ok)
        #expect(cert.expiry(now: Int64(Date().timeIntervalSince1970) + 360 * 86_400) == .error)
        // The key written as PEM reads back.
        let again = try PrivateKey(pem: try String(contentsOfFile: dir + "/key.pem", encoding: .utf8))
        #expect(cert.matches(again))
    }

    @Test("chains: leaf → intermediate → root verifies only with the intermediate and the right root")
    func chains() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try sh("""
            cd '\(dir)'
            openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 5 -subj /CN=root \
              -addext basicConstraints=critical,CA:true 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 5 -subj /CN=other 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout inter.key -out inter.csr -subj /CN=intermediate 2>/dev/null
            printf 'basicConstraints=critical,CA:true\\n' > ca.ext
            openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -out inter.pem -days 5 -extfile ca.ext 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj /CN=leaf 2>/dev/null
            openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial -out leaf.pem -days 5 2>/dev/null
            """)
        func load(_ name: String) throws -> [Certificate] {
            try Certificate.all(pem: try String(contentsOfFile: "\(dir)/\(name).pem", encoding: .utf8))
        }
        let leaf = try load("leaf")[0], inter = try load("inter"), root = try load("root"), other = try load("other")
        try leaf.verify(trusted: root, intermediates: inter)
        #expect(throws: CertificateError.self) { try leaf.verify(trusted: root) }
        #expect(throws: CertificateError.self) { try leaf.verify(trusted: other, intermediates: inter) }
        #expect(leaf.expiry(now: Int64(Date().timeIntervalSince1970)) == .error)  // 5 days left
        #expect(leaf.issuer.contains("CN=intermediate"))
        #expect(!leaf.matches(try PrivateKey(pem: try String(contentsOfFile: dir + "/inter.key", encoding: .utf8))))
        #expect(leaf.matches(try PrivateKey(pem: try String(contentsOfFile: dir + "/leaf.key", encoding: .utf8))))
        // A damaged certificate body is a clear error.
        let damaged = try String(contentsOfFile: dir + "/leaf.pem", encoding: .utf8).replacingOccurrences(of: "A", with: "B")
        #expect(throws: CertificateError.self) { try Certificate.all(pem: damaged) }
    }
}
