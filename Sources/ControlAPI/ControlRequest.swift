import Foundation

/// Which drives a request is about: all of the array, or some by address. On the wire `"all"`
/// or the addresses as an array.
public enum DriveSelection: Codable, Sendable, Hashable {
    case all
    case some([String])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let addresses = try? c.decode([String].self) {
            self = .some(addresses)
        } else if try c.decode(String.self) == "all" {
            self = .all
        } else {
            throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: decoder.codingPath,
                                                                    debugDescription: "drives are \"all\" or an array of addresses"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .all: try c.encode("all")
        case .some(let addresses): try c.encode(addresses)
        }
    }
}

/// Where a new array's authentication key is kept.
public enum KeyProviderKind: String, Codable, Sendable, CaseIterable {
    /// On every configured KMIP key server.
    case kmip
    /// In a systemd credential or a root-only file on this machine.
    case local
    /// Sealed by clevis (tang servers, a TPM2, or an sss threshold of them) in a root-only
    /// file on this machine; opened with `clevis decrypt` at boot.
    case clevis
}

/// How clevis seals a new AK: the pin (`tang`, `sss`, `tpm2`) and its JSON configuration, as
/// `clevis encrypt PIN CONFIG` takes them (`{"url":"http://tang.example"}`,
/// `{"t":2,"pins":{"tang":[{"url":…},{"url":…}]}}`).
public struct ClevisPolicy: Codable, Sendable, Hashable {
    public var pin: String
    public var config: String

    public init(pin: String, config: String) {
        self.pin = pin
        self.config = config
    }

    /// Why this policy cannot be given to clevis, or nil: a pin name of lower-case letters and
    /// digits, and a configuration that is one JSON object (at most 64 KiB).
    public var problem: String? {
        guard !pin.isEmpty, pin.count <= 32, pin.allSatisfy({ ($0.isASCII && $0.isLowercase) || $0.isNumber }) else {
            return "a clevis pin is a name such as tang, sss or tpm2 (lower-case letters and digits)"
        }
        guard config.utf8.count <= 65_536, let data = config.data(using: .utf8),
              (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            return "the clevis configuration must be one JSON object, such as {\"url\":\"http://tang.example\"}"
        }
        return nil
    }
}

/// Every operation the lock manager offers, as one value that the CLI hands to the manager in
/// process today and that crosses sedlockd's control socket unchanged.
public enum ControlRequest: Codable, Sendable, Hashable {
    case setup(SetupRequest)
    case unlock(UnlockRequest)
    case lock(LockRequest)
    case status
    case guardStatus(address: String?)
    case guardReset(address: String)
    case keyServerAdd(KeyServerAddRequest)
    /// Several servers at once: all are added, or none.
    case keyServersAdd([KeyServerAddRequest])
    case keyServerModify(KeyServerModifyRequest)
    /// One or several servers, checked and removed together.
    case keyServerRemove(names: [String])
    case keyServerShow
    /// Each server tested: TLS, authentication, a Locate.
    case keyServerStatus
    /// The key IDs each server holds, marked when the keytable lacks them.
    case keyServerQuery
    case keysList
    case keysRestore(KeysRestoreRequest)
    /// A generation no drive or journal needs leaves the keytable (kept on its key servers and files).
    case keysRetire(keyID: String)
    /// A retired generation destroyed everywhere: on every key server (Revoke, Destroy), its key
    /// files, the keytable. Permanent.
    case keysDestroy(keyID: String)
    /// A host whose state is lost takes the array back from the key servers' recovery records.
    case recover(RecoverRequest)
    case rekey(RekeyRequest)
    case arrayAdd(ArrayAddRequest)
    case arrayRemove(address: String, revert: Bool, dryRun: Bool = false)
    case erase(EraseRequest)
    /// Open faults (conditions evaluated now) and recently cleared ones.
    case faults
    /// Rapid Data Locking: test a key server for it, turn it on (for good), show where it stands.
    case rdlTest(server: String)
    case rdlEnable(RDLEnableRequest)
    case rdlStatus
    /// A new token, every drive rekeyed to it.
    case rdlRotate
    /// Leaves RDL: every drive crypto-erased first.
    case rdlDisable
    /// sedlockd reads its configuration again and answers once it applies (or why it does not):
    /// `systemctl reload` through `sedlockd reload`. The daemon's alone; nothing to reload in process.
    case reload

    /// True for requests that need a secret beside them (an adopted drive's password, a PSID),
    /// which is handed over in process only: secrets never cross the control socket.
    public var needsSecret: Bool {
        switch self {
        case .setup(let setup): return setup.adoption != nil || setup.fromPassphrase == true
        case .rekey(let rekey): return rekey.fromPassphrase == true
        case .arrayAdd(let add): return add.adoption != nil
        case .erase(let erase): return erase.method == .psid
        default: return false
        }
    }

