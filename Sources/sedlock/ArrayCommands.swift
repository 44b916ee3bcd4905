import ArgumentParser
import ControlAPI
import Foundation
import Platform
import ControlSocket
import Keys
import LockManager
import LockState
import Opal
import SecurityTransport
import SimulatorTransport
import Synchronization

/// Options every array command shares: where the state is, how long drive commands may take.
struct ManagerOptions: ParsableArguments {
    @Flag(help: "Work in this process on the state directly instead of through sedlockd (maintenance while the daemon is stopped).")
    var direct = false
    @Option(help: "sedlockd's control socket (default: $\(ControlClient.socketVariable), else \(ControlClient.defaultSocketPath)).")
    var controlSocket: String?
    @Option(help: "Seconds to wait for sedlockd's answer.") var replyTimeout: Double = 300
    @Option(help: "With --direct: state directory (default: $STATE_DIRECTORY, else /var/lib/sedlock).") var stateDir: String?
    @Option(help: "With --direct: seconds to wait for each drive command (sedlockd has its own setting).") var timeout: Double = 10
    @Option(help: ArgumentHelp("File holding this boot's id (default: the kernel's); for simulated reboots.",
                               visibility: .hidden)) var bootIdFile: String?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard timeout > 0 && timeout <= 600 else { throw ValidationError("--timeout must be between 0 and 600 seconds") }
        guard replyTimeout > 0 && replyTimeout <= 86_400 else { throw ValidationError("--reply-timeout must be between 0 and 86400 seconds") }
        if direct && controlSocket != nil { throw ValidationError("--control-socket and --direct exclude each other") }
        if !direct && (stateDir != nil || bootIdFile != nil) {
            throw ValidationError("--state-dir and --boot-id-file apply only with --direct (sedlockd serves its own state)")
        }
    }

    /// Answers `request` through sedlockd, or in this process with --direct. `secret` (an adopted
    /// drive's password, a PSID) never crosses the socket: such requests need --direct.
    func perform(_ request: ControlRequest, secret: Secret? = nil) async throws -> ControlResponse {
        guard direct else {
            if request.needsSecret {
                throw CommandFailure("this command hands a secret (a drive password, a passphrase or a PSID) to the lock manager, and secrets never cross sedlockd's socket — stop sedlockd (`systemctl stop sedlockd.socket sedlockd.service`) and run it again with --direct", .badArguments)
            }
            let client: ControlClient
            do { client = try ControlClient(path: controlSocket ?? ControlClient.socketPathFromEnvironment) } catch { return .failure(error) }
            let printer = json ? nil : ProgressPrinter.shared
            do { return try client.send(request, timeout: replyTimeout) { printer?.print($0) } } catch { return .failure(error) }
        }
        FileHandle.standardError.write(Data("sedlock: --direct: working on the state in this process, not through sedlockd\n".utf8))
        var configuration = LockManagerConfiguration(stateDirectory: StateDirectory.resolve(explicit: stateDir))
        configuration.commandTimeout = timeout
        if let bootIdFile { configuration.bootIDPath = bootIdFile }
        // On threads of its own, as in sedlockd: KMIP over TLS, fsyncs and the wait for keys block,
        // and must not hold Swift's cooperative pool.
        let manager = LockManager(configuration: configuration, factory: .withSimulator)
        let printing: @Sendable (DriveProgress) -> Void = { ProgressPrinter.shared.print($0) }
        let progress = json ? nil : printing
        let response: ControlResponse = await Task(executorPreference: BlockingExecutor(threads: 4, name: "sedlock-direct")) {
            await LockManager.$progress.withValue(progress.map(ProgressReporter.init)) {
                await manager.respond(to: request, secret: secret)
            }
        }.value
        if case .failure(let error) = response, error.code == .busy {
            return .failure(ControlError(.busy, error.message,
                                         fix: "if sedlockd holds it, leave out --direct (or stop sedlockd for maintenance); otherwise \(error.fix)"))
        }
        return response
    }
}

/// Drives named on the command line, or --all.
struct DriveChoice: ParsableArguments {
    @Flag(help: "Every drive of the array.") var all = false
    @Argument(help: "Drives (device nodes or sim:DIR/N) of the array.", completion: DeviceCompletion.kind) var drives: [String] = []

    func validate() throws {
        guard all != !drives.isEmpty else { throw ValidationError("name drives, or give --all (not both)") }
    }

    var selection: DriveSelection { all ? .all : .some(drives) }
}

