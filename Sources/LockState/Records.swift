import Foundation
import GRDB

/// A drive of the array, as the lock manager keeps it. Never holds a PIN.
public struct StoredDrive: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord, StateRecord {
    public static let databaseTableName = "drive"
    public var id: Int64?
    /// `/dev/…` or `sim:DIR/N`.
    public var address: String
    /// What the drive's PINs are bound to (WWN, else serial): see `DrivePIN.driveIdentity`.
    public var identity: String
    public var bus: String
    public var model: String
    public var serial: String
    /// The key generation whose PINs the drive holds now (nil before setup finished).
    public var generationID: Int64?
    /// How its PINs were before sedlock adopted it (e.g. "sedutil-sha1"), if adopted.
    public var adoptedFrom: String?
    /// Consecutive failed authentications counted by the lockout guard (written before each attempt).
    public var failedAuthentications: Int
    /// The drive's own TryLimit for the authority sedlock uses, once read (nil: unknown or none).
    public var tryLimit: Int?
    /// Set when the lockout guard stopped further attempts; cleared only by an operator.
    public var guardReason: String?
    public var addedAt: Date
    /// Locked on purpose (an operator's lock, RDL's lock on loss): sedlockd leaves it locked. A
    /// drive found locked without it (pulled and reinserted, power-cycled alone, a boot that was
    /// held) is unlocked again by sedlockd's drive monitor. Any unlock clears it.
    public var lockedOnPurpose: Bool

    public init(address: String, identity: String, bus: String, model: String, serial: String, addedAt: Date) {
        self.address = address
        self.identity = identity
        self.bus = bus
        self.model = model
        self.serial = serial
        failedAuthentications = 0
        self.addedAt = addedAt
        lockedOnPurpose = false
    }

    public var isGuarded: Bool { guardReason != nil }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// The life of a key generation: created and stored, in use, kept while drives may need it, gone.
public enum KeyGenerationState: String, Codable, Sendable {
    /// Stored on the providers; drives not yet moved to it (setup or rekey in progress).
    case pending
    /// The generation drives hold now.
    case active
    /// Superseded; kept while any drive may still use it.
    case retired
    /// Deleted from every provider.
    case destroyed
}

/// One authentication key generation. The AK itself is never stored here.
public struct StoredKeyGeneration: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord, StateRecord {
    public static let databaseTableName = "keyGeneration"
    public var id: Int64?
    /// The key ID (a UUID), the Name under which providers hold the AK.
    public var keyID: String
    public var tag: String
    public var state: KeyGenerationState
    public var provider: String
    /// Where the AK is stored: one entry per key server (its object ID) or "local".
    public var locations: [String]
    public var createdAt: Date
    /// Rapid Data Locking: the key ID of the security token this generation's PINs also need
    /// (PIN input = AK ‖ token); nil for PINs from the AK alone.
    public var tokenID: String?

