import ArgumentParser
import CShims
import CommandLineSupport
import Foundation
import SedSimulator
import SimulatorLink
import TCGStorage

@main
struct Sedsim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sedsim",
        abstract: "Simulated Opal self-encrypting drives: create an array, serve it, power-cycle it, inspect it.",
        version: SedlockVersion.number,
        subcommands: [Create.self, Serve.self, PowerCycle.self, HardwareReset.self, Status.self,
                      Write.self, Read.self, Fault.self, Devices.self, KMIPServerCommand.self, ApplianceCommand.self])

    static func main() {
        refuseUnknownSubcommand()
        main(nil)
    }
}

struct ArrayDirectory: ParsableArguments {
    @Argument(help: "The array directory.")
    var directory: String

    var url: URL { URL(fileURLWithPath: directory).standardizedFileURL }
}

/// Parses sizes like 1073741824, 64M, 1G.
func parseSize(_ text: String) -> UInt64? {
    let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
    guard let last = text.uppercased().last else { return nil }
    if let unit = units[last] {
        return UInt64(text.dropLast()).flatMap { $0.multipliedReportingOverflow(by: unit).overflow ? nil : $0 * unit }
    }
    return UInt64(text)
}

extension DriveKind: ExpressibleByArgument {}
extension LockoutStatus: ExpressibleByArgument {}
extension SATLayer: ExpressibleByArgument {}

/// `--ssc opal`, or a comma list that the drives take in turn (`--ssc opal,enterprise`: a mixed array).
struct SubsystemClasses: ExpressibleByArgument {
    let classes: [SimulatedSSC]

    init(_ classes: [SimulatedSSC]) { self.classes = classes }

    init?(argument: String) {
        let parsed = argument.split(separator: ",").map { SimulatedSSC(rawValue: String($0)) }
        guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else { return nil }
        classes = parsed.compactMap { $0 }
    }

    static let help = "The TCG security subsystem class: opal (locking and AES-256-XTS media encryption), "
        + "enterprise (the Enterprise SSC: bands, BandMasters, an EraseMaster; encrypted as Opal), ruby (reported as "
        + "the Ruby SSC, with Opal 2's tables), opalite (the Opalite SSC: Opal with the global range alone) or pyrite "
        + "(Opal's locking, the media in clear); a comma list "
        + "(opal,enterprise) is taken by the drives in turn."

