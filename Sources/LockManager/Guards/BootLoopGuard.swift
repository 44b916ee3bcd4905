import Foundation
import LockState

/// Guard 3: when the last `limit` boots all failed to unlock, this boot makes no authentication
/// attempt at all (it waits for keys it can verify and reports "held"), so a machine that
/// reboots without its keys can never walk its drives into their lockout.
struct BootLoopGuard: Sendable {
    let store: any StateStore
    let limit: Int

    /// Consecutive failed boots before the one named `current`.
    func consecutiveFailures(before current: String) throws(StateError) -> Int {
        let boots = try store.recentBoots(limit: limit + 1).filter { $0.bootID != current }
        return boots.prefix { $0.failedToUnlock }.count
    }

    func holds(before current: String) throws(StateError) -> Bool {
        try consecutiveFailures(before: current) >= limit
    }
}

/// The kernel's identity of this boot (`/proc/sys/kernel/random/boot_id`; injectable for tests).
public enum BootIdentity {
    public static let defaultPath = "/proc/sys/kernel/random/boot_id"

    public static func read(_ path: String = defaultPath) -> String? {
        guard let data = FileManager.default.contents(atPath: path), data.count < 128 else { return nil }
        let id = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }
}