struct ArraySetup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract: "Take drives under management: one new key, every drive owned, locked on power loss, PINs proven.",
        discussion: """
        Factory drives are owned (SID from the MSID), their Locking SP activated, the global range set to lock on \
        power cycle, and SID, Admin1 and User1 given PINs derived from a new authentication key, whose check values \
        are recorded first. An owned drive is refused unless --adopt-pin-file proves its current password. The work \
        is journaled: after a crash, running `sedlock setup` again finishes it.
        """)
    @OptionGroup var options: ManagerOptions
    @Option(parsing: .upToNextOption, help: "The drives to set up.", completion: DeviceCompletion.kind) var drives: [String] = []
    @Option(help: "Where the key is kept: local (a root-only file or systemd credential), kmip (every key server; add them first) or clevis (sealed by clevis: tang servers, a TPM2, or an sss threshold).") var provider: KeyProviderKind = .local
    @Option(help: "Key tag (default: derived from the machine id).") var keyTag: String?
    @Option(help: "For --provider local or clevis: directory of the key file (default: STATE_DIR/keys).") var keyDir: String?
    @Option(help: "For --provider kmip: store k-of-n Shamir shares (one per key server) instead of full copies.") var threshold: Int?
    @OptionGroup var clevis: ClevisOptions
    @Option(help: "Adopt owned drives whose current password is in this file ('-' for stdin).") var adoptPinFile: String?
    @OptionGroup var adoptionDerivation: AdoptionDerivation
    @Option(help: ArgumentHelp("Make the key from the passphrase in this file ('-' for stdin; 20 to 256 characters, scrypt) instead of random bytes.",
                               discussion: "The same passphrase and key ID give the same key again; it is then kept like any other."))
    var passphraseFile: String?
    @Flag(help: "Also manage drives that lock but do not encrypt (Pyrite): their locking only, their data readable off the media.")
    var allowUnencrypted = false
    @Flag(help: "Check everything (drives probed, keys fetched and verified) and print what would be done to each drive; change nothing.")
    var dryRun = false

    func validate() throws {
        if passphraseFile != nil && adoptPinFile != nil {
            throw ValidationError("--passphrase-file and --adopt-pin-file cannot go together: adopt first, then `sedlock rekey --passphrase-file F`")
        }
    }

    func run() async throws {
        await reportingAsync {
            let secret = try adoptPinFile.map { try PinFile.read($0, option: "--adopt-pin-file") }
                ?? passphraseFile.map { try PinFile.read($0, option: "--passphrase-file") }
            var request = SetupRequest(drives: drives, provider: provider, keyTag: keyTag, keyDirectory: keyDir,
                                       threshold: threshold,
                                       adoption: adoptPinFile == nil ? nil : adoptionDerivation.adoption,
                                       fromPassphrase: passphraseFile != nil, allowUnencrypted: allowUnencrypted)
            request.clevis = clevis.policy
            request.dryRun = dryRun ? true : nil
            let response = try await options.perform(.setup(request), secret: secret)
            try show(response, json: options.json)
        }
    }
}

extension KeyProviderKind: ExpressibleByArgument {}

struct ArrayUnlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock",
        abstract: "Unlock drives of the array (keys fetched and verified first; no unverified PIN is ever tried).")
    @OptionGroup var options: ManagerOptions
    @OptionGroup var choice: DriveChoice
    @Flag(help: "The boot service's unlock: writes a boot record and obeys the boot-loop guard.") var boot = false
    @Option(help: "Seconds to wait for keys that can be verified, a hard bound on the whole unlock (0: one fetch within --timeout).")
    var wait: Double = 0

    func validate() throws {
        guard wait >= 0 && wait <= 24 * 3600 else { throw ValidationError("--wait must be between 0 and 86400 seconds") }
    }

    func run() async throws {
        await reportingAsync {
            let request = UnlockRequest(drives: choice.selection, boot: boot, waitSeconds: wait)
            try show(await options.perform(.unlock(request)), json: options.json)
        }
    }
}

struct ArrayLock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lock", abstract: "Lock drives of the array now.")
    @OptionGroup var options: ManagerOptions
    @OptionGroup var choice: DriveChoice

    func run() async throws {
        await reportingAsync {
            try show(await options.perform(.lock(LockRequest(drives: choice.selection))), json: options.json)
        }
    }
}

struct ArrayStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "The array at a glance: drives, key generations, recent boots.")
    @OptionGroup var options: ManagerOptions

    func run() async throws {
        await reportingAsync { try show(await options.perform(.status), json: options.json) }
    }
}

struct Guard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guard", abstract: "Lockout and boot-loop guards: show them, or reset a guarded drive.",
        subcommands: [GuardStatus.self, GuardReset.self])
}

struct GuardStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Failed-authentication counts, guarded drives, boot-loop hold.")
    @OptionGroup var options: ManagerOptions
    @Argument(help: "One drive (default: all).", completion: DeviceCompletion.kind) var drive: String?

    func run() async throws {
        await reportingAsync { try show(await options.perform(.guardStatus(address: drive)), json: options.json) }
    }
}

struct GuardReset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset", abstract: "Allow authentication attempts on a guarded drive again (after fixing the cause).")
    @OptionGroup var options: ManagerOptions
    @Argument(help: "The drive.", completion: DeviceCompletion.kind) var drive: String
    @Flag(help: "Confirm: the drive's own counters keep counting toward its lockout.") var yes = false

    func validate() throws {
        guard yes else { throw ValidationError("reset lets sedlock try the drive again; confirm with --yes") }
    }

    func run() async throws {
        await reportingAsync { try show(await options.perform(.guardReset(address: drive)), json: options.json) }
    }
}

struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Take the array back on a host whose state is lost, from the recovery records on the key servers.",
        discussion: """
        Add the array's key servers first (`sedlock keyserver add`). Each drive is matched by its identity to the newest \
        recovery record that lists it, and the record's key (and RDL token) is verified against the drive's check values \
        before anything is kept: no PIN is presented to any drive, and one that cannot be verified is refused (exit 15). \
        Then `sedlock unlock --all`.
        """)
    @OptionGroup var options: ManagerOptions
    @Option(parsing: .upToNextOption, help: "The array's drives.", completion: DeviceCompletion.kind) var drives: [String] = []
    @Option(help: "Only recovery records of this key tag.") var keyTag: String?

    func validate() throws {
        guard !drives.isEmpty else { throw ValidationError("name the array's drives (--drives)") }
    }

    func run() async throws {
        await reportingAsync { try show(await options.perform(.recover(RecoverRequest(drives: drives, keyTag: keyTag))), json: options.json) }
    }
}

struct Rekey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A new key for every drive (journaled: after a crash, rekey, unlock or the next boot finishes it).")
    @OptionGroup var options: ManagerOptions
    @Option(help: "Tag of the new key (default: the current key's).") var keyTag: String?
    @Option(help: "Where the new key is kept: local, kmip or clevis (default: where the current one is).") var provider: KeyProviderKind?
    @Option(help: "With --provider kmip: any K of the key servers' shares rebuild the key; 1: a full copy on each (default: as now).")
    var threshold: Int?
    @OptionGroup var clevis: ClevisOptions
    @Option(help: "Make the new key from the passphrase in this file ('-' for stdin; 20 to 256 characters, scrypt) instead of random bytes.")
    var passphraseFile: String?
    @Flag(help: "Check everything (drives probed, keys fetched and verified) and print what would be done to each drive; change nothing.")
    var dryRun = false

    func run() async throws {
        await reportingAsync {
            let passphrase = try passphraseFile.map { try PinFile.read($0, option: "--passphrase-file") }
            var request = RekeyRequest(keyTag: keyTag, provider: provider, threshold: threshold, fromPassphrase: passphraseFile != nil)
            request.clevis = clevis.policy
            request.dryRun = dryRun ? true : nil
            try show(await options.perform(.rekey(request), secret: passphrase), json: options.json)
        }
    }
}

struct ArrayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "array", abstract: "Add a drive to the array, or take one out.", subcommands: [ArrayAdd.self, ArrayRemove.self])
}

struct ArrayAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a drive: owned, activated, configured and given the array key's PINs (journaled).")
    @OptionGroup var options: ManagerOptions
    @Argument(help: "The drive (device node or sim:DIR/N).", completion: DeviceCompletion.kind) var drive: String
    @Option(help: "Adopt an owned drive whose current password is in this file ('-' for stdin).") var adoptPinFile: String?
    @OptionGroup var adoptionDerivation: AdoptionDerivation
    @Flag(help: "Also take a drive that locks but does not encrypt (Pyrite): its locking only.") var allowUnencrypted = false
    @Flag(help: "Check everything (drives probed, keys fetched and verified) and print what would be done to each drive; change nothing.")
    var dryRun = false

    func run() async throws {
        await reportingAsync {
            let password = try adoptPinFile.map { try PinFile.read($0, option: "--adopt-pin-file") }
            var request = ArrayAddRequest(address: drive, adoption: adoptPinFile == nil ? nil : adoptionDerivation.adoption,
                                          allowUnencrypted: allowUnencrypted)
            request.dryRun = dryRun ? true : nil
            try show(await options.perform(.arrayAdd(request), secret: password), json: options.json)
        }
    }
}

struct ArrayRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Take a drive out of the array; with --revert return it to factory state first (its data is gone).")
    @OptionGroup var options: ManagerOptions
    @Argument(help: "The drive.", completion: DeviceCompletion.kind) var drive: String
    @Flag(help: "Revert the drive as SID first: factory state, all data erased.") var revert = false
    @Flag(help: "Confirm --revert.") var yes = false
    @Flag(help: "Check the drive is the array's (and, with --revert, its key is here and verified) and print what would be done; change nothing.")
    var dryRun = false

    func validate() throws {
        if revert && !yes && !dryRun { throw ValidationError("--revert erases the drive's data; confirm with --yes") }
    }

    func run() async throws {
        await reportingAsync {
            try show(await options.perform(.arrayRemove(address: drive, revert: revert, dryRun: dryRun)), json: options.json)
        }
    }
}

extension EraseRequest.Method: ExpressibleByArgument {}

