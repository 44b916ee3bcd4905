import Foundation

/// What happened to one drive in an array operation.
public struct DriveOutcome: Codable, Sendable, Hashable {
    public enum Result: String, Codable, Sendable {
        case unlocked, locked, setUp, adopted, rekeyed, erased, reverted, removed
        /// Returned to an unowned state with its data kept (`release --keep-data`).
        case released
        /// Nothing was attempted: the lockout guard holds the drive.
        case guarded
        /// Nothing was attempted: the boot-loop guard holds the array.
        case held
        /// Nothing was attempted: no key for the drive's generation could be fetched.
        case keyUnavailable
        /// Nothing was attempted: the fetched key does not match the drive's check values.
        case keyMismatch
        case notAuthorized, lockedOut, unreachable, failed
        /// A dry run: this is what would be done to the drive; nothing was presented to it.
        case wouldChange
    }

    public var address: String
    public var result: Result
    /// What went wrong, or extra facts (never a secret).
    public var detail: String
    /// Authentication attempts this operation made on the drive.
    public var attempts: Int
    /// The key generation the drive's PINs come from (its identifier, never the key), when the
    /// operation used one: the journal's KEY_ID.
    public var keyID: String?

    public init(address: String, result: Result, detail: String = "", attempts: Int = 0) {
        self.address = address
        self.result = result
        self.detail = detail
        self.attempts = attempts
    }

    public var succeeded: Bool {
        [.unlocked, .locked, .setUp, .adopted, .rekeyed, .erased, .reverted, .removed, .released, .wouldChange].contains(result)
    }
}

/// The answer to setup, unlock and lock: one outcome per drive and the array's verdict.
public struct ArrayReport: Codable, Sendable, Hashable {
    public var operation: String
    public var drives: [DriveOutcome]
    /// Why the whole operation stopped before touching drives, if it did (boot-loop hold, no keys).
    public var note: String
    /// What fetching the keys cost, when they came from key servers: KMIP messages sent (each a
    /// round trip) and TLS connections opened, by this process while the keys were fetched.
    public var keyServerRoundTrips: Int?
    public var keyServerConnections: Int?

    public init(operation: String, drives: [DriveOutcome], note: String = "") {
        self.operation = operation
        self.drives = drives
        self.note = note
    }

    public var allSucceeded: Bool { !drives.isEmpty && drives.allSatisfy(\.succeeded) }
    public var noneSucceeded: Bool { !drives.contains(where: \.succeeded) }
}

/// The array at a glance.
public struct StatusReport: Codable, Sendable, Hashable {
    public struct Drive: Codable, Sendable, Hashable {
        public var address: String
        public var model: String
        public var serial: String
        /// From Level 0 Discovery (nil when the drive did not answer).
        public var locked: Bool?
        public var generation: String?
        public var failedAuthentications: Int
        public var tryLimit: Int?
        public var guarded: String?
        public var error: String?
        /// Locked by an operator (or RDL's lock on loss), so left locked; a drive locked without
        /// it has relocked and sedlockd unlocks it again.
        public var lockedOnPurpose: Bool?
        /// The security subsystem class the drive is driven as ("Opal v2", "Enterprise"), from
        /// Level 0 Discovery (nil when the drive did not answer).
        public var family: String?
        /// False for a drive managed for its locking only (Pyrite): its data is in clear on the media.
        public var mediaEncryption: Bool?

        /// Locked without anyone asking (pulled, power-cycled alone, a held boot): to unlock again.
        public var relocked: Bool { locked == true && lockedOnPurpose != true && guarded == nil && generation != nil }

        public init(address: String, model: String, serial: String, locked: Bool?, generation: String?,
                    failedAuthentications: Int, tryLimit: Int?, guarded: String?, error: String?) {
            self.address = address
            self.model = model
            self.serial = serial
            self.locked = locked
            self.generation = generation
            self.failedAuthentications = failedAuthentications
            self.tryLimit = tryLimit
            self.guarded = guarded
            self.error = error
        }
    }

    public struct Generation: Codable, Sendable, Hashable {
        public var keyID: String
        public var tag: String
        public var state: String
        public var provider: String
        public var createdAt: Date

        public init(keyID: String, tag: String, state: String, provider: String, createdAt: Date) {
            self.keyID = keyID
            self.tag = tag
            self.state = state
            self.provider = provider
            self.createdAt = createdAt
        }
    }

    /// The last boot unlock: its outcome, when it ended, how long it took.
    public struct Boot: Codable, Sendable, Hashable {
        public var outcome: String
        public var at: Date
        public var durationSeconds: Double?

        public init(outcome: String, at: Date, durationSeconds: Double?) {
            self.outcome = outcome
            self.at = at
            self.durationSeconds = durationSeconds
        }
    }

