import ArgumentParser
import Foundation
import Keys
import Opal
import SecurityTransport
import SimulatorTransport
import TCGStorage
import Platform

struct DriveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drive",
        abstract: "Operate one Opal drive directly (like sedutil-cli).",
        subcommands: [ListDrives.self, Discover.self, TakeOwnership.self, SetupRange.self, Lock.self, Unlock.self,
                      SetPin.self, Erase.self, Revert.self, MBR.self, Tries.self, Ranges.self])
}

struct ListDrives: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List drives and their Opal state.")
    @Option(help: "A simulated array directory to list (served by `sedsim serve`).") var sim: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        reporting {
            let inventory = DriveInventory(factory: .withSimulator)
            var entries = inventory.scanHost()
            if let sim {
                let dir = URL(fileURLWithPath: sim).standardizedFileURL.path
                for (n, id) in try SimulatorTransport.listDrives(arrayDirectory: dir).enumerated() {
                    entries.append(inventory.probe(.simulated(arrayDirectory: dir, drive: n), bus: "simulated", model: id.model,
                                                   serial: id.serial.trimmingCharacters(in: .whitespaces)))
                }
            }
            if json { printJSON(entries); return }
            for e in entries { print("\(e.device)  \(e.model)  \(e.serial)  \(e.summary)") }
        }
    }
}

struct Discover: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show identity and Level 0 Discovery.")
    @OptionGroup var drive: DeviceOptions

    func run() throws {
        reporting {
            let transport = try drive.openTransport()
            let identity: DeviceIdentity
            do { identity = try transport.identify() } catch let error as TransportError { throw CommandFailure(error) }
            let report = DiscoveryReport(device: drive.device, transport: transport, identity: identity,
                                         discovery: try OpalDrive.readDiscovery(transport))
            if drive.json { printJSON(report) } else { print(report.text) }
        }
    }
}

struct TakeOwnership: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "take-ownership",
        abstract: "Set the SID PIN from the MSID and activate the Locking SP (Admin1 gets the same PIN).",
        discussion: "On an Enterprise SSC drive, whose Locking SP is always active, BandMaster0 and the EraseMaster "
            + "move from the MSID to the same PIN instead.")
    @OptionGroup var drive: DeviceOptions
    @OptionGroup var derivation: DerivationOptions
    @Option(help: "File holding the new SID PIN ('-' for stdin).") var newPinFile: String
    @Flag(help: "Only set the SID PIN; leave the Locking SP inactive.") var noActivate = false

    func run() throws {
        reporting {
            let opal = try drive.open()
            let pin = try derivation.pin(newPinFile, option: "--new-pin-file", for: opal)
            try opal.exchangePropertiesIfSupported()
            try opal.takeOwnership(newSIDPIN: pin)
            if !noActivate { try opal.activateLockingSP(sidPIN: pin) }
            let heirs = [OpalAuthority.admin(1)] + (opal.userChangesOwnPIN ? [.user(1)] : [])
            let activated = opal.family == .enterprise ? "owned" : "owned; Locking SP activated"
            drive.done("take-ownership", noActivate ? "owned"
                : "\(activated) (\(heirs.map { opal.family.name(of: $0) }.joined(separator: " and ")) PIN = SID PIN)")
        }
    }
}

struct SetupRange: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup-range", abstract: "Configure a locking range (bounds, lock enables, LockOnReset).")
    @OptionGroup var drive: DeviceOptions
    @OptionGroup var derivation: DerivationOptions
    @Option(help: "Range number (0 = global range).") var range: Int = 0
    @Option(help: "First LBA (not for the global range).") var start: UInt64?
    @Option(help: "Length in blocks (not for the global range).") var length: UInt64?
    @Option(help: "Resets that lock the range: power-cycle, hardware, programmatic (comma separated).")
    var lockOnReset: String = "power-cycle"
    @Flag(inversion: .prefixedNo, help: "Enable read locking.") var readLockEnabled = true
    @Flag(inversion: .prefixedNo, help: "Enable write locking.") var writeLockEnabled = true
    @Option(help: "Grant this user (user1…user8) lock and unlock rights on the range.") var grant: String?
    @Option(help: "File holding the Admin1 PIN ('-' for stdin).") var pinFile: String

    func validate() throws {
        guard (0...64).contains(range) else { throw ValidationError("--range must be 0…64") }
        if range == 0 && (start != nil || length != nil) { throw ValidationError("the global range (0) takes no --start or --length") }
        _ = try parseResets(lockOnReset)
        if let grant, OpalAuthority(grant).map({ if case .user = $0 { return true } else { return false } }) != true {
            throw ValidationError("--grant takes user1…user8")
        }
    }

    func run() throws {
        reporting {
            let opal = try drive.open()
            let pin = try derivation.pin(pinFile, option: "--pin-file", for: opal)
            try opal.configureRange(range, start: start, length: length, readLockEnabled: readLockEnabled,
                                    writeLockEnabled: writeLockEnabled, lockOnReset: try parseResets(lockOnReset),
                                    adminPIN: pin)
            if let grant, let user = OpalAuthority(grant) { try opal.grantRangeControl(range: range, to: user, adminPIN: pin) }
            drive.done("setup-range", "configured", range: range)
        }
    }
}

