import TCGStorage

/// The security providers of an Opal drive.
enum SecurityProvider: Sendable {
    case admin, locking

    init?(_ uid: UID) {
        switch uid {
        case .adminSP: self = .admin
        case .lockingSP, .enterpriseLockingSP: self = .locking
        default: return nil
        }
    }
}

/// An open session between a host and one SP.
struct DriveSession {
    /// The ComID the session was started on: its packets are taken on that ComID only.
    var comID: UInt16 = SimulatedDrive.baseComID
    let tsn: UInt32
    let hsn: UInt32
    let sp: SecurityProvider
    let write: Bool
    var authorities: Set<UID> = [.anybody]
    /// PINs presented in this session, held only in volatile memory (Activate copies SID's to Admin1).
    var presentedPINs: [UID: [UInt8]] = [:]
    /// The Locking SP key, unsealed by a successful Locking SP authentication.
    var lockingKey: [UInt8]?
    var lastActivity: UInt64
    let timeoutNanoseconds: UInt64

    func isAuthenticated(as authority: UID) -> Bool {
        switch authority {
        case .anybody: return true
        case .admins: return authorities.contains { $0.rawValue & 0xFFFF_FFFF_FFFF_0000 == UID.lockingAdmins.rawValue && $0 != .lockingAdmins }
        case .lockingUsers: return authorities.contains { $0.rawValue & 0xFFFF_FFFF_FFFF_0000 == UID.lockingUsers.rawValue && $0 != .lockingUsers }
        default: return authorities.contains(authority)
        }
    }

    /// True when any of `allowed` (which may name the Admins or Users classes) is authenticated.
    func isAuthenticated(asAnyOf allowed: [UID]) -> Bool {
        allowed.contains { isAuthenticated(as: $0) }
    }
}