struct EraseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase",
        abstract: "Erase drives for good: --crypto (new media key; the drive stays), --revert or --psid-file (factory state; it leaves).")
    @OptionGroup var options: ManagerOptions
    @Argument(help: "The drives.", completion: DeviceCompletion.kind) var drives: [String] = []
    @Flag(help: "Crypto-erase the global range (GenKey): the data is gone, the drive stays in the array.") var crypto = false
    @Flag(help: "Revert as SID: factory state, data gone, the drive leaves the array.") var revert = false
    @Option(help: "Revert with the PSID from the drive's label, read from this file (one drive).") var psidFile: String?
    @Flag(help: "Confirm: no data survives.") var yes = false
    @Flag(help: "Check everything (keys fetched, each drive's PINs proven) and print what would be done to each drive; change nothing (no --yes needed).")
    var dryRun = false

    func validate() throws {
        guard !drives.isEmpty else { throw ValidationError("name the drives to erase") }
        guard [crypto, revert, psidFile != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --crypto, --revert and --psid-file")
        }
        if psidFile != nil && drives.count != 1 { throw ValidationError("--psid-file reverts one drive") }
        guard yes || dryRun else { throw ValidationError("erasing destroys the data for good; confirm with --yes") }
    }

    func run() async throws {
        await reportingAsync {
            let method: EraseRequest.Method = crypto ? .crypto : revert ? .revert : .psid
            let psid = try psidFile.map { try PinFile.read($0, option: "--psid-file") }
            var request = EraseRequest(drives: drives, method: method)
            request.dryRun = dryRun ? true : nil
            try show(await options.perform(.erase(request), secret: psid), json: options.json)
        }
    }
}

struct ReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Take drives out of sedlock's care keeping their data: unowned (SID = MSID), locking off, data readable.",
        discussion: """
            Each drive's verified PINs unlock its global range, revert its Locking SP keeping the \
            global range's key (RevertSP, KeepGlobalRangeKey) and revert it as SID; it then leaves \
            the array. Anyone who holds the drive can read it afterwards. To release a drive with \
            its data erased, use `sedlock erase --revert`.
            """)
    @OptionGroup var options: ManagerOptions
    @Argument(help: "The drives.", completion: DeviceCompletion.kind) var drives: [String] = []
    @Flag(help: "Keep the data (required: the release is always a keep-data release).") var keepData = false
    @Flag(help: "Confirm: the drives' data will be readable by anyone.") var yes = false
    @Flag(help: "Check everything (keys fetched, each drive's PINs proven) and print what would be done to each drive; change nothing (no --yes needed).")
    var dryRun = false

    func validate() throws {
        guard !drives.isEmpty else { throw ValidationError("name the drives to release") }
        guard keepData else { throw ValidationError("release keeps the data: say so with --keep-data (to erase it, use `sedlock erase --revert`)") }
        guard yes || dryRun else { throw ValidationError("released drives are unlocked and unowned, their data readable by anyone; confirm with --yes") }
    }

    func run() async throws {
        await reportingAsync {
            var request = EraseRequest(drives: drives, method: .release)
            request.dryRun = dryRun ? true : nil
            try show(await options.perform(.erase(request)), json: options.json)
        }
    }
}

struct Faults: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open faults (guarded drives, boot-loop hold, unfinished setup or rekey, certificates near expiry, key servers failing their test) and recently cleared ones.")
    @OptionGroup var options: ManagerOptions
    @Flag(help: ArgumentHelp("One line and a monitoring plugin's exit status: 0 healthy, 1 warnings, 2 errors or critical faults, 3 the faults could not be read.",
                             discussion: "For Nagios, Icinga, Zabbix or a cron job: `sedlock faults --check`."))
    var check = false

    func run() async throws {
        guard check else {
            await reportingAsync { try show(await options.perform(.faults), json: options.json) }
        }
        let response: ControlResponse
        do { response = try await options.perform(.faults) } catch { response = .failure(ControlError(error)) }
        let (status, line) = Self.verdict(response)
        print(line)
        Foundation.exit(status)
    }

    /// The plugin convention's status and one line saying why.
    static func verdict(_ response: ControlResponse) -> (Int32, String) {
        guard case .faults(let report) = response else {
            if case .failure(let error) = response { return (3, "SEDLOCK UNKNOWN - \(error.message)") }
            return (3, "SEDLOCK UNKNOWN - unexpected answer")
        }
        let serious = report.open.filter { $0.severity == "error" || $0.severity == "critical" }
        let warnings = report.open.filter { $0.severity == "warning" }
        let named = (serious + warnings).map { "\($0.severity) \($0.name) \($0.object)" }.joined(separator: "; ")
        if !serious.isEmpty { return (2, "SEDLOCK CRITICAL - \(serious.count + warnings.count) fault(s): \(named)") }
        if !warnings.isEmpty { return (1, "SEDLOCK WARNING - \(warnings.count) fault(s): \(named)") }
        return (0, "SEDLOCK OK - no open faults" + (report.open.isEmpty ? "" : " above info (\(report.open.count) informational)"))
    }
}