    /// One class for every drive (nil: Opal), or the mix for the array's specification.
    var uniform: SimulatedSSC? { classes.count == 1 && classes[0] != .opal ? classes[0] : nil }
    var mix: [SimulatedSSC]? { classes.count > 1 ? classes : nil }
    var defaultValueDescription: String { classes.map(\.rawValue).joined(separator: ",") }
    var summary: String { classes == [.opal] ? "" : " " + classes.map(\.rawValue).joined(separator: "/") }
}
extension DriveQuirk: ExpressibleByArgument {}

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a new array of factory-fresh drives.")
    @OptionGroup var array: ArrayDirectory
    @Option(help: "Number of drives.") var drives: Int = 1
    @Option(help: "Capacity per drive in bytes (suffixes K, M, G, T).") var size: String = "1G"
    @Option(help: "Interface: nvme, sas or sata.") var kind: DriveKind = .nvme
    @Option(help: "Logical block size: 512 or 4096.") var blockSize: Int = 512
    @Option(help: "C_PIN TryLimit of every authority (0 = unlimited).") var tryLimit: UInt64 = 5
    @Flag(help: "C_PIN Persistence: Tries survive power cycles, so a lockout lasts for good.") var persistentTries = false
    @Option(help: "Status for a locked-out authority: not-authorized or locked-out.") var lockoutStatus: LockoutStatus = .notAuthorized
    @Option(help: "Consecutive failed authentications after which a drive erases itself for good.") var lifetimeLimit: Int = 1024
    @Option(help: "SATA only: the SAT layer in front of the drive: libata (security commands translated, ATA PASS-THROUGH 16 and 12), pass-through-only, or ata12-only.")
    var satLayer: SATLayer = .libata
    @Option(help: "Locking ranges besides the global range.") var ranges: Int = 8
    @Option(help: "Seconds after which an idle session is closed by the drive (at least 1).") var sessionTimeout: Double = 30
    @Option(parsing: .upToNextOption, help: ArgumentHelp(
        "Tolerances of real firmware beyond the specification (default: none, a strict drive): "
            + DriveQuirk.allCases.map { "\($0.rawValue) (\($0.explanation))" }.joined(separator: "; ") + ".",
        valueName: "quirk"))
    var quirks: [DriveQuirk] = []
    @Option(help: ArgumentHelp(SubsystemClasses.help, valueName: "class[,class…]"))
    var ssc = SubsystemClasses([.opal])

    func validate() throws {
        guard parseSize(size) != nil else { throw ValidationError("--size '\(size)' is not a size (e.g. 1G, 64M, 1073741824)") }
        guard (1...256).contains(drives) else { throw ValidationError("--drives must be 1…256") }
        guard (1...64).contains(ranges) else { throw ValidationError("--ranges must be 1…64") }
        guard lifetimeLimit >= 1 else { throw ValidationError("--lifetime-limit must be at least 1") }
        guard sessionTimeout >= 1 && sessionTimeout <= 3600 else { throw ValidationError("--session-timeout must be 1…3600 seconds") }
    }

    func run() throws {
        var settings = DriveSettings()
        settings.tryLimit = tryLimit
        settings.lockoutStatus = lockoutStatus
        settings.triesPersistent = persistentTries
        settings.lifetimeFailureLimit = lifetimeLimit
        settings.satLayer = kind == .sata ? satLayer : nil
        settings.lockingRanges = ranges
        settings.sessionTimeoutSeconds = sessionTimeout
        settings.quirks = quirks.isEmpty ? nil : Array(Set(quirks)).sorted { $0.rawValue < $1.rawValue }
        settings.ssc = ssc.uniform
        let spec = ArraySpecification(drives: drives, sizeBytes: parseSize(size) ?? 0, kind: kind, blockSize: blockSize,
                                      settings: settings, subsystemClasses: ssc.mix)
        do { try SimulatedArray.create(at: array.url, specification: spec) } catch { fail("\(error)") }
        print("created \(drives) \(kind.rawValue)\(ssc.summary) drive(s) in \(array.url.path)")
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the array on DIR/\(LinkPaths.socketName) until killed.")
    @OptionGroup var array: ArrayDirectory

    func run() throws {
        prepareSignalsForServing()
        let server: ArrayServer
        do { server = try ArrayServer(array: try SimulatedArray(directory: array.url)) } catch { fail("\(error)") }
        FileHandle.standardError.write(Data("sedsim: serving \(server.array.drives.count) drive(s) on \(server.socketPath)\n".utf8))
        server.run()
    }
}

struct DriveSelection: ParsableArguments {
    @Option(help: "Only this drive (default: every drive).") var drive: Int?

    func drives(of count: Int) -> [Int] { drive.map { [$0] } ?? Array(0..<count) }
}

struct PowerCycle: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "power-cycle", abstract: "Cut and restore power to drives.")
    @OptionGroup var array: ArrayDirectory
    @OptionGroup var selection: DriveSelection
    func run() throws { try broadcast(array, selection, .powerCycle) }
}

struct HardwareReset: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hardware-reset", abstract: "Apply a hardware reset to drives.")
    @OptionGroup var array: ArrayDirectory
    @OptionGroup var selection: DriveSelection
    func run() throws { try broadcast(array, selection, .hardwareReset) }
}

func broadcast(_ array: ArrayDirectory, _ selection: DriveSelection, _ op: LinkOperation) throws {
    let access = ArrayAccess(array.url)
    let count = try access.driveCount()
    let targets = selection.drives(of: count)
    for n in targets { _ = try access.request(LinkRequest(op, drive: n)) }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show each drive's ownership, ranges, tries and failures.")
    @OptionGroup var array: ArrayDirectory
    @OptionGroup var selection: DriveSelection
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let access = ArrayAccess(array.url)
        let count = try access.driveCount()
        let targets = selection.drives(of: count)
        var reports: [DriveStatusReport] = []
        for n in targets {
            let payload = try access.request(LinkRequest(.status, drive: n))
            guard let report = try? JSONDecoder().decode(DriveStatusReport.self, from: Data(payload)) else {
                fail("drive \(n): malformed status")
            }
            reports.append(report)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: (try? encoder.encode(reports)) ?? Data(), as: UTF8.self))
            return
        }
        for r in reports { print(StatusText.render(r)) }
    }
}

