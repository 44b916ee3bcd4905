import ArgumentParser
import Foundation
import Keys
import KMIP

struct KMIPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kmip",
        abstract: "Talk to KMIP key servers directly (for operators debugging a key server).",
        subcommands: [KMIPTest.self, KMIPDiscoverVersions.self, KMIPQuery.self, KMIPCreate.self, KMIPRegisterSecret.self,
                      KMIPGet.self, KMIPLocate.self, KMIPAttributes.self, KMIPActivate.self, KMIPRevoke.self, KMIPDestroy.self])
}

/// Server, client identity and protocol options shared by every `kmip` command.
struct KMIPOptions: ParsableArguments {
    @Option(help: "Key server HOST[:PORT] (port 5696 by default); repeat for up to four servers, comma-separate a cluster's members.")
    var server: [String]
    @Option(help: "Client certificate (PEM, intermediates may follow).") var cert: String
    @Option(help: "Client private key (PEM).") var key: String
    @Option(help: "CA certificates that signed the server's certificate (PEM).") var ca: String
    @Flag(help: "Do not check that the server's certificate names the host (some appliances lack IP SANs).")
    var noVerifyName = false
    @Option(help: "KMIP version: 1.0 … 1.4, 2.0, or auto (DiscoverVersions).") var kmipVersion: String = "auto"
    @Option(help: "Seconds for connecting and for each answer.") var timeout: Double = 10
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard (1...KeyServerPool.maximumServers).contains(server.count) else { throw ValidationError("give one to four --server options") }
        _ = try entries()
        if kmipVersion != "auto" && parsedVersion == nil { throw ValidationError("--kmip-version takes 1.0…1.4, 2.0 or auto") }
        guard timeout > 0 && timeout <= 300 else { throw ValidationError("--timeout must be between 0 and 300 seconds") }
    }

    var parsedVersion: ProtocolVersion? {
        ProtocolVersion.supported.first { $0.description == kmipVersion }
    }

    func entries() throws -> [KeyServerEntry] {
        try server.map { text in
            let members = try text.split(separator: ",").map { part in
                guard let address = ServerAddress(String(part)) else { throw ValidationError("'\(part)' is not HOST[:PORT]") }
                return address
            }
            return KeyServerEntry(name: text, addresses: members)
        }
    }

    var tls: TLSConfiguration {
        TLSConfiguration(certificatePath: cert, privateKeyPath: key, caPath: ca, verifyServerName: !noVerifyName,
                         connectTimeout: timeout, ioTimeout: timeout)
    }

    /// A pool in the chosen version (negotiated on the first server that answers when `auto`).
    func pool() throws -> KeyServerPool {
        let pool = try KeyServerPool(servers: try entries(), configuration: tls, version: parsedVersion ?? .v1_2)
        return pool
    }

    /// Runs a read with failover, negotiating the version first when asked.
    func read<R>(_ body: (KMIPClient) throws(KeyServerError) -> R) throws -> R {
        let auto = parsedVersion == nil
        return try pool().read { client throws(KeyServerError) in
            if auto { try client.negotiateVersion() }
            return try body(client)
        }
    }

    /// Runs a write on every server; fails, naming the servers that hold a copy, unless every server took it.
    /// Each server assigns its own identifier, so results come labelled with the server.
    func writeAll<R: Sendable>(_ body: (KMIPClient) throws(KeyServerError) -> R) throws -> [(server: String, value: R)] {
        let auto = parsedVersion == nil
        let outcome = try pool().writeAll { client throws(KeyServerError) in
            if auto { try client.negotiateVersion() }
            return try body(client)
        }
        return try outcome.requireAll().map { ($0.server, $0.value) }
    }
}

struct KMIPTest: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "test", abstract: "TLS handshake, authentication and a Locate; prints OK or the precise failure.")
    @OptionGroup var kmip: KMIPOptions

    struct Report: Codable { var server: String; var ok: Bool; var version: String?; var tls: String?; var error: String? }

    func run() throws {
        reporting {
            var reports: [Report] = []
            var failure: KeyServerError?
            for entry in try kmip.entries() {
                for address in entry.addresses {
                    let client = KMIPClient(connection: KMIPConnection(server: address, configuration: kmip.tls),
                                            version: kmip.parsedVersion ?? .v1_2)
                    do {
                        try client.connection.connect()
                        if kmip.parsedVersion == nil { try client.negotiateVersion() }
                        _ = try client.locate([], maximumItems: 1)
                        reports.append(Report(server: address.description, ok: true, version: client.version.description,
                                              tls: client.connection.tlsSummary))
                    } catch let error as KeyServerError {
                        failure = failure ?? error
                        reports.append(Report(server: address.description, ok: false, error: error.description))
                    }
                }
            }
            if kmip.json { printJSON(reports) } else {
                for r in reports {
                    print(r.ok ? "OK \(r.server) (KMIP \(r.version ?? "?"), \(r.tls ?? "TLS ?"))" : "FAIL \(r.error ?? "")")
                }
            }
            if let failure { throw failure }
        }
    }
}

