import ControlAPI
import Keys
import Platform

/// What a key source says about one key: here it is, or not here (and why), so the next source
/// can be tried — the shape of systemd-cryptsetup's key sources.
public enum KeyLookup: Sendable {
    case found(Secret)
    case notHere(String)
}

/// Somewhere authentication keys can be fetched from before `deadline`.
public protocol KeySource: Sendable {
    /// For messages: "local files in /var/lib/sedlock/keys", "key servers ks1, ks2".
    var name: String { get }
    func fetch(keyID: String, deadline: Deadline) -> KeyLookup
}

/// A key source that can also keep a new key.
public protocol KeyStore: KeySource {
    /// Stores the AK of a new generation; returns where it went (one entry per copy).
    func store(keyID: String, tag: String, ak: Secret) throws(ControlError) -> [String]
}