    /// True for requests that change state (root only over the socket).
    public var changesState: Bool {
        switch self {
        case .setup, .unlock, .lock, .guardReset, .keyServerAdd, .keyServersAdd, .keyServerModify, .keyServerRemove, .keysRestore, .keysRetire, .keysDestroy, .recover, .rekey,
             .arrayAdd, .arrayRemove, .erase, .rdlTest, .rdlEnable, .rdlRotate, .rdlDisable, .reload: return true
        case .status, .guardStatus, .keyServerShow, .keyServerStatus, .keyServerQuery, .keysList, .faults, .rdlStatus: return false
        }
    }
}

public struct KeyServerAddRequest: Codable, Sendable, Hashable {
    /// `HOST[:PORT]` of the server and of the other members of its cluster, in order.
    public var addresses: [String]
    public var name: String?
    public var certificatePath: String
    public var privateKeyPath: String
    public var caPath: String
    public var verifyServerName: Bool

    public init(addresses: [String], name: String? = nil, certificatePath: String, privateKeyPath: String, caPath: String,
                verifyServerName: Bool = true) {
        self.addresses = addresses
        self.name = name
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.caPath = caPath
        self.verifyServerName = verifyServerName
    }
}

/// What changes on a configured key server (nil: as it is): its identity files, its addresses.
public struct KeyServerModifyRequest: Codable, Sendable, Hashable {
    public var name: String
    /// The server's `HOST[:PORT]` and its cluster members', in order (replacing them all).
    public var addresses: [String]?
    public var certificatePath: String?
    public var privateKeyPath: String?
    public var caPath: String?
    public var verifyServerName: Bool?

    public init(name: String, addresses: [String]? = nil, certificatePath: String? = nil, privateKeyPath: String? = nil,
                caPath: String? = nil, verifyServerName: Bool? = nil) {
        self.name = name
        self.addresses = addresses
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.caPath = caPath
        self.verifyServerName = verifyServerName
    }

    public var changesNothing: Bool {
        addresses == nil && certificatePath == nil && privateKeyPath == nil && caPath == nil && verifyServerName == nil
    }
}

public struct KeysRestoreRequest: Codable, Sendable, Hashable {
    /// Rebuild the keytable from every server (dropping keys no server has any more) …
    public var all: Bool
    /// … or add what one server holds.
    public var server: String?
    public var keyTag: String?

    public init(all: Bool, server: String? = nil, keyTag: String? = nil) {
        self.all = all
        self.server = server
        self.keyTag = keyTag
    }
}

public struct SetupRequest: Codable, Sendable, Hashable {
    public var drives: [String]
    public var provider: KeyProviderKind
    public var keyTag: String?
    /// For `local`: where the AK file goes (default: the state directory's `keys/`).
    public var keyDirectory: String?
    /// For `kmip`: store k-of-n Shamir shares, one per key server, instead of full copies.
    public var threshold: Int?
    /// For `clevis`: how the AK is sealed.
    public var clevis: ClevisPolicy?
    /// An owned drive is adopted only when this proves its current PIN (read by the CLI, passed
    /// in process; over the socket it is refused — PINs never cross it).
    public var adoption: Adoption?
    /// The AK is made from the operator's passphrase (passed in process like an adoption
    /// password, never over the socket) instead of random bytes.
    public var fromPassphrase: Bool?
    /// Manage drives that lock but do not encrypt (Pyrite): their locking only; refused without it.
    public var allowUnencrypted: Bool?
    /// Check everything and say what would be done to each drive; change nothing, present nothing.
    public var dryRun: Bool?

    public struct Adoption: Codable, Sendable, Hashable {
        /// How the operator's password becomes the PIN (`raw`, `sedutil-sha1`, …).
        public var derivation: String
        /// Which serial-number bytes the derivation salted with (`reported`, `ata-unswapped`,
        /// `trimmed`, `nul-padded`); nil when the operator named none.
        public var salt: String?
        public init(derivation: String, salt: String? = nil) {
            self.derivation = derivation
            self.salt = salt
        }
    }

    public init(drives: [String], provider: KeyProviderKind, keyTag: String? = nil, keyDirectory: String? = nil,
                threshold: Int? = nil, adoption: Adoption? = nil, fromPassphrase: Bool = false, allowUnencrypted: Bool = false) {
        self.fromPassphrase = fromPassphrase ? true : nil
        self.allowUnencrypted = allowUnencrypted ? true : nil
        self.drives = drives
        self.threshold = threshold
        self.provider = provider
        self.keyTag = keyTag
        self.keyDirectory = keyDirectory
        self.adoption = adoption
    }
}