struct KMIPDiscoverVersions: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "discover-versions", abstract: "The KMIP versions the server speaks.")
    @OptionGroup var kmip: KMIPOptions
    func run() throws {
        reporting {
            let versions = try kmip.read { c throws(KeyServerError) in try c.discoverVersions() }.map(\.description)
            if kmip.json { printJSON(versions) } else { print(versions.joined(separator: " ")) }
        }
    }
}

struct KMIPQuery: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "query", abstract: "Operations and object types the server supports.")
    @OptionGroup var kmip: KMIPOptions
    struct Report: Codable { var operations: [String]; var objectTypes: [String]; var vendor: String? }
    func run() throws {
        reporting {
            let q = try kmip.read { c throws(KeyServerError) in try c.query() }
            let report = Report(operations: q.operations.map(\.description), objectTypes: q.objectTypes.map(\.name), vendor: q.vendorIdentification)
            if kmip.json { printJSON(report) } else {
                print("vendor: \(report.vendor ?? "-")\noperations: \(report.operations.joined(separator: ", "))\nobject types: \(report.objectTypes.joined(separator: ", "))")
            }
        }
    }
}

/// Name and group given at creation.
struct NamingOptions: ParsableArguments {
    @Option(help: "Name attribute.") var name: String?
    @Option(help: "Object Group attribute.") var group: String?
    var attributes: [Attribute] { (name.map { [.name($0)] } ?? []) + (group.map { [.objectGroup($0)] } ?? []) }
}

struct KMIPCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an AES-256 key on every server; prints the identifiers.")
    @OptionGroup var kmip: KMIPOptions
    @OptionGroup var naming: NamingOptions
    func run() throws {
        reporting {
            let ids = try kmip.writeAll { c throws(KeyServerError) in try c.createSymmetricKey(attributes: naming.attributes) }
            printIdentifiers(ids, json: kmip.json)
        }
    }
}

struct KMIPRegisterSecret: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register-secret", abstract: "Register a SecretData (Password) from a file on every server; prints the identifiers.")
    @OptionGroup var kmip: KMIPOptions
    @OptionGroup var naming: NamingOptions
    @Option(help: "File holding the secret ('-' for stdin).") var secretFile: String
    func run() throws {
        reporting {
            let secret = try PinFile.read(secretFile, option: "--secret-file")
            let ids = try kmip.writeAll { c throws(KeyServerError) in try c.registerSecret(secret, attributes: naming.attributes) }
            printIdentifiers(ids, json: kmip.json)
        }
    }
}

struct KMIPGet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", 
        abstract: "Fetch an object. Prints its type and size; the material goes only to --output (mode 0600).")
    @OptionGroup var kmip: KMIPOptions
    @Argument(help: "Unique identifier.") var id: String
    @Option(help: "Write the key material to this new file (mode 0600).") var output: String?
    struct Report: Codable { var id: String; var objectType: String; var bytes: Int }
    func run() throws {
        reporting {
            let object = try kmip.read { c throws(KeyServerError) in try c.get(id) }
            if let output {
                try object.material.withUnsafeBytes { try writeNewFile(output, mode: 0o600, $0) }
            }
            let report = Report(id: object.uniqueIdentifier, objectType: object.objectType.name, bytes: object.material.count)
            if kmip.json { printJSON(report) } else { print("\(report.id): \(report.objectType), \(report.bytes) bytes") }
        }
    }
}

extension ObjectType: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    init?(name: String) {
        guard let match = ObjectType.allCases.first(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
        self = match
    }
}

extension ObjectState: ExpressibleByArgument {
    public init?(argument: String) {
        guard let match = ObjectState.allCases.first(where: { $0.name.lowercased() == argument.lowercased() }) else { return nil }
        self = match
    }
}