    /// One recorded boot, newest first in `recentBoots`.
    public struct RecordedBoot: Codable, Sendable, Hashable {
        public var bootID: String
        public var startedAt: Date
        /// started, unlocked, partial, failed or held.
        public var outcome: String
        public var detail: String
        public var durationSeconds: Double?

        public init(bootID: String, startedAt: Date, outcome: String, detail: String, durationSeconds: Double?) {
            self.bootID = bootID
            self.startedAt = startedAt
            self.outcome = outcome
            self.detail = detail
            self.durationSeconds = durationSeconds
        }
    }

    /// An SED this host can reach that the array does not manage: reported, never touched.
    public struct UnmanagedDrive: Codable, Sendable, Hashable {
        public var address: String
        public var model: String
        public var serial: String
        /// Its security subsystem classes ("Opal v2", "Pyrite v2", "Enterprise" …).
        public var subsystems: [String]
        /// Whether its SID differs from the MSID (someone owns it), from Level 0 Discovery.
        public var owned: Bool?
        public var locked: Bool?
        public var seenAt: Date

        public init(address: String, model: String, serial: String, subsystems: [String], owned: Bool?, locked: Bool?, seenAt: Date) {
            self.address = address
            self.model = model
            self.serial = serial
            self.subsystems = subsystems
            self.owned = owned
            self.locked = locked
            self.seenAt = seenAt
        }
    }

    public var drives: [Drive]
    /// SEDs in reach that are not the array's (nil from a sedlock before it looked).
    public var unmanagedDrives: [UnmanagedDrive]?
    public var generations: [Generation]
    public var recentBoots: [RecordedBoot]
    public var lastBoot: Boot?
    /// Each key server, tested (TLS, authentication, a Locate).
    public var keyServers: [KeyServerReport.Server]
    /// Faults open in the state.
    public var faults: [FaultReport.Fault]

    public init(drives: [Drive], generations: [Generation], recentBoots: [RecordedBoot],
                keyServers: [KeyServerReport.Server] = [], faults: [FaultReport.Fault] = []) {
        self.drives = drives
        self.generations = generations
        self.recentBoots = recentBoots
        self.keyServers = keyServers
        self.faults = faults
    }
}

/// Lockout-guard state per drive.
public struct GuardReport: Codable, Sendable, Hashable {
    public struct Drive: Codable, Sendable, Hashable {
        public var address: String
        public var failedAuthentications: Int
        public var limit: Int
        public var guarded: String?

        public init(address: String, failedAuthentications: Int, limit: Int, guarded: String?) {
            self.address = address
            self.failedAuthentications = failedAuthentications
            self.limit = limit
            self.guarded = guarded
        }
    }
    public var drives: [Drive]
    public var bootLoopHold: Bool
    public var consecutiveFailedBoots: Int

    public init(drives: [Drive], bootLoopHold: Bool, consecutiveFailedBoots: Int) {
        self.drives = drives
        self.bootLoopHold = bootLoopHold
        self.consecutiveFailedBoots = consecutiveFailedBoots
    }
}

/// Configured key servers, with what a test of each found when one was made.
public struct KeyServerReport: Codable, Sendable, Hashable {
    public struct Server: Codable, Sendable, Hashable {
        public var name: String
        public var addresses: [String]
        public var certificatePath: String
        public var caPath: String
        /// nil when not tested.
        public var reachable: Bool?
        public var tls: String?
        public var error: String?
        /// One KMIP request and its answer (a Locate) on the tested connection.
        public var roundTripSeconds: Double?
        /// When the result was found: sedlockd answers reads from its monitor's latest test.
        public var checkedAt: Date?
        /// For query: the key IDs (and tags) this server holds.
        public var keys: [HeldKey]?

        public init(name: String, addresses: [String], certificatePath: String, caPath: String) {
            self.name = name
            self.addresses = addresses
            self.certificatePath = certificatePath
            self.caPath = caPath
        }
    }

    public struct HeldKey: Codable, Sendable, Hashable {
        public var keyID: String
        public var tag: String
        /// False: the keytable lacks this key (NetApp's `*`).
        public var inKeytable: Bool
        public init(keyID: String, tag: String, inKeytable: Bool) {
            self.keyID = keyID
            self.tag = tag
            self.inKeytable = inKeytable
        }
    }

    public var servers: [Server]
    /// What a change did beyond the list (objects destroyed on a removed server, or left there).
    public var note: String?
    public init(servers: [Server], note: String? = nil) {
        self.servers = servers
        self.note = note
    }
}

/// Key generations and whether this process's keytable holds each.
public struct KeysReport: Codable, Sendable, Hashable {
    public struct Key: Codable, Sendable, Hashable {
        public var keyID: String
        public var tag: String
        public var state: String
        public var provider: String
        public var inKeytable: Bool
        /// For restore: where it was found, or why not.
        public var detail: String

