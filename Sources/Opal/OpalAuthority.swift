import TCGStorage

/// The authorities an operator names: SID and PSID on the Admin SP; Admins and Users on the Locking SP.
public enum OpalAuthority: Hashable, Sendable, CustomStringConvertible {
    case sid
    case psid
    case admin(Int)
    case user(Int)

    /// Parses `sid`, `psid`, `admin1`…`admin4`, `user1`…`user8`.
    public init?(_ text: String) {
        let t = text.lowercased()
        if t == "sid" { self = .sid; return }
        if t == "psid" { self = .psid; return }
        if t.hasPrefix("admin"), let n = Int(t.dropFirst(5)), (1...4).contains(n) { self = .admin(n); return }
        if t.hasPrefix("user"), let n = Int(t.dropFirst(4)), (1...8).contains(n) { self = .user(n); return }
        return nil
    }

    public var uid: UID {
        switch self {
        case .sid: return .sid
        case .psid: return .psid
        case .admin(let n): return .lockingAdmin(n)
        case .user(let n): return .user(n)
        }
    }

    public var securityProvider: UID {
        switch self {
        case .sid, .psid: return .adminSP
        case .admin, .user: return .lockingSP
        }
    }

    public var cPin: UID {
        switch self {
        case .sid: return .cPinSID
        case .psid: return .cPinPSID
        case .admin(let n): return .cPinLockingAdmin(n)
        case .user(let n): return .cPinUser(n)
        }
    }

    public var description: String {
        switch self {
        case .sid: return "SID"
        case .psid: return "PSID"
        case .admin(let n): return "Admin\(n)"
        case .user(let n): return "User\(n)"
        }
    }
}

/// A locking range's configuration and state as read from the Locking table.
public struct LockingRangeState: Sendable, Hashable, Codable {
    public var range: Int
    public var start: UInt64
    public var length: UInt64
    public var readLockEnabled: Bool
    public var writeLockEnabled: Bool
    public var readLocked: Bool
    public var writeLocked: Bool
    public var lockOnReset: [String]

    /// Locked for reads and writes (the state an array wants after power loss).
    public var isLocked: Bool { readLockEnabled && readLocked && writeLockEnabled && writeLocked }
}

/// One authority's failed-attempt counters.
public struct TriesState: Sendable, Hashable, Codable {
    public var authority: String
    public var tries: UInt64
    public var tryLimit: UInt64
    public var persistence: Bool
}