struct Write: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write stdin to a drive at an LBA (padded to whole blocks).")
    @OptionGroup var array: ArrayDirectory
    @Argument(help: "Drive number.") var drive: Int
    @Option(help: "First logical block.") var lba: UInt64

    func run() throws {
        let access = ArrayAccess(array.url)
        let blockSize = try access.identity(drive).blockSize
        var data = Array(FileHandle.standardInput.readDataToEndOfFile())
        if data.isEmpty { fail("nothing on stdin to write") }
        data += [UInt8](repeating: 0, count: (blockSize - data.count % blockSize) % blockSize)
        // The link carries at most 16 MiB per message: write in 8 MiB pieces.
        let chunk = (8 << 20) / blockSize * blockSize
        var offset = 0
        while offset < data.count {
            let piece = Array(data[offset..<min(data.count, offset + chunk)])
            _ = try access.request(LinkRequest(.write, drive: drive, length: UInt32(piece.count / blockSize),
                                               lba: lba + UInt64(offset / blockSize), payload: piece))
            offset += piece.count
        }
    }
}

struct Read: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read blocks from a drive to stdout.")
    @OptionGroup var array: ArrayDirectory
    @Argument(help: "Drive number.") var drive: Int
    @Option(help: "First logical block.") var lba: UInt64
    @Option(help: "Number of blocks.") var count: UInt32 = 1

    func run() throws {
        let access = ArrayAccess(array.url)
        let perRequest = UInt32(max(1, (8 << 20) / (try access.identity(drive).blockSize)))
        var done: UInt32 = 0
        while done < count {
            let n = min(perRequest, count - done)
            let payload = try access.request(LinkRequest(.read, drive: drive, length: n, lba: lba + UInt64(done)))
            FileHandle.standardOutput.write(Data(payload))
            done += n
        }
    }
}

struct Fault: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Arm faults in a served drive: they wait for their commands, however long (replaces its fault plan; no options clear it).")
    @OptionGroup var array: ArrayDirectory
    @Argument(help: "Drive number.") var drive: Int
    @Option(help: "Delay the next N responses.") var delay: Int = 0
    @Option(help: "Receives each delayed response stays 'still processing'.") var delayPolls: Int = 3
    @Option(help: "Drop the next N responses.") var drop: Int = 0
    @Option(help: "With --drop: deliver this many responses normally first.") var dropAfter: Int = 0
    @Option(help: "Answer the next N StartSession calls with SP_BUSY.") var busy: Int = 0
    @Option(help: "Corrupt the next N responses.") var corrupt: Int = 0
    @Flag(help: "Crash the simulator halfway through saving the next state change.") var crash = false

    func run() throws {
        var plan = FaultPlan()
        plan.delayedResponses = delay
        plan.delayPolls = delayPolls
        plan.droppedResponses = drop
        plan.dropAfterResponses = dropAfter
        plan.busySessions = busy
        plan.corruptedResponses = corrupt
        plan.crashDuringNextCommand = crash
        let access = ArrayAccess(array.url)
        guard access.isServed else { fail("faults apply to a served array; start `sedsim serve \(array.directory)` first") }
        let payload = (try? JSONEncoder().encode(plan)).map(Array.init) ?? []
        _ = try access.request(LinkRequest(.setFaults, drive: drive, payload: payload))
        // The plan waits for its commands, however long: say so, so nobody forgets it is there.
        print(plan.isEmpty ? "drive \(drive): no fault armed (plan cleared)"
              : "drive \(drive): armed until used: " + plan.armed.joined(separator: "; "))
    }
}

/// Prints a message to stderr and exits with status 1.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("sedsim: \(message)\n".utf8))
    Foundation.exit(1)
}

/// Servers ignore SIGPIPE (a client may vanish) and stop on TERM/INT even when a parent spawned
/// them with those blocked (children of Swift programs inherit Dispatch's blocked signal mask).
func prepareSignalsForServing() {
    // A serving simulator holds drives' media keys and a key server's objects: no core dump, no
    // ptrace, no backtrace printing memory.
    _ = sedlock_disable_core_dumps()
    signal(SIGPIPE, SIG_IGN)
    var termination = sigset_t()
    sigemptyset(&termination)
    sigaddset(&termination, SIGTERM)
    sigaddset(&termination, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &termination, nil)
}