/// Options shared by lock and unlock.
struct LockOptions: ParsableArguments {
    @OptionGroup var drive: DeviceOptions
    @OptionGroup var derivation: DerivationOptions
    @Option(help: "Range number (0 = global range).") var range: Int = 0
    @Option(help: "Authority to act as: admin1…admin4 or user1…user8.") var authority: String = "admin1"
    @Option(help: "File holding that authority's PIN ('-' for stdin).") var pinFile: String

    func validate() throws {
        guard (0...64).contains(range) else { throw ValidationError("--range must be 0…64") }
        guard let a = OpalAuthority(authority), a.securityProvider == .lockingSP else {
            throw ValidationError("--authority takes admin1…admin4 or user1…user8")
        }
    }

    func apply(locked: Bool) {
        reporting {
            let opal = try drive.open()
            let pin = try derivation.pin(pinFile, option: "--pin-file", for: opal)
            guard let who = OpalAuthority(authority) else { throw CommandFailure("bad --authority", .badArguments) }
            try opal.setLocked(locked, range: range, as: who, pin: pin)
            drive.done(locked ? "lock" : "unlock", locked ? "locked" : "unlocked", range: range)
        }
    }
}

struct Lock: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lock a range for reads and writes.")
    @OptionGroup var options: LockOptions
    func run() throws { options.apply(locked: true) }
}

struct Unlock: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unlock a range for reads and writes.")
    @OptionGroup var options: LockOptions
    func run() throws { options.apply(locked: false) }
}

struct SetPin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-pin",
        abstract: "Change the PIN of SID, Admin1 or a user.",
        discussion: "--pin-file is the current PIN of the authority that authorizes the change: the target itself, "
            + "or Admin1 when the target is a user (Admin1 also enables the user). On an Enterprise SSC drive "
            + "(admin1…admin4 are BandMaster0…3, user1 the EraseMaster) every authority changes only its own PIN.")
    @OptionGroup var drive: DeviceOptions
    @OptionGroup var derivation: DerivationOptions
    @Option(help: "Whose PIN: sid, admin1…admin4, user1…user8.") var authority: String
    @Option(name: .customLong("as"), help: "Authorizing authority (default: the target; admin1 for users).") var authorizer: String?
    @Option(help: "File holding the authorizing authority's current PIN.") var pinFile: String
    @Option(help: "File holding the new PIN.") var newPinFile: String

    func validate() throws {
        guard let target = OpalAuthority(authority), target != .psid else {
            throw ValidationError("--authority takes sid, admin1…admin4 or user1…user8")
        }
        if let authorizer, OpalAuthority(authorizer) == nil { throw ValidationError("--as takes sid, admin1…admin4 or user1…user8") }
        if pinFile == "-" && newPinFile == "-" { throw ValidationError("only one of --pin-file and --new-pin-file can be stdin") }
        _ = target
    }

    func run() throws {
        reporting {
            guard let target = OpalAuthority(authority) else { throw CommandFailure("bad --authority", .badArguments) }
            let opal = try drive.open()
            let who: OpalAuthority
            if let authorizer, let a = OpalAuthority(authorizer) {
                who = a
            } else if case .user = target, !opal.userChangesOwnPIN {
                who = .admin(1)
            } else {
                who = target
            }
            let current = try derivation.pin(pinFile, option: "--pin-file", for: opal)
            let new = try derivation.pin(newPinFile, option: "--new-pin-file", for: opal)
            try opal.setPIN(of: target, newPIN: new, authorizer: who, authorizerPIN: current)
            drive.done("set-pin", "PIN changed", authority: opal.family.name(of: target))
        }
    }
}