struct KeyServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyserver", abstract: "The array's KMIP key servers (at most four): add, remove, show, status, query.",
        subcommands: [KeyServerAdd.self, KeyServerModify.self, KeyServerRemove.self, KeyServerShow.self, KeyServerStatus.self, KeyServerTest.self,
                      KeyServerQuery.self])
}

struct KeyServerAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add key servers, each tested first (TLS, authentication, a Locate) and given the array's keys; several: all or none.")
    @OptionGroup var options: ManagerOptions
    @Argument(help: "HOST[:PORT] of each server (port 5696 by default).") var servers: [String]
    @Option(help: "Other members of the server's cluster, HOST[:PORT], comma separated.") var cluster: String?
    @Option(help: "A name for the server (default: HOST:PORT).") var name: String?
    @Option(help: "Client certificate (PEM).") var cert: String
    @Option(help: "Client private key (PEM); only its path is kept.") var key: String
    @Option(help: "CA certificates that signed the server's certificate (PEM).") var ca: String
    @Flag(help: "Do not check that the server's certificate names the host.") var noVerifyName = false

    func validate() throws {
        guard !servers.isEmpty else { throw ValidationError("give the server's HOST[:PORT]") }
        if servers.count > 1 && (name != nil || cluster != nil) {
            throw ValidationError("--name and --cluster describe one server: add such a server on its own")
        }
    }

    func run() async throws {
        await reportingAsync {
            let requests = servers.map { server in
                KeyServerAddRequest(addresses: [server] + (cluster.map { $0.split(separator: ",").map(String.init) } ?? []), name: name,
                                    certificatePath: absolute(cert), privateKeyPath: absolute(key), caPath: absolute(ca),
                                    verifyServerName: !noVerifyName)
            }
            let request: ControlRequest = requests.count == 1 ? .keyServerAdd(requests[0]) : .keyServersAdd(requests)
            try show(await options.perform(request), json: options.json)
        }
    }
}

/// Paths are kept in the state, so they are made absolute against the current directory.
func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

struct KeyServerModify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modify",
        abstract: "Change a key server's addresses or identity (a renewed certificate, a new CA), tested before anything is kept.",
        discussion: """
            The server as it would be is tested (TLS with the new identity, authentication) and must \
            still hold every object the array keeps there; otherwise nothing changes.
            """)
    @OptionGroup var options: ManagerOptions
    @Argument(help: "The server's name.") var name: String
    @Option(help: "New HOST[:PORT] of the server (with --cluster, its whole cluster).") var address: String?
    @Option(help: "New other members of its cluster, HOST[:PORT], comma separated (with --address).") var cluster: String?
    @Option(help: "New client certificate (PEM).") var cert: String?
    @Option(help: "New client private key (PEM); only its path is kept.") var key: String?
    @Option(help: "New CA certificates that signed the server's certificate (PEM).") var ca: String?
    @Option(help: "yes or no: check that the server's certificate names the host.") var verifyName: VerifyName?

    enum VerifyName: String, ExpressibleByArgument { case yes, no }

    func validate() throws {
        if cluster != nil && address == nil { throw ValidationError("--cluster replaces the cluster with --address: give both") }
    }

    func run() async throws {
        await reportingAsync {
            let addresses = address.map { [$0] + (cluster.map { $0.split(separator: ",").map(String.init) } ?? []) }
            let request = KeyServerModifyRequest(name: name, addresses: addresses, certificatePath: cert.map(absolute),
                                                 privateKeyPath: key.map(absolute), caPath: ca.map(absolute),
                                                 verifyServerName: verifyName.map { $0 == .yes })
            try show(await options.perform(.keyServerModify(request)), json: options.json)
        }
    }
}

struct KeyServerRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove key servers, checked together: refused while a live key or the RDL token would be left without enough servers.")
    @OptionGroup var options: ManagerOptions
    @Argument(help: "The servers' names.") var names: [String]

    func validate() throws {
        guard !names.isEmpty else { throw ValidationError("name the key servers to remove") }
    }
    func run() async throws {
        await reportingAsync { try show(await options.perform(.keyServerRemove(names: names)), json: options.json) }
    }
}

struct KeyServerShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "The configured key servers.")
    @OptionGroup var options: ManagerOptions
    func run() async throws {
        await reportingAsync { try show(await options.perform(.keyServerShow), json: options.json) }
    }
}

struct KeyServerStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Test each key server: TLS, authentication, a Locate.")
    @OptionGroup var options: ManagerOptions
    func run() async throws {
        await reportingAsync { try show(await options.perform(.keyServerStatus), json: options.json) }
    }
}

struct KeyServerTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test", abstract: "Test one key server (or all) as the boot service reaches it: TLS, authentication, a Locate.")
    @OptionGroup var options: ManagerOptions
    @Argument(help: "The server's name (default: every server).") var name: String?
    func run() async throws {
        await reportingAsync {
            var response = try await options.perform(.keyServerStatus)
            if let name, case .keyServers(var report) = response {
                report.servers = report.servers.filter { $0.name == name }
                guard !report.servers.isEmpty else { throw CommandFailure("no key server named \(name)", .badArguments) }
                response = .keyServers(report)
            }
            try show(response, json: options.json)
        }
    }
}

