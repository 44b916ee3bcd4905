import TCGStorage

/// The TCG security subsystem class a drive is driven as, from Level 0 Discovery: Opal (Opal 1
/// and 2, Ruby — Opal's tables and methods) or Enterprise (bands, BandMasters, an EraseMaster).
/// Operations are written once in Opal's terms (SID, Admin1, User1, ranges); the family maps
/// them: on Enterprise, Admin N is BandMaster N−1 (Admin1 ↔ BandMaster0, the global band's), User1
/// is the EraseMaster, range N is band N, and authentication is the Authenticate method after
/// StartSession, with columns named by name.
public enum DriveFamily: String, Sendable, Codable, Hashable {
    case opal
    case enterprise

    public var lockingSP: UID { self == .enterprise ? .enterpriseLockingSP : .lockingSP }
    public var lockingInfo: UID { self == .enterprise ? .enterpriseLockingInfo : .lockingInfo }

    /// Whether the family has this authority (Enterprise has one EraseMaster, no User2…8).
    public func has(_ authority: OpalAuthority) -> Bool {
        guard self == .enterprise else { return true }
        if case .user(let n) = authority { return n == 1 }
        return true
    }

    public func uid(_ authority: OpalAuthority) -> UID {
        guard self == .enterprise else { return authority.uid }
        switch authority {
        case .admin(let n): return .bandMaster(n - 1)
        case .user: return .eraseMaster
        case .sid, .psid: return authority.uid
        }
    }

    public func cPin(_ authority: OpalAuthority) -> UID {
        guard self == .enterprise else { return authority.cPin }
        switch authority {
        case .admin(let n): return .cPinBandMaster(n - 1)
        case .user: return .cPinEraseMaster
        case .sid, .psid: return authority.cPin
        }
    }

    public func securityProvider(_ authority: OpalAuthority) -> UID {
        switch authority {
        case .sid, .psid: return .adminSP
        case .admin, .user: return lockingSP
        }
    }

    public func range(_ n: Int) -> UID { self == .enterprise ? .band(n) : .lockingRange(n) }

    /// The authority as this family names it ("BandMaster0" for Enterprise's Admin1).
    public func name(of authority: OpalAuthority) -> String {
        guard self == .enterprise else { return authority.description }
        switch authority {
        case .admin(let n): return "BandMaster\(n - 1)"
        case .user: return "EraseMaster"
        case .sid, .psid: return authority.description
        }
    }
}