struct Erase: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Crypto-erase a range: GenKey on its media key. Its data becomes unreadable for good.",
        discussion: "On an Enterprise SSC drive the band is erased by the EraseMaster (--erase-pin-file); Erase also "
            + "resets the band's lock settings and its BandMaster's PIN, which are put back at once (--pin-file).")
    @OptionGroup var drive: DeviceOptions
    @OptionGroup var derivation: DerivationOptions
    @Option(name: [.customLong("range"), .customLong("band")], help: "Range (band) number (0 = global range, Band0).") var range: Int
    @Option(help: "File holding the Admin1 PIN (Enterprise: the band's BandMaster's).") var pinFile: String
    @Option(help: "Enterprise SSC only: file holding the EraseMaster's PIN.") var erasePinFile: String?
    @Flag(help: "Confirm: the range's data is gone for good.") var yes = false

    func validate() throws {
        guard yes else { throw ValidationError("a crypto-erase destroys the range's data for good; confirm with --yes") }
        if pinFile == "-" && erasePinFile == "-" { throw ValidationError("only one of --pin-file and --erase-pin-file can be stdin") }
    }

    func run() throws {
        reporting {
            let opal = try drive.open()
            let erasePIN = try erasePinFile.map { (file) throws in try derivation.pin(file, option: "--erase-pin-file", for: opal) }
            try opal.eraseRange(range, adminPIN: try derivation.pin(pinFile, option: "--pin-file", for: opal), erasePIN: erasePIN)
            drive.done("erase", "crypto-erased", range: range)
        }
    }
}

struct Revert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Return the drive to factory state (SID = MSID, locking inactive). Erases data unless --keep-data.",
        discussion: """
        With --psid or --psid-file the PSID from the drive label is used (always erases data). With --sid-pin-file the SID \
        reverts the TPer; --keep-data first reverts the Locking SP as Admin1 keeping the global range key, \
        so the global range's data survives.
        """)
    @OptionGroup var drive: DeviceOptions
    @OptionGroup var derivation: DerivationOptions
    @Option(help: "The PSID printed on the drive label (visible to `ps`; prefer --psid-file).") var psid: String?
    @Option(help: "File holding the PSID ('-' for stdin).") var psidFile: String?
    @Option(help: "File holding the SID PIN.") var sidPinFile: String?
    @Option(help: "File holding the Admin1 PIN for --keep-data (default: the SID PIN).") var adminPinFile: String?
    @Flag(help: "Keep the global range's data (RevertSP with KeepGlobalRangeKey).") var keepData = false
    @Flag(help: "Confirm: the drive returns to factory state (and, without --keep-data, its data is gone).") var yes = false

    func validate() throws {
        guard yes else {
            throw ValidationError(keepData ? "a revert returns the drive to factory state, unowned and unlocked; confirm with --yes"
                                           : "a revert erases the drive's data for good; confirm with --yes")
        }
        let choices = [psid != nil, psidFile != nil, sidPinFile != nil].filter { $0 }.count
        guard choices == 1 else { throw ValidationError("give exactly one of --psid, --psid-file and --sid-pin-file") }
        if keepData && sidPinFile == nil { throw ValidationError("a PSID revert always erases data; --keep-data needs --sid-pin-file") }
        if sidPinFile == "-" && adminPinFile == "-" { throw ValidationError("only one PIN file can be stdin") }
        if adminPinFile != nil && !keepData { throw ValidationError("--admin-pin-file is used only with --keep-data") }
    }

    func run() throws {
        reporting {
            let opal = try drive.open()
            if let psid {
                var bytes = Array(psid.utf8)
                let secret = Secret(bytes)
                bytes.wipe()
                try opal.revert(as: .psid, pin: secret)
            } else if let psidFile {
                // The PSID is used as printed on the label: no PIN derivation.
                try opal.revert(as: .psid, pin: try PinFile.read(psidFile, option: "--psid-file"))
            } else if let sidPinFile {
                let sidPIN = try derivation.pin(sidPinFile, option: "--sid-pin-file", for: opal)
                if keepData {
                    var adminPIN = sidPIN
                    if let adminPinFile { adminPIN = try derivation.pin(adminPinFile, option: "--admin-pin-file", for: opal) }
                    try opal.revertKeepingGlobalRange(sidPIN: sidPIN, adminPIN: adminPIN)
                } else {
                    try opal.revert(as: .sid, pin: sidPIN)
                }
            }
            drive.done("revert", "reverted to factory state\(keepData ? " (global range data kept)" : "")")
        }
    }
}