struct KeyServerQuery: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query", abstract: "Key IDs each server holds; * marks a key the keytable lacks.")
    @OptionGroup var options: ManagerOptions
    func run() async throws {
        await reportingAsync { try show(await options.perform(.keyServerQuery), json: options.json) }
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Key generations and the keytable: list, restore, retire, destroy.",
        subcommands: [KeysList.self, KeysRestore.self, KeysRetire.self, KeysDestroy.self])
}

struct KeysList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Key generations, their state and provider.")
    @OptionGroup var options: ManagerOptions
    func run() async throws {
        await reportingAsync { try show(await options.perform(.keysList), json: options.json) }
    }
}

struct KeysRetire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retire", abstract: "Take a generation no drive or unfinished change needs out of the keytable (its key is kept).")
    @OptionGroup var options: ManagerOptions
    @Argument(help: "The generation's key ID (`sedlock keys list`).") var keyID: String
    func run() async throws {
        await reportingAsync { try show(await options.perform(.keysRetire(keyID: keyID)), json: options.json) }
    }
}

struct KeysDestroy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "destroy",
        abstract: "Destroy a retired generation everywhere: Revoke and Destroy on every key server, its key files, the keytable.")
    @OptionGroup var options: ManagerOptions
    @Argument(help: "The retired generation's key ID (`sedlock keys list`).") var keyID: String
    @Flag(help: "Confirm: a drive taken out with its PINs kept can then come back only by a PSID revert.") var yes = false
    func validate() throws {
        guard yes else { throw ValidationError("destroying a key generation is permanent; confirm with --yes") }
    }
    func run() async throws {
        await reportingAsync { try show(await options.perform(.keysDestroy(keyID: keyID)), json: options.json) }
    }
}

struct KeysRestore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Load the keytable from the key servers: --all rebuilds it, --server adds one server's keys; a generation the state lacks is adopted from the newest recovery record when it verifies.")
    @OptionGroup var options: ManagerOptions
    @Flag(help: "Rebuild from every server, dropping keys no server holds any more.") var all = false
    @Option(help: "Add the keys one server holds.") var server: String?
    @Option(help: "Only keys with this tag.") var keyTag: String?

    func validate() throws {
        guard all != (server != nil) else { throw ValidationError("give --all or --server NAME") }
    }

    func run() async throws {
        await reportingAsync {
            let request = KeysRestoreRequest(all: all, server: server, keyTag: keyTag)
            try show(await options.perform(.keysRestore(request)), json: options.json)
        }
    }
}

struct RDLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rdl", abstract: "Rapid Data Locking: the drives open only with a security token held on the key servers.",
        discussion: """
        Once enabled, every drive's PINs need the array's key and the security token, which lives on the KMIP key \
        servers. Revoke the appliance's certificate on the key servers, or destroy the token, and the array stays \
        locked from its next restart on (destroying the token loses the data for good). While running, losing the \
        token raises a fault and the data stays available until the restart. RDL is permanent.
        """,
        subcommands: [RDLTest.self, RDLEnable.self, RDLStatus.self, RDLRotate.self, RDLDisable.self])
}

struct RDLTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test", abstract: "Test a key server for RDL: TLS with the client certificate, authentication, a KMIP Locate.")
    @OptionGroup var options: ManagerOptions
    @Option(help: "The key server's name (see `sedlock keyserver show`).") var kmip: String

    func run() async throws {
        await reportingAsync { try show(await options.perform(.rdlTest(server: kmip)), json: options.json) }
    }
}

struct RDLEnable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable", abstract: "Turn Rapid Data Locking on, for good: a new token on every key server, every drive rekeyed to need it.")
    @OptionGroup var options: ManagerOptions
    @Option(help: "The key server to test first (the token goes to every configured server).") var kmip: String
    @Flag(help: "Lock every drive at once when the token is revoked or destroyed, or the certificate is refused (an unreachable server alone does not).")
    var lockOnLoss = false
    @Option(help: "Keep the token as k-of-n Shamir shares, one per key server: any k servers unlock, fewer cannot (default: a full copy on each).")
    var threshold: Int?
    @Flag(help: "Confirm: RDL cannot be turned off without erasing every drive.") var yes = false
    @Flag(help: "Make every check enable makes (the key server tested, every drive healthy and encrypting) and say what it would do; change nothing (no --yes needed).")
    var dryRun = false

    func validate() throws {
        guard yes || dryRun else { throw ValidationError("RDL is permanent (leaving it erases every drive); confirm with --yes") }
        if let threshold, threshold < 2 { throw ValidationError("--threshold must be at least 2 (leave it out for full copies)") }
    }

    func run() async throws {
        await reportingAsync {
            var request = RDLEnableRequest(server: kmip, lockOnLoss: lockOnLoss, threshold: threshold)
            request.dryRun = dryRun ? true : nil
            try show(await options.perform(.rdlEnable(request)), json: options.json)
        }
    }
}

