import Foundation
import TCGStorage

/// The interface a simulated drive presents itself on.
public enum DriveKind: String, Codable, Sendable, CaseIterable {
    case nvme, sas, sata
}

/// What stands between the host's SCSI commands and a SATA drive: the SAT layer decides which
/// routes to TRUSTED SEND/RECEIVE exist, so hosts must find the one that works.
public enum SATLayer: String, Codable, Sendable, CaseIterable {
    /// Linux libata with allow_tpm=1: SECURITY PROTOCOL IN/OUT translated, ATA PASS-THROUGH(16) and (12).
    case libata
    /// No security translation: only ATA PASS-THROUGH(16) and (12) reach the drive.
    case passThroughOnly = "pass-through-only"
    /// A bridge that knows only ATA PASS-THROUGH(12).
    case ata12Only = "ata12-only"
}

/// Which status an authentication against a locked-out authority returns (real drives differ).
public enum LockoutStatus: String, Codable, Sendable, CaseIterable {
    case notAuthorized = "not-authorized"
    case lockedOut = "locked-out"

    var methodStatus: MethodStatus { self == .lockedOut ? .authorityLockedOut : .notAuthorized }
}

/// Fixed properties of a drive, set when the array is created.
public struct DriveIdentity: Codable, Sendable, Hashable {
    public var kind: DriveKind
    public var model: String
    /// Exactly 20 ASCII characters, space padded, as the drive reports it (the sedutil salt).
    public var serial: String
    public var firmware: String
    public var wwn: UInt64
    public var psid: String
    public var msid: String
    public var blockSize: Int
    public var blockCount: UInt64
}

/// The TCG security subsystem class a simulated drive implements.
public enum SimulatedSSC: String, Codable, Sendable, CaseIterable {
    /// Opal 2: locking and media encryption (AES-256-XTS).
    case opal
    /// Pyrite 2: the same locking, but the media is stored in clear — locking without encryption,
    /// so that a test can show what anyone who takes the drive out would read.
    case pyrite
    /// Enterprise SSC: bands managed each by its BandMaster, an EraseMaster, the Locking SP
    /// always active; media encryption as Opal's.
    case enterprise
    /// Reported as the Ruby SSC (feature 0x0304, the data-center class) with Opal 2's tables,
    /// methods and features: what a host must do is recognise Ruby as an Opal-family drive.
    case ruby
    /// Opalite (feature 0x0301, the client class): Opal's tables and methods with the global
    /// range alone, and no DataStore or Single User Mode; media encrypted as Opal's.
    case opalite

    var encryptsMedia: Bool { self != .pyrite }
    /// Opalite has the global range only; the others a range per `lockingRanges` besides it.
    var hasExtraRanges: Bool { self != .opalite }
}

/// Vendor choices a drive was built with.
public struct DriveSettings: Codable, Sendable, Hashable {
    /// nil (arrays made before it existed) means Opal.
    public var ssc: SimulatedSSC?
    public var tryLimit: UInt64 = 5
    /// C_PIN Persistence of every authority: when true, Tries survive power cycles (a lockout lasts for good).
    public var triesPersistent: Bool = false
    public var lockoutStatus: LockoutStatus = .notAuthorized
    /// Consecutive failed authentications after which the drive erases itself for good (NetApp NSE: 1024).
    public var lifetimeFailureLimit: Int = 1024
    public var lockingRanges: Int = 8
    public var sessionTimeoutSeconds: Double = 30
    /// Whether a hardware reset also resets Tries of non-persistent authorities ([UNCONFIRMED] in the spec).
    public var hardwareResetClearsTries: Bool = false
    public var mbrTableSize: Int = 128 << 20
    /// The Opal SSC minimum for the DataStore table (10 MiB); sparse on disk.
    public var dataStoreSize: Int = 10 << 20
    /// SATA only; nil (arrays made before it existed) means libata.
    public var satLayer: SATLayer?
    /// Tolerances of real firmware beyond the specification; nil or empty: strict.
    public var quirks: [DriveQuirk]?

    public init() {}
}

