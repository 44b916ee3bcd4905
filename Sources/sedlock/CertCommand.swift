import ArgumentParser
import Certificates
import Foundation

struct CertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert", abstract: "Client certificates for key servers: key pairs, CSRs, self-signed, import, show.",
        subcommands: [CreateKeyPair.self, CertCSR.self, SelfSign.self, CertImport.self, CertShow.self])
}

extension PrivateKey.Kind: ExpressibleByArgument {}

func readText(_ path: String, option: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path), data.count < 1 << 20 else {
        throw CommandFailure("\(option) \(path): cannot read the file", .badArguments)
    }
    return String(decoding: data, as: UTF8.self)
}

/// What a cert command wrote: its text line, or (--json) the files and what they hold.
struct Written: Encodable {
    var files: [String]
    var subject: String? = nil
    var sha256Fingerprint: String? = nil
    var keyType: String? = nil
    var expiry: String? = nil
    var warning: String? = nil

    func show(_ text: String, json: Bool) {
        if json { printJSON(self); return }
        print(text)
        if let warning { print("warning: \(warning)") }
    }
}

struct CreateKeyPair: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create-keypair", abstract: "Generate a private key (written 0600).")
    @Option(help: "rsa2048, rsa3072 or ec-p256.") var type: PrivateKey.Kind = .rsa2048
    @Option(help: "New file for the PEM private key.") var out: String
    @Flag(help: "Print JSON.") var json = false
    func run() throws {
        reporting {
            do {
                let key = try PrivateKey.generate(type)
                try writeNewFile(out, try key.pem(), mode: 0o600)
                Written(files: [out], keyType: key.description).show("\(out): \(key.description) private key", json: json)
            } catch let error as CertificateError { throw CommandFailure(error) }
        }
    }
}

/// Subject options.
struct SubjectOptions: ParsableArguments {
    @Option(help: "Common name: the client identity the key server sees.") var cn: String
    @Option(help: "Organizational unit.") var ou: String?
    var subject: CertificateRequests.Subject { .init(commonName: cn, organizationalUnit: ou) }
}

struct CertCSR: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "csr", abstract: "Make a certificate signing request (EKU clientAuth).")
    @Option(help: "The PEM private key.") var key: String
    @OptionGroup var subject: SubjectOptions
    @Option(help: "New file for the PEM request.") var out: String
    @Flag(help: "Print JSON.") var json = false
    func run() throws {
        reporting {
            do {
                let privateKey = try PrivateKey(pem: try readText(key, option: "--key"))
                try writeNewFile(out, try CertificateRequests.signingRequest(key: privateKey, subject: subject.subject), mode: 0o644)
                Written(files: [out], subject: "CN=\(subject.cn)")
                    .show("\(out): request for CN=\(subject.cn); have the key server's CA sign it, then `sedlock cert import`", json: json)
            } catch let error as CertificateError { throw CommandFailure(error) }
        }
    }
}

struct SelfSign: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "self-sign", abstract: "Make a self-signed client certificate.")
    @Option(help: "The PEM private key.") var key: String
    @OptionGroup var subject: SubjectOptions
    @Option(help: "Validity in days.") var days: Int = 365
    @Option(help: "New file for the PEM certificate.") var out: String
    @Flag(help: "Print JSON.") var json = false
    func run() throws {
        reporting {
            do {
                let privateKey = try PrivateKey(pem: try readText(key, option: "--key"))
                let cert = try CertificateRequests.selfSigned(key: privateKey, subject: subject.subject, days: days)
                try writeNewFile(out, cert.pem(), mode: 0o644)
                Written(files: [out], subject: cert.subject, sha256Fingerprint: cert.fingerprint)
                    .show("\(out): \(cert.subject), SHA-256 \(cert.fingerprint)", json: json)
            } catch let error as CertificateError { throw CommandFailure(error) }
        }
    }
}

struct CertImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Validate a signed client certificate, its key and the CA chain, then copy them into a directory.")
    @Option(help: "The signed client certificate (PEM; intermediates may follow it).") var cert: String
    @Option(help: "Its private key (PEM).") var key: String
    @Option(help: "The CA certificate(s) of the key server (PEM).") var ca: String
    @Option(help: "Directory to copy the validated files into (client.pem, client.key 0600, ca.pem).") var dest: String
    @Flag(help: "Print JSON.") var json = false
    func run() throws {
        reporting {
            do {
                let chain = try Certificate.all(pem: try readText(cert, option: "--cert"))
                let keyText = try readText(key, option: "--key")
                let privateKey = try PrivateKey(pem: keyText)
                let cas = try Certificate.all(pem: try readText(ca, option: "--ca"))
                guard let leaf = chain.first else { throw CommandFailure("--cert: no certificate", .badArguments) }
                guard leaf.matches(privateKey) else {
                    throw CommandFailure("--key does not belong to --cert — pair the certificate with the key its CSR came from", .badArguments)
                }
                try leaf.verify(trusted: cas, intermediates: Array(chain.dropFirst()))
                let expiry = leaf.expiry(now: Int64(Date().timeIntervalSince1970))
                guard expiry != .expired else { throw CommandFailure("--cert has expired", .badArguments) }
                try FileManager.default.createDirectory(atPath: dest, withIntermediateDirectories: true)
                try writeNewFile(dest + "/client.pem", chain.map { $0.pem() }.joined(), mode: 0o644)
                try writeNewFile(dest + "/client.key", keyText, mode: 0o600)
                try writeNewFile(dest + "/ca.pem", cas.map { $0.pem() }.joined(), mode: 0o644)
                Written(files: ["client.pem", "client.key", "ca.pem"].map { dest + "/" + $0 }, subject: leaf.subject,
                        sha256Fingerprint: leaf.fingerprint, expiry: expiry.rawValue,
                        warning: leaf.hasClientAuthUsage ? nil : "the certificate lacks EKU clientAuth; KMIP servers may refuse it")
                    .show("imported \(leaf.subject) (expiry: \(expiry.rawValue)) into \(dest)", json: json)
            } catch let error as CertificateError { throw CommandFailure(error) }
        }
    }
}

struct CertShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Subject, issuer, validity, fingerprint and expiry class.")
    @Argument(help: "A PEM certificate file (each certificate in it is shown).") var file: String
    @Flag(help: "Print JSON.") var json = false
    struct Report: Codable {
        var subject: String; var issuer: String; var notBefore: String; var notAfter: String
        var sha256Fingerprint: String; var expiry: String; var clientAuth: Bool; var selfSigned: Bool
    }
    func run() throws {
        reporting {
            do {
                let now = Int64(Date().timeIntervalSince1970)
                let formatter = ISO8601DateFormatter()
                let reports = try Certificate.all(pem: try readText(file, option: "FILE")).map { c in
                    Report(subject: c.subject, issuer: c.issuer,
                           notBefore: c.notBefore.map { formatter.string(from: Date(timeIntervalSince1970: Double($0))) } ?? "?",
                           notAfter: c.notAfter.map { formatter.string(from: Date(timeIntervalSince1970: Double($0))) } ?? "?",
                           sha256Fingerprint: c.fingerprint, expiry: c.expiry(now: now).rawValue,
                           clientAuth: c.hasClientAuthUsage, selfSigned: c.isSelfSigned)
                }
                if json { printJSON(reports); return }
                for r in reports {
                    print("subject: \(r.subject)\nissuer: \(r.issuer)\nvalid: \(r.notBefore) … \(r.notAfter) (\(r.expiry))\nSHA-256: \(r.sha256Fingerprint)\n")
                }
            } catch let error as CertificateError { throw CommandFailure(error) }
        }
    }
}