struct RDLRotate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate", abstract: "A new security token on every key server, every drive rekeyed to need it (journaled).")
    @OptionGroup var options: ManagerOptions

    func run() async throws {
        await reportingAsync { try show(await options.perform(.rdlRotate), json: options.json) }
    }
}

struct RDLDisable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable", abstract: "Leave Rapid Data Locking: every drive is crypto-erased first (no data survives).")
    @OptionGroup var options: ManagerOptions
    @Flag(help: "Consent to erasing every drive of the array.") var obliterateAllData = false
    @Flag(help: "Confirm.") var yes = false

    func validate() throws {
        guard obliterateAllData && yes else {
            throw ValidationError("leaving RDL erases every drive: give --obliterate-all-data --yes")
        }
    }

    func run() async throws {
        await reportingAsync { try show(await options.perform(.rdlDisable), json: options.json) }
    }
}

struct RDLStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Where Rapid Data Locking stands: server, token, state, since, last test.")
    @OptionGroup var options: ManagerOptions

    func run() async throws {
        await reportingAsync { try show(await options.perform(.rdlStatus), json: options.json) }
    }
}

// MARK: Output and exit status

/// How long ago a monitor's result was found: "4 s", "3 min", "2 h".
func age(since date: Date, now: Date = Date()) -> String {
    let seconds = max(0, Int(now.timeIntervalSince(date)))
    if seconds < 120 { return "\(seconds) s" }
    if seconds < 7200 { return "\(seconds / 60) min" }
    return "\(seconds / 3600) h"
}

/// One drive's outcome as the CLI prints it: "sim:/a/0: rekeyed (1 authentication)".
func driveLine(_ drive: DriveOutcome) -> String {
    let attempts = drive.attempts == 1 ? "1 authentication" : "\(drive.attempts) authentications"
    return "\(drive.address): \(drive.result.words) (\(attempts))\(drive.detail.isEmpty ? "" : " — \(drive.detail)")"
}

/// Prints each drive of a long operation as it finishes ("… [3/12]"), and remembers which, so
/// that the report at the end does not print them again.
final class ProgressPrinter: Sendable {
    static let shared = ProgressPrinter()
    private let shown = Mutex<Set<DriveOutcome>>([])

    func print(_ update: DriveProgress) {
        shown.withLock { shown in
            shown.insert(update.drive)
            // Unbuffered, so that each line shows as its drive finishes (stdout may be a pipe).
            FileHandle.standardOutput.write(Data("\(driveLine(update.drive)) [\(update.done)/\(update.total)]\n".utf8))
        }
    }

    func printed(_ drive: DriveOutcome) -> Bool { shown.withLock { $0.contains(drive) } }
}

