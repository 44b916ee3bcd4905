import ControlAPI
import Foundation
import LockState

/// Where one copy of a key was stored, as recorded beside its generation (and the RDL token):
/// a local key file, a full copy on a key server, one Shamir share on a key server, or a file
/// clevis sealed (with the policy it was sealed under). The state keeps the text form
/// (`local:PATH`, `kmip:SERVER:ID`, `kmip-share:SERVER:ID`, `clevis:PIN:BASE64-CONFIG:PATH`);
/// code reads this type.
public enum KeyLocation: Sendable, Hashable, CustomStringConvertible {
    case localFile(path: String)
    case keyServer(server: String, objectID: String)
    case keyServerShare(server: String, objectID: String)
    case clevisFile(path: String, policy: ClevisPolicy)

    private static let localPrefix = "local:"
    private static let clevisPrefix = "clevis:"
    private static let copyPrefix = "kmip:"
    private static let sharePrefix = "kmip-share:"

    /// The recorded text form, or nil when `text` is not one. A server's name may hold colons
    /// itself (the default name is HOST:PORT), so the object identifier is what follows the
    /// last colon; an identifier that held one would not be found by it, and the key would be
    /// located by its name instead.
    public init?(recorded text: String) {
        if text.hasPrefix(Self.localPrefix) {
            let path = String(text.dropFirst(Self.localPrefix.count))
            guard !path.isEmpty else { return nil }
            self = .localFile(path: path)
            return
        }
        if text.hasPrefix(Self.clevisPrefix) {
            // The pin and the base64 of its configuration hold no colon; the path is all that follows.
            let fields = text.dropFirst(Self.clevisPrefix.count).split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, !fields[2].isEmpty, let raw = Data(base64Encoded: String(fields[1])),
                  let config = String(data: raw, encoding: .utf8) else { return nil }
            let policy = ClevisPolicy(pin: String(fields[0]), config: config)
            guard policy.problem == nil else { return nil }
            self = .clevisFile(path: String(fields[2]), policy: policy)
            return
        }
        let share = text.hasPrefix(Self.sharePrefix)
        guard share || text.hasPrefix(Self.copyPrefix) else { return nil }
        let rest = text.dropFirst(share ? Self.sharePrefix.count : Self.copyPrefix.count)
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        let server = String(rest[..<colon]), objectID = String(rest[rest.index(after: colon)...])
        guard !server.isEmpty, !objectID.isEmpty else { return nil }
        self = share ? .keyServerShare(server: server, objectID: objectID) : .keyServer(server: server, objectID: objectID)
    }

    /// The text form the state records.
    public var description: String {
        switch self {
        case .localFile(let path): return Self.localPrefix + path
        case .keyServer(let server, let id): return Self.copyPrefix + server + ":" + id
        case .keyServerShare(let server, let id): return Self.sharePrefix + server + ":" + id
        case .clevisFile(let path, let policy):
            return Self.clevisPrefix + policy.pin + ":" + Data(policy.config.utf8).base64EncodedString() + ":" + path
        }
    }

    /// The key server holding this copy or share (nil for a local file).
    public var server: String? {
        switch self {
        case .localFile, .clevisFile: return nil
        case .keyServer(let server, _), .keyServerShare(let server, _): return server
        }
    }

    /// The object's Unique Identifier on its key server (nil for a local file).
    public var objectID: String? {
        switch self {
        case .localFile, .clevisFile: return nil
        case .keyServer(_, let id), .keyServerShare(_, let id): return id
        }
    }

    /// The directory of a local key file (nil on a key server).
    public var keyDirectory: String? {
        guard case .localFile(let path) = self, let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Every recorded location that parses (the others are ignored: the key is then found by name).
    public static func parse(_ recorded: [String]) -> [KeyLocation] { recorded.compactMap(KeyLocation.init(recorded:)) }
}

extension KeyLocation {
    /// The sealed file and its policy, for a location clevis keeps (nil otherwise).
    public var clevis: (path: String, policy: ClevisPolicy)? {
        guard case .clevisFile(let path, let policy) = self else { return nil }
        return (path, policy)
    }
}

extension Array where Element == KeyLocation {
    /// The object's identifier on `server`, when one was recorded.
    func objectID(on server: String) -> String? { first { $0.server == server }?.objectID }
}

extension StoredKeyGeneration {
    /// Where this generation's AK was stored.
    var keyLocations: [KeyLocation] { KeyLocation.parse(locations) }
}