struct KMIPLocate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "locate", abstract: "Find objects by Name, Object Group, Object Type and State.")
    @OptionGroup var kmip: KMIPOptions
    @OptionGroup var naming: NamingOptions
    @Option(help: "Object type: SecretData, SymmetricKey, …") var type: ObjectType?
    @Option(help: "State: PreActive, Active, Deactivated, Compromised, …") var state: ObjectState?
    @Option(help: "Maximum items.") var max: Int32?
    @Option(help: "Skip this many items (KMIP 1.3+).") var offset: Int32?
    func run() throws {
        reporting {
            var filters = naming.attributes
            if let type { filters.append(.objectType(type)) }
            if let state { filters.append(.state(state)) }
            let ids = try kmip.read { c throws(KeyServerError) in try c.locate(filters, maximumItems: max, offset: offset) }
            if kmip.json { printJSON(ids) } else { ids.forEach { print($0) } }
        }
    }
}

struct KMIPAttributes: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attributes", abstract: "Show an object's attributes.")
    @OptionGroup var kmip: KMIPOptions
    @Argument(help: "Unique identifier.") var id: String
    func run() throws {
        reporting {
            let attributes = try kmip.read { c throws(KeyServerError) in try c.getAttributes(id) }
            var map: [String: String] = [:]
            for a in attributes {
                let value: String
                switch a {
                case .name(let v), .objectGroup(let v), .uniqueIdentifier(let v): value = v
                case .objectType(let t): value = t.name
                case .state(let s): value = s.name
                case .cryptographicAlgorithm(let v): value = "\(v)"
                case .cryptographicLength(let v), .cryptographicUsageMask(let v): value = "\(v)"
                case .initialDate(let v), .activationDate(let v), .lastChangeDate(let v): value = "\(Date(timeIntervalSince1970: Double(v)))"
                case .sensitive(let v): value = v ? "true" : "false"
                case .other: value = "(not shown)"
                }
                map[a.attributeName] = map[a.attributeName].map { $0 + ", " + value } ?? value
            }
            if kmip.json { printJSON(map) } else { for k in map.keys.sorted() { print("\(k): \(map[k] ?? "")") } }
        }
    }
}

struct KMIPActivate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "activate", abstract: "Activate an object (on the first server that holds it).")
    @OptionGroup var kmip: KMIPOptions
    @Argument(help: "Unique identifier.") var id: String
    func run() throws { reporting { try kmip.read { c throws(KeyServerError) in try c.activate(id) }; printOutcome(id, "activated", json: kmip.json) } }
}

extension RevocationReasonCode: ExpressibleByArgument {
    public init?(argument: String) {
        let names: [String: RevocationReasonCode] = [
            "unspecified": .unspecified, "key-compromise": .keyCompromise, "ca-compromise": .caCompromise,
            "affiliation-changed": .affiliationChanged, "superseded": .superseded,
            "cessation-of-operation": .cessationOfOperation, "privilege-withdrawn": .privilegeWithdrawn,
        ]
        guard let code = names[argument] else { return nil }
        self = code
    }
}

struct KMIPRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an object (on the first server that holds it).")
    @OptionGroup var kmip: KMIPOptions
    @Argument(help: "Unique identifier.") var id: String
    @Option(help: "key-compromise, cessation-of-operation, superseded, … ") var reason: RevocationReasonCode = .cessationOfOperation
    @Option(help: "Revocation message.") var message: String?
    func run() throws {
        reporting { try kmip.read { c throws(KeyServerError) in try c.revoke(id, reason: reason, message: message) }; printOutcome(id, "revoked", json: kmip.json) }
    }
}

struct KMIPDestroy: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "destroy", abstract: "Destroy an object on the first server that holds it; an Active one is refused until revoked (`sedlock kmip revoke`).")
    @OptionGroup var kmip: KMIPOptions
    @Argument(help: "Unique identifier.") var id: String
    func run() throws { reporting { try kmip.read { c throws(KeyServerError) in try c.destroy(id) }; printOutcome(id, "destroyed", json: kmip.json) } }
}

/// Prints per-server identifiers: `SERVER ID` lines, or a JSON object server → id.
/// One object's change: `ID: activated`, or `{"id":…,"result":"activated"}`.
func printOutcome(_ id: String, _ result: String, json: Bool) {
    struct Outcome: Encodable { let id: String; let result: String }
    if json { printJSON(Outcome(id: id, result: result)) } else { print("\(id): \(result)") }
}

func printIdentifiers(_ ids: [(server: String, value: String)], json: Bool) {
    if json {
        printJSON(Dictionary(ids.map { ($0.server, $0.value) }, uniquingKeysWith: { a, _ in a }))
    } else {
        for entry in ids { print("\(entry.server) \(entry.value)") }
    }
}