/// Prints a response and throws the failure that sets the exit status.
func show(_ response: ControlResponse, json: Bool) throws {
    switch response {
    case .failure(let error):
        throw CommandFailure(error)
    case .array(let report):
        if json { printJSON(report) } else {
            // Drives whose progress line was printed as they finished are not repeated.
            for drive in report.drives where !ProgressPrinter.shared.printed(drive) { print(driveLine(drive)) }
            if !report.note.isEmpty { print(report.note) }
            if let trips = report.keyServerRoundTrips {
                print("keys from the key servers: \(trips) round trip(s) over \(report.keyServerConnections ?? 0) connection(s)")
            }
        }
        if let status = ExitStatus(report) {
            throw CommandFailure("\(report.operation): \(report.drives.filter { !$0.succeeded }.count) of \(report.drives.count) drives not done", status)
        }
    case .status(let status):
        if json { printJSON(status); return }
        if status.drives.isEmpty && status.generations.isEmpty {
            print("no array is set up (`sedlock setup --drives DEV...` makes one)")
        }
        for d in status.drives {
            let state = d.error.map { "unreachable (\($0))" } ?? (d.locked.map { $0 ? "LOCKED" : "unlocked" } ?? "unknown")
            var line = "\(d.address)  \(d.model)  \(d.serial)  \(state)  key \(d.generation ?? "none (setup unfinished)")"
            line += "  failed auth \(d.failedAuthentications)\(d.tryLimit.map { " (drive TryLimit \($0))" } ?? "")"
            if let family = d.family { line += "  \(family)" }
            if d.mediaEncryption == false { line += "  LOCK ONLY: no media encryption" }
            if let reason = d.guarded { line += "  GUARDED: \(reason)" }
            print(line)
        }
        for u in status.unmanagedDrives ?? [] {
            print("not the array's: \(u.address)  \(u.model)  \(u.serial)  \(u.subsystems.joined(separator: ", "))"
                  + "\(u.owned == true ? ", owned" : ", factory SID")\(u.locked == true ? ", LOCKED" : "")  (left alone; `sedlock array add` to manage it)")
        }
        for g in status.generations { print("key \(g.keyID)  tag \(g.tag)  \(g.state)  \(g.provider)  created \(g.createdAt)") }
        for s in status.keyServers {
            let state = s.reachable.map { $0 ? "reachable" : "UNREACHABLE: \(s.error ?? "")" } ?? "not tested yet"
            print("key server \(s.name)  \(state)\(s.checkedAt.map { "  (tested \(age(since: $0)) ago)" } ?? "")")
        }
        for f in status.faults { print("fault \(f.severity.uppercased()) \(f.name) \(f.object): \(f.detail)") }
        for b in status.recentBoots { print("boot \(b.bootID): \(b.outcome)\(b.detail.isEmpty ? "" : " (\(b.detail))")") }
    case .keyServers(let report):
        if json { printJSON(report); return }
        for server in report.servers {
            var line = "\(server.name)  \(server.addresses.joined(separator: ","))  cert \(server.certificatePath)  ca \(server.caPath)"
            if let reachable = server.reachable {
                line += reachable ? "  OK\(server.tls.map { " (\($0))" } ?? "")\(server.error.map { ", but \($0)" } ?? "")"
                                  : "  FAILED: \(server.error ?? "")"
            }
            if let checked = server.checkedAt { line += "  (tested \(age(since: checked)) ago)" }
            print(line)
            for key in server.keys ?? [] { print("  \(key.inKeytable ? " " : "*") \(key.keyID)  tag \(key.tag)") }
        }
        if report.servers.isEmpty { print("no key server configured") }
        if let note = report.note { print(note) }
        let failed = report.servers.filter { $0.reachable == false }
        if !failed.isEmpty {
            throw CommandFailure("\(failed.count) of \(report.servers.count) key servers failed", failed.count == report.servers.count ? .transport : .partial)
        }
    case .keys(let report):
        if json { printJSON(report); return }
        for key in report.keys {
            print("\(key.inKeytable ? " " : "*") \(key.keyID)  tag \(key.tag)  \(key.state)  \(key.provider)\(key.detail.isEmpty ? "" : "  — \(key.detail)")")
        }
    case .faults(let report):
        if json { printJSON(report); return }
        if report.open.isEmpty { print("no open faults") }
        for f in report.open {
            print("\(f.severity.uppercased())  \(f.name)  \(f.object)  since \(f.raisedAt)\n  \(f.detail)\n  → \(f.action)")
        }
        for f in report.recentlyCleared {
            print("cleared \(f.clearedAt.map { "\($0)" } ?? "")  \(f.name)  \(f.object)")
        }
    case .reloaded(let report):
        if json { printJSON(report); return }
        print("reloaded \(report.source)\(report.pendingRestart.isEmpty ? "" : "; on restart only: " + report.pendingRestart.joined(separator: ", "))")
    case .rdl(let report):
        if json { printJSON(report); return }
        if let test = report.test {
            print(test.ok ? "\(test.server): OK" : "\(test.server): FAIL — \(test.failure ?? ""): \(test.cause ?? "")")
        }
        print("rapid data locking: \(report.state)")
        if let server = report.server { print("server      \(server)") }
        if let token = report.tokenID {
            print("token       \(token)\(report.tokenLocations.isEmpty ? "" : "  held on \(report.tokenLocations.joined(separator: ", "))")")
            if let threshold = report.tokenThreshold {
                print("shares      any \(threshold) of \(report.tokenLocations.count) key servers rebuild the token")
            }
        }
        if let since = report.since { print("since       \(since)") }
        print("lock on loss \(report.lockOnLoss ? "yes" : "no")")
        if let at = report.lastTestAt { print("last test   \(report.lastTestResult ?? "") at \(at)") }
        if let test = report.test, !test.ok {
            throw CommandFailure("\(test.server): \(test.failure ?? "test failed")", test.failure == RDLReport.Test.cannotConnect ? .transport : .notAuthorized)
        }
    case .guardState(let report):
        if json { printJSON(report); return }
        for d in report.drives {
            print("\(d.address): \(d.failedAuthentications) of \(d.limit) failed authentications\(d.guarded.map { " — GUARDED: \($0)" } ?? "")")
        }
        print("boot-loop guard: \(report.consecutiveFailedBoots) consecutive failed boots\(report.bootLoopHold ? " — the next boot is held: verified keys only, no attempt on a drive that refused sedlock before" : "")")
    }
}

extension ExitStatus {
    /// The status of an array operation that did not fully succeed (nil when it did).
    init?(_ report: ArrayReport) {
        if report.allSucceeded { return nil }
        if !report.noneSucceeded { self = .partial; return }
        let results = Set(report.drives.map(\.result))
        if results.isSubset(of: [.held, .guarded, .keyUnavailable, .keyMismatch]) { self = .held; return }
        if results.contains(.lockedOut) { self = .lockedOut; return }
        if results.contains(.notAuthorized) { self = .notAuthorized; return }
        if results.contains(.unreachable) { self = .transport; return }
        self = .drive
    }
}

