import Platform
import Foundation
import KMIPCodec
#if canImport(Glibc)
import Glibc
#endif

/// One managed object of the simulated key server.
struct KeyServerObject: Codable, Sendable {
    var id: String
    var type: UInt32
    var owner: String
    var state: UInt32
    var names: [String]
    var groups: [String]
    var algorithm: UInt32?
    var length: Int32?
    var usageMask: Int32?
    var secretDataType: UInt32?
    var material: Data
    var initialDate: Int64
    var activationDate: Int64?
    /// KMIP 1.4 Sensitive; nil (objects stored before it was kept) reads as false.
    var sensitive: Bool?
    /// When any attribute or the state last changed (nil in stores written before: the Initial Date).
    var lastChangeDate: Int64?
    /// The Key Format Type the key was registered with (nil: Opaque for SecretData, Raw otherwise).
    var keyFormatType: UInt32?
    /// Custom attributes ("x-Owner"; 2.0's vendor attributes x and y), in the order added (nil in
    /// stores written before they were kept).
    var custom: [CustomAttribute]?
    /// Lifecycle dates beyond Initial/Activation/Last Change, by attribute name: those a client
    /// gave at registration (Process Start, Protect Stop) and those the server set (Deactivation).
    var dates: [String: Int64]?
    /// An Opaque Object's Opaque Data Type (its value is `material`).
    var opaqueDataType: UInt32?
}

/// One instance of a custom attribute: its 1.x name and its value's TTLV (tagged Attribute Value).
struct CustomAttribute: Codable, Sendable, Equatable {
    var name: String
    var value: Data
}

struct KeyServerDatabase: Codable, Sendable {
    var nextID = 1
    var objects: [KeyServerObject] = []
}

/// The object store in DIR/objects.json. Every access takes DIR/objects.lock, so the server and
/// `sedsim kmip admin` can both change it and each change is effective at once.
public struct KeyServerStore: Sendable {
    public let directory: URL
    var file: URL { directory.appendingPathComponent("objects.json") }

    public init(directory: URL) { self.directory = directory }

    func withDatabase<R>(_ body: (inout KeyServerDatabase) throws -> R) throws -> R {
        let lockFD = open(directory.appendingPathComponent("objects.lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw SimulatorError.storage("cannot open the key server lock in \(directory.path)") }
        defer { close(lockFD) }
        flock(lockFD, LOCK_EX)
        var database = KeyServerDatabase()
        if let data = try? Data(contentsOf: file) {
            do { database = try JSONDecoder().decode(KeyServerDatabase.self, from: data) } catch {
                throw SimulatorError.storage("\(file.path) is damaged: \(error)")
            }
        }
        let before = try? JSONEncoder().encode(database)
        let result = try body(&database)
        let after = try JSONEncoder().encode(database)
        if after != before { try AtomicFile.write(Array(after), to: file.path) }
        return result
    }

    /// Admin: destroy an object regardless of owner and state (a key deleted on the server).
    public func destroy(_ id: String) throws -> Bool {
        try withDatabase { db in
            let before = db.objects.count
            db.objects.removeAll { $0.id == id }
            return db.objects.count != before
        }
    }

    /// Admin: revoke an object (Compromised with key-compromise, else Deactivated).
    public func revoke(_ id: String, compromised: Bool) throws -> Bool {
        try withDatabase { db in
            guard let i = db.objects.firstIndex(where: { $0.id == id }) else { return false }
            db.objects[i].state = compromised ? ObjectState.compromised.rawValue : ObjectState.deactivated.rawValue
            return true
        }
    }
}

/// Faults and trust decisions an administrator (or a test) applies to the running server.
public struct KeyServerControls: Codable, Sendable, Hashable {
    /// Client certificate CNs no longer trusted (a revoked certificate): requests fail authentication.
    public var distrusted: [String] = []
    /// Accept connections but never answer.
    public var hang = false
    /// Close every new connection at once.
    public var refuse = false
    public var latencyMilliseconds = 0
    /// Send each answer one byte at a time, this many milliseconds apart (a slowloris server at
    /// 1000, a dripping one at 50): every single read sees progress, the whole answer takes long.
    public var dripMilliseconds = 0
    /// Answer with bytes that are not valid TTLV.
    public var malformed = false
    /// Answer with a header announcing a 64 MiB message.
    public var oversized = false

    public init() {}

    /// Keys missing from the file (one written before they existed) keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        distrusted = try c.decodeIfPresent([String].self, forKey: .distrusted) ?? []
        hang = try c.decodeIfPresent(Bool.self, forKey: .hang) ?? false
        refuse = try c.decodeIfPresent(Bool.self, forKey: .refuse) ?? false
        latencyMilliseconds = try c.decodeIfPresent(Int.self, forKey: .latencyMilliseconds) ?? 0
        dripMilliseconds = try c.decodeIfPresent(Int.self, forKey: .dripMilliseconds) ?? 0
        malformed = try c.decodeIfPresent(Bool.self, forKey: .malformed) ?? false
        oversized = try c.decodeIfPresent(Bool.self, forKey: .oversized) ?? false
    }

    static let fileName = "controls.json"

    public static func load(from directory: URL) -> KeyServerControls {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent(fileName)),
              let controls = try? JSONDecoder().decode(KeyServerControls.self, from: data) else { return KeyServerControls() }
        return controls
    }

    public func save(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(self)), to: directory.appendingPathComponent(Self.fileName).path)
    }
}