        public init(keyID: String, tag: String, state: String, provider: String, inKeytable: Bool, detail: String = "") {
            self.keyID = keyID
            self.tag = tag
            self.state = state
            self.provider = provider
            self.inKeytable = inKeytable
            self.detail = detail
        }
    }
    public var keys: [Key]
    public init(keys: [Key]) { self.keys = keys }
}

/// Faults: what needs an operator now, and what cleared itself lately.
public struct FaultReport: Codable, Sendable, Hashable {
    public struct Fault: Codable, Sendable, Hashable {
        public var name: String
        public var severity: String
        public var object: String
        public var raisedAt: Date
        public var clearedAt: Date?
        public var action: String
        public var detail: String

        public init(name: String, severity: String, object: String, raisedAt: Date, clearedAt: Date?, action: String, detail: String) {
            self.name = name
            self.severity = severity
            self.object = object
            self.raisedAt = raisedAt
            self.clearedAt = clearedAt
            self.action = action
            self.detail = detail
        }
    }
    public var open: [Fault]
    public var recentlyCleared: [Fault]
    public init(open: [Fault], recentlyCleared: [Fault]) {
        self.open = open
        self.recentlyCleared = recentlyCleared
    }
}

/// Rapid Data Locking as `purearray list --security-token` shows it.
public struct RDLReport: Codable, Sendable, Hashable {
    /// One test of a key server (TLS with the client certificate, authentication, a Locate).
    public struct Test: Codable, Sendable, Hashable {
        /// Pure's two failure classes.
        public static let cannotConnect = "cannot connect and authenticate with the server"
        public static let notReady = "server is not ready for KMIP operations"

        public var server: String
        public var at: Date
        public var ok: Bool
        /// `cannotConnect` or `notReady` when not ok.
        public var failure: String?
        /// What exactly failed (never a secret).
        public var cause: String?

        public init(server: String, at: Date, ok: Bool, failure: String?, cause: String?) {
            self.server = server
            self.at = at
            self.ok = ok
            self.failure = failure
            self.cause = cause
        }
    }

    /// "enabled", "enabling (…)", "not enabled", with what a person must know appended.
    public var state: String
    public var server: String?
    public var tokenID: String?
    /// Where the token is held: "SERVER:OBJECT-ID" per key server.
    public var tokenLocations: [String] = []
    /// Shares needed to rebuild the token, when it is kept as k-of-n shares.
    public var tokenThreshold: Int?
    public var since: Date?
    public var lockOnLoss: Bool
    public var lastTestAt: Date?
    public var lastTestResult: String?
    /// The test this request made (rdl test).
    public var test: Test?

    public init(state: String, server: String?, tokenID: String?, since: Date?, lockOnLoss: Bool) {
        self.state = state
        self.server = server
        self.tokenID = tokenID
        self.since = since
        self.lockOnLoss = lockOnLoss
    }
}

/// One drive of a long array operation finished, while the rest still run: sent ahead of the
/// reply (over the socket as `{"version":2,"progress":{…}}` lines) so that people and scripts see
/// each drive as it is done.
public struct DriveProgress: Codable, Sendable, Hashable {
    public var operation: String
    public var drive: DriveOutcome
    /// Drives finished so far, this one included, of `total`.
    public var done: Int
    public var total: Int

    public init(operation: String, drive: DriveOutcome, done: Int, total: Int) {
        self.operation = operation
        self.drive = drive
        self.done = done
        self.total = total
    }

    /// "rekey 12/24 drives" (sedlockd's STATUS= while it runs).
    public var summary: String { "\(operation) \(done)/\(total) drives" }
}

/// Every answer a request can get.
public enum ControlResponse: Codable, Sendable, Hashable {
    case array(ArrayReport)
    case status(StatusReport)
    case guardState(GuardReport)
    case keyServers(KeyServerReport)
    case keys(KeysReport)
    case faults(FaultReport)
    case rdl(RDLReport)
    case reloaded(ReloadReport)
    case failure(ControlError)
}

/// A configuration sedlockd reloaded: what it now applies, and what waits for a restart.
public struct ReloadReport: Codable, Sendable, Hashable {
    /// The file read ("defaults" when there is none).
    public var source: String
    /// Settings that changed in the file but apply only when sedlockd restarts.
    public var pendingRestart: [String]

    public init(source: String, pendingRestart: [String]) {
        self.source = source
        self.pendingRestart = pendingRestart
    }
}

extension DriveOutcome.Result {
    /// "keyUnavailable" → "key unavailable", for people (logs and the CLI; `rawValue` stays the
    /// stable name in JSON and journal fields).
    public var words: String {
        rawValue.reduce(into: "") { text, c in
            if c.isUppercase { text += " " + c.lowercased() } else { text.append(c) }
        }
    }
}