/// One authority's credential (C_PIN row plus the Authority Enabled column).
struct CredentialRecord: Codable, Sendable, Hashable {
    var enabled: Bool
    var salt: Data?
    var verifier: Data?
    var tryLimit: UInt64
    /// Persisted, but reset at power-on when `persistence` is false.
    var tries: UInt64 = 0
    var persistence: Bool = false
    /// The Locking SP key sealed under this authority's PIN-derived key (Locking SP authorities only).
    var sealedLockingKey: Data?

    var hasPIN: Bool { verifier != nil }
}

/// One locking range (row of the Locking table) with its media key material.
struct RangeRecord: Codable, Sendable, Hashable {
    var start: UInt64 = 0
    var length: UInt64 = 0
    var readLockEnabled = false
    var writeLockEnabled = false
    var readLocked = false
    var writeLocked = false
    var lockOnReset: [ResetType] = [.powerCycle]
    /// Incremented by every GenKey; shown by `sedsim status`.
    var keyGeneration = 1
    /// The 64-byte XTS key sealed under the Locking SP key (absent before activation).
    var sealedMediaKey: Data?
    /// The XTS key in clear, kept only while the range opens without authentication after power-on
    /// (locking disabled or not locked on reset), exactly the data a real drive gives to anybody.
    var openMediaKey: Data?
    /// Authorities allowed to set ReadLocked / WriteLocked (ACE_Locking_Range_Set_RdLocked / WrLocked).
    var readLockAuthorities: [UInt64] = [UID.admins.rawValue]
    var writeLockAuthorities: [UInt64] = [UID.admins.rawValue]
    /// Authorities allowed to read RangeStart…ActiveKey (ACE_Locking_RangeN_Get_RangeStartToActiveKey);
    /// nil in state written before it was kept, meaning Admins.
    var getAuthorities: [UInt64]?

    /// Whether either direction of the range is usable after a power cycle without any authentication.
    var opensAtPowerOn: Bool {
        let lockedAtPowerOn = lockOnReset.contains(.powerCycle)
        let readClosed = readLockEnabled && (readLocked || lockedAtPowerOn)
        let writeClosed = writeLockEnabled && (writeLocked || lockedAtPowerOn)
        return !(readClosed && writeClosed)
    }

    func contains(_ lba: UInt64) -> Bool { lba >= start && lba - start < length }
}

struct MBRRecord: Codable, Sendable, Hashable {
    var enable = false
    var done = false
    var doneOnReset: [ResetType] = [.powerCycle]
}

/// Everything a simulated drive keeps across power cycles. Written atomically after every change.
struct DriveRecord: Codable, Sendable {
    var identity: DriveIdentity
    var settings: DriveSettings
    var sid: CredentialRecord
    var psid: CredentialRecord
    /// Whether SID's PIN differs from the MSID now (Block SID's SID Value State). The stored
    /// name is kept for drive files written before it followed the PIN back to the MSID.
    var sidEverChanged = false
    var lockingLifeCycle: LifeCycleState = .manufacturedInactive
    /// Locking SP Admin1...AdminN then User1...UserN.
    var lockingAdmins: [CredentialRecord]
    var lockingUsers: [CredentialRecord]
    var ranges: [RangeRecord]
    var mbr = MBRRecord()
    var consecutiveFailedAuthentications = 0
    /// Every failed authentication the drive ever counted (nil in state written before it existed).
    var totalFailedAuthentications: Int?
    var erasedForGood = false
    /// TPerInfo ProgrammaticResetEnable: whether TPER_RESET (protocol 0x02, ComID 0x0004) is
    /// honoured; set by SID; nil (state from before it was kept) means false, the factory value.
    var programmaticResetEnable: Bool?
    /// Single User Mode: the ranges each owned by one user (range N by User N+1); nil or empty
    /// when the Locking SP was activated normally.
    var singleUserRanges: [Int]?
    /// RangeStartRangeLengthPolicy: true when the Admins set a SUM range's bounds, false when its user does.
    var singleUserPolicyAdmins: Bool?
    /// The BooleanExpr of the Admin-settable ACEs beyond the ranges' (ACE_DataStore_Get_All,
    /// ACE_DataStore_Set_All, ACE_MBRControl_Set_DoneToDOR), by ACE UID; an ACE not listed (and
    /// every ACE in state written before they were kept) holds the preconfigured Admins.
    var aceExpressions: [UInt64: [UInt64]]?
}
