import Keys
import Synchronization

/// The authentication keys this process holds (key ID → AK), in memory only, as NetApp's keytable:
/// loaded and verified before any drive is touched, never written out, never printed.
public final class Keytable: Sendable {
    private let keys = Mutex<[String: Secret]>([:])

    public init() {}

    public func key(_ keyID: String) -> Secret? { keys.withLock { $0[keyID] } }
    public func insert(_ ak: Secret, keyID: String) { keys.withLock { $0[keyID] = ak } }
    public func remove(_ keyID: String) { keys.withLock { _ = $0.removeValue(forKey: keyID) } }
    public var keyIDs: [String] { keys.withLock { $0.keys.sorted() } }
}