    public init(keyID: String, tag: String, state: KeyGenerationState, provider: String, locations: [String], createdAt: Date,
                tokenID: String? = nil) {
        self.keyID = keyID
        self.tag = tag
        self.state = state
        self.provider = provider
        self.locations = locations
        self.createdAt = createdAt
        self.tokenID = tokenID
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// The check value of one authority's PIN on one drive in one generation.
public struct StoredCheckValue: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord, StateRecord {
    public static let databaseTableName = "checkValue"
    public var driveID: Int64
    public var generationID: Int64
    public var authority: String
    public var value: Data

    public init(driveID: Int64, generationID: Int64, authority: String, value: Data) {
        self.driveID = driveID
        self.generationID = generationID
        self.authority = authority
        self.value = value
    }
}

/// A check value kept for a drive that left the array with its PINs (`array remove` without
/// revert), by the drive's identity: what `array add` verifies the drive's PINs by when it
/// comes back.
public struct StoredDepartedCheckValue: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord, StateRecord {
    public static let databaseTableName = "departedCheckValue"
    public var identity: String
    public var generationID: Int64
    public var authority: String
    public var value: Data
    public var removedAt: Date

    public init(identity: String, generationID: Int64, authority: String, value: Data, removedAt: Date) {
        self.identity = identity
        self.generationID = generationID
        self.authority = authority
        self.value = value
        self.removedAt = removedAt
    }

    /// As a check value of the drive record `driveID` (the drive back in the array).
    public func restored(driveID: Int64) -> StoredCheckValue {
        StoredCheckValue(driveID: driveID, generationID: generationID, authority: authority, value: value)
    }
}

/// One boot's unlock attempt, keyed by the kernel's boot_id.
public struct BootRecord: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord, StateRecord {
    public enum Outcome: String, Codable, Sendable {
        case started, unlocked, partial, failed, held
    }
    public static let databaseTableName = "boot"
    public var bootID: String
    public var startedAt: Date
    public var outcome: Outcome
    public var detail: String
    /// From the start of the boot unlock to its last drive done.
    public var durationSeconds: Double?

    public init(bootID: String, startedAt: Date, outcome: Outcome, detail: String = "", durationSeconds: Double? = nil) {
        self.bootID = bootID
        self.startedAt = startedAt
        self.outcome = outcome
        self.detail = detail
        self.durationSeconds = durationSeconds
    }

    /// Whether this boot counts toward the boot-loop guard (it did not unlock the array).
    public var failedToUnlock: Bool { outcome != .unlocked }
}

/// An operator action that changed state: who, what, on what, when, and how it ended. No secrets.
public struct AuditEntry: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord, StateRecord {
    public static let databaseTableName = "audit"
    public var id: Int64?
    public var at: Date
    public var actor: String
    public var action: String
    public var target: String
    public var outcome: String

    public init(at: Date, actor: String, action: String, target: String, outcome: String) {
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.outcome = outcome
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A journaled change to every drive's PINs (setup, rekey): the generation it moves drives to,
/// and whether it finished.
public struct JournalEntry: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord, StateRecord {
    public enum Kind: String, Codable, Sendable { case setup, rekey, rdlEnable = "rdl-enable", rdlRotate = "rdl-rotate" }
    public enum State: String, Codable, Sendable { case pending, done, abandoned }
    public static let databaseTableName = "journal"
    public var id: Int64?
    public var kind: Kind
    public var fromGenerationID: Int64?
    public var toGenerationID: Int64
    public var state: State
    public var startedAt: Date
    public var finishedAt: Date?

    public init(kind: Kind, fromGenerationID: Int64?, toGenerationID: Int64, startedAt: Date) {
        self.kind = kind
        self.fromGenerationID = fromGenerationID
        self.toGenerationID = toGenerationID
        state = .pending
        self.startedAt = startedAt
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// How far one drive got in a journaled change. Each step is recorded after the drive did it.
public struct JournalDriveStep: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord, StateRecord {
    public enum Step: String, Codable, Sendable, Comparable {
        /// Rekey recovered on a new host from a record published before the drives moved: which
        /// PINs the drive holds now (old, new, or some of each) is not known.
        case unknown
        /// Nothing done yet (or done but not recorded: recovery checks the drive).
        case pending
        /// SID holds the new SID PIN.
        case owned
        /// The Locking SP is active (Admin1 still holds the SID PIN).
        case activated
        /// Rekey: SID holds the new generation's PIN.
        case sidSet
        /// Rekey: Admin1 holds the new generation's PIN too.
        case admin1Set
        /// Admin1 and User1 hold their new PINs; the global range is configured.
        case pinsSet
        /// A fresh session proved the new PINs.
        case proven

        static let order: [Step] = [.unknown, .pending, .owned, .activated, .sidSet, .admin1Set, .pinsSet, .proven]
        public static func < (a: Step, b: Step) -> Bool {
            (order.firstIndex(of: a) ?? 0) < (order.firstIndex(of: b) ?? 0)
        }
    }
    public static let databaseTableName = "journalDrive"
    public var journalID: Int64
    public var driveID: Int64
    public var step: Step
    public var updatedAt: Date
    /// This step's PIN change was sent (or was about to be) and its outcome is not known: the
    /// drive may hold the new PIN already. Recorded durably before the change is sent.
    public var pinChangeSent: Bool

    public init(journalID: Int64, driveID: Int64, step: Step, updatedAt: Date, pinChangeSent: Bool = false) {
        self.journalID = journalID
        self.driveID = driveID
        self.step = step
        self.updatedAt = updatedAt
        self.pinChangeSent = pinChangeSent
    }
}

/// A configured key server: a name, the hostnames of its cluster, and the client identity files
/// (paths only: the private key never enters the state).
public struct StoredKeyServer: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord, StateRecord {
    public static let databaseTableName = "keyServer"
    public var id: Int64?
    public var providerID: Int64
    public var name: String
    /// `HOST:PORT` of each cluster member, tried in order.
    public var addresses: [String]
    public var position: Int
    public var certificatePath: String
    public var privateKeyPath: String
    public var caPath: String
    public var verifyServerName: Bool

    public init(providerID: Int64, name: String, addresses: [String], position: Int, certificatePath: String,
                privateKeyPath: String, caPath: String, verifyServerName: Bool) {
        self.providerID = providerID
        self.name = name
        self.addresses = addresses
        self.position = position
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.caPath = caPath
        self.verifyServerName = verifyServerName
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A condition that needs an operator, named as the seeds' key services name them; it clears
/// itself when the condition ends.
public struct StoredFault: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord, StateRecord {
    public static let databaseTableName = "fault"
    public var id: Int64?
    /// KmipServerFault, KmipCertificateFault, DriveGuarded, BootLoopHold, KeyMismatch, RekeyIncomplete, …
    public var name: String
    /// warning, error, critical.
    public var severity: String
    /// What it concerns: a drive, a key server, a certificate file, "array".
    public var object: String
    public var raisedAt: Date
    public var clearedAt: Date?
    /// What to do about it.
    public var action: String
    public var detail: String

    public init(name: String, severity: String, object: String, raisedAt: Date, action: String, detail: String) {
        self.name = name
        self.severity = severity
        self.object = object
        self.raisedAt = raisedAt
        self.action = action
        self.detail = detail
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A certificate sedlock relies on (a key server's client certificate or CA): where it is and
/// what it is — never a private key.
public struct StoredCertificate: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord, StateRecord {
    public static let databaseTableName = "certificate"
    public var id: Int64?
    /// `client` or `ca`.
    public var role: String
    public var path: String
    /// SHA-256 of the DER form, hex.
    public var fingerprint: String
    public var notAfter: Date?

    public init(role: String, path: String, fingerprint: String, notAfter: Date?) {
        self.role = role
        self.path = path
        self.fingerprint = fingerprint
        self.notAfter = notAfter
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// Rapid Data Locking's settings (one row). Whether RDL is in force is read from the key
/// generations: it is once a live generation needs a token.
public struct StoredRDL: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord, StateRecord {
    public static let databaseTableName = "rdl"
    public var id: Int64 = 1
    /// The key server named at enable (tested first); the token is stored on every server.
    public var server: String
    /// Lock every drive at once when the token is revoked or destroyed, or the certificate refused.
    public var lockOnLoss: Bool
    /// Where the current token is held: "SERVER:OBJECT-ID" per key server.
    public var tokenLocations: [String]
    public var requestedAt: Date
    public var lastTestAt: Date?
    public var lastTestResult: String?
    /// Shares of the token needed to rebuild it (one per key server); nil: every server holds it whole.
    public var tokenThreshold: Int?

    public init(server: String, lockOnLoss: Bool, tokenLocations: [String] = [], requestedAt: Date, tokenThreshold: Int? = nil) {
        self.server = server
        self.lockOnLoss = lockOnLoss
        self.tokenLocations = tokenLocations
        self.requestedAt = requestedAt
        self.tokenThreshold = tokenThreshold
    }
}