public struct UnlockRequest: Codable, Sendable, Hashable {
    public var drives: DriveSelection
    /// The boot service's unlock: writes a boot record and obeys the boot-loop guard.
    public var boot: Bool
    /// How long the whole unlock may wait for keys it can verify: a hard bound. 0: no waiting,
    /// one attempt to fetch them within the command timeout.
    public var waitSeconds: Double

    public init(drives: DriveSelection, boot: Bool = false, waitSeconds: Double = 0) {
        self.drives = drives
        self.boot = boot
        self.waitSeconds = waitSeconds
    }

    private enum CodingKeys: String, CodingKey { case drives, boot, waitSeconds }

    /// `boot` and `waitSeconds` may be left out, as on the command line (`{"drives":"all"}`).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(drives: try c.decode(DriveSelection.self, forKey: .drives), boot: try c.decodeIfPresent(Bool.self, forKey: .boot) ?? false,
                  waitSeconds: try c.decodeIfPresent(Double.self, forKey: .waitSeconds) ?? 0)
    }
}

public struct LockRequest: Codable, Sendable, Hashable {
    public var drives: DriveSelection
    public init(drives: DriveSelection) { self.drives = drives }
}

public struct RecoverRequest: Codable, Sendable, Hashable {
    /// The array's drives on this host.
    public var drives: [String]
    /// Only recovery records of generations with this key tag (default: any).
    public var keyTag: String?
    public init(drives: [String], keyTag: String? = nil) {
        self.drives = drives
        self.keyTag = keyTag
    }
}

public struct RekeyRequest: Codable, Sendable, Hashable {
    /// The new generation's tag (default: the current one's).
    public var keyTag: String?
    /// Where the new generation's AK is kept (default: where the current one is): a rekey
    /// converts custody, local ↔ key servers, journaled as any rekey.
    public var provider: KeyProviderKind?
    /// With the key servers: k-of-n shares instead of full copies (default: as now).
    public var threshold: Int?
    /// With clevis: how the new AK is sealed (default: as the current one is, when it is clevis's).
    public var clevis: ClevisPolicy?
    /// The new AK is made from the operator's passphrase (passed in process, never over the socket).
    public var fromPassphrase: Bool?
    /// The current key fetched and verified against every drive; no new key, nothing presented.
    public var dryRun: Bool?
    public init(keyTag: String? = nil, provider: KeyProviderKind? = nil, threshold: Int? = nil, fromPassphrase: Bool = false) {
        self.keyTag = keyTag
        self.provider = provider
        self.threshold = threshold
        self.fromPassphrase = fromPassphrase ? true : nil
    }
}

public struct ArrayAddRequest: Codable, Sendable, Hashable {
    public var address: String
    /// An owned drive is adopted only with its current password (passed in process, never over the socket).
    public var adoption: SetupRequest.Adoption?
    /// As SetupRequest's: a drive that does not encrypt is added only with it.
    public var allowUnencrypted: Bool?
    /// As SetupRequest's: the key fetched and verified, the drive probed, nothing changed.
    public var dryRun: Bool?
    public init(address: String, adoption: SetupRequest.Adoption? = nil, allowUnencrypted: Bool = false) {
        self.address = address
        self.adoption = adoption
        self.allowUnencrypted = allowUnencrypted ? true : nil
    }
}

public struct EraseRequest: Codable, Sendable, Hashable {
    public enum Method: String, Codable, Sendable, CaseIterable {
        /// GenKey on the global range's media key: the data is gone, the drive stays in the array.
        case crypto
        /// Revert as SID: factory state, data gone, the drive leaves the array.
        case revert
        /// Revert with the PSID printed on the drive (for a drive whose PINs are lost): it leaves the array.
        case psid
        /// Release keeping the data (`sedlock release --keep-data`): the global range unlocked,
        /// RevertSP keeping its key, then Revert as SID; the drive leaves the array unowned, its
        /// data readable by anyone.
        case release
    }
    public var drives: [String]
    public var method: Method
    /// Keys fetched and each drive's PINs proven; what would be done said, nothing done.
    public var dryRun: Bool?
    public init(drives: [String], method: Method) {
        self.drives = drives
        self.method = method
    }
}

public struct RDLEnableRequest: Codable, Sendable, Hashable {
    /// The key server to test first (by name); the token is stored on every configured server.
    public var server: String
    /// Lock every drive at once when the token is revoked or destroyed or the certificate refused
    /// (mere unreachability does not).
    public var lockOnLoss: Bool
    /// Store the token as k-of-n Shamir shares, one per key server (nil: a full copy on each).
    public var threshold: Int?
    /// Every check made (the key server tested, every drive healthy and encrypting); nothing changed.
    public var dryRun: Bool?

    public init(server: String, lockOnLoss: Bool = false, threshold: Int? = nil) {
        self.server = server
        self.lockOnLoss = lockOnLoss
        self.threshold = threshold
    }
}