struct MBR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mbr", abstract: "Shadow MBR: enable, disable, done, not-done, or load an image.")
    enum Action: String, ExpressibleByArgument, CaseIterable {
        case enable, disable, done, notDone = "not-done", load
    }
    @OptionGroup var drive: DeviceOptions
    @OptionGroup var derivation: DerivationOptions
    @Argument(help: "enable | disable | done | not-done | load") var action: Action
    @Option(help: "Image to load into the MBR table (with 'load').") var image: String?
    @Option(help: "File holding the Admin1 PIN.") var pinFile: String

    func validate() throws {
        if action == .load && image == nil { throw ValidationError("'load' needs --image FILE") }
        if action != .load && image != nil { throw ValidationError("--image is used only with 'load'") }
    }

    func run() throws {
        reporting {
            let opal = try drive.open()
            let pin = try derivation.pin(pinFile, option: "--pin-file", for: opal)
            switch action {
            case .enable: try opal.setMBR(enable: true, adminPIN: pin)
            case .disable: try opal.setMBR(enable: false, adminPIN: pin)
            case .done: try opal.setMBR(done: true, adminPIN: pin)
            case .notDone: try opal.setMBR(done: false, adminPIN: pin)
            case .load:
                guard let image, let data = FileManager.default.contents(atPath: image) else {
                    throw CommandFailure("--image: cannot read the file", .badArguments)
                }
                try opal.loadMBR(image: Array(data), adminPIN: pin)
            }
            drive.done("mbr", "MBR \(action.rawValue)")
        }
    }
}

struct Tries: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show Tries and TryLimit where the ACL allows (SID or Admin1).")
    @OptionGroup var drive: DeviceOptions
    @OptionGroup var derivation: DerivationOptions
    @Option(help: "Read as sid or admin1.") var authority: String = "admin1"
    @Option(help: "File holding that authority's PIN.") var pinFile: String

    func validate() throws {
        guard ["sid", "admin1"].contains(authority.lowercased()) else { throw ValidationError("--authority takes sid or admin1") }
    }

    func run() throws {
        reporting {
            let opal = try drive.open()
            let who = OpalAuthority(authority) ?? .admin(1)
            let tries = try opal.readTries(as: who, pin: try derivation.pin(pinFile, option: "--pin-file", for: opal))
            if drive.json { printJSON(tries); return }
            for t in tries { print("\(t.authority): tries \(t.tries) of \(t.tryLimit == 0 ? "unlimited" : String(t.tryLimit))\(t.persistence ? " (persistent)" : "")") }
        }
    }
}

struct Ranges: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show locking ranges (as Admin1; an Enterprise drive's bands, as BandMaster0).")
    @OptionGroup var drive: DeviceOptions
    @OptionGroup var derivation: DerivationOptions
    @Option(help: "File holding the Admin1 PIN.") var pinFile: String

    func run() throws {
        reporting {
            let opal = try drive.open()
            let ranges = try opal.readRanges(adminPIN: try derivation.pin(pinFile, option: "--pin-file", for: opal))
            if drive.json { printJSON(ranges); return }
            let noun = opal.family == .enterprise ? "band" : "range"
            for r in ranges where r.range == 0 || r.length > 0 {
                print("\(noun) \(r.range): start \(r.start) length \(r.length) \(r.isLocked ? "LOCKED" : "unlocked") "
                      + "RLE=\(r.readLockEnabled) WLE=\(r.writeLockEnabled) RL=\(r.readLocked) WL=\(r.writeLocked) "
                      + "lock-on-reset=\(r.lockOnReset.joined(separator: ","))")
            }
        }
    }
}
