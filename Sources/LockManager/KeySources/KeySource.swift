import ControlAPI
import Keys
import Platform

/// What a key source says about one key, the three answers of systemd-cryptsetup's key sources:
/// here it is; not here (try the next source, and perhaps this one again later); or a hard error
/// that no waiting will mend (a key file others can read, a certificate the server refuses, a
/// revoked token), so the caller stops waiting for it.
public enum KeyLookup: Sendable {
    case found(Secret)
    case notHere(String)
    case refused(String)

    /// Why the key is not in hand (nil when it is).
    public var reason: String? {
        switch self {
        case .found: return nil
        case .notHere(let why), .refused(let why): return why
        }
    }
}

/// Somewhere authentication keys can be fetched from before `deadline`.
public protocol KeySource: Sendable {
    /// For messages: "local files in /var/lib/sedlock/keys", "key servers ks1, ks2".
    var name: String { get }
    /// Whether a key that is not here now may be here later within the same wait (a key server
    /// that is down may come back; a key file that is absent will not appear by itself).
    var answersMayChange: Bool { get }
    func fetch(keyID: String, deadline: Deadline) -> KeyLookup
}

/// A key source that can also keep a new key.
public protocol KeyStore: KeySource {
    /// Stores the AK of a new generation; returns where it went (one entry per copy).
    func store(keyID: String, tag: String, ak: Secret) throws(ControlError) -> [KeyLocation]
}
