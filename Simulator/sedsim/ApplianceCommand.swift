import ArgumentParser
import ControlSocket
import Foundation
import Platform
import SedSimulator
import SimulatorLink
#if canImport(Glibc)
import Glibc
#endif

/// A whole simulated appliance under one directory: its drives, the key servers it uses, the
/// lock manager's state and sedlockd — the embedded default for demos and test runs.
struct ApplianceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "appliance",
        abstract: "A simulated storage appliance: drives, key servers, boot unlock and sedlockd under one directory.",
        discussion: """
            Lay-out of DIR: drives/ (the array), kmip-ksN/ (each key server it runs), client/ (its client
            certificates), state/ (the lock manager's), sedlockd.toml, control.sock, logs/, run/ (pid files).
            Break a key server with `sedsim kmip admin --dir DIR/kmip-ks1 …` (distrust the appliance's CN,
            destroy or revoke the token, hang, refuse).
            """,
        subcommands: [ApplianceCreate.self, ApplianceStart.self, ApplianceReboot.self, ApplianceSteal.self,
                      ApplianceStop.self, ApplianceEnvironment.self])
}

struct ApplianceDirectory: ParsableArguments {
    @Argument(help: "The appliance's directory.") var directory: String
    var appliance: Appliance { Appliance(directory) }
}

struct ApplianceCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an appliance: drives, key servers, certificates, configuration.")
    @OptionGroup var location: ApplianceDirectory
    @Option(help: "Number of drives.") var drives: Int = 24
    @Option(help: "Interface: nvme, sas or sata.") var kind: DriveKind = .nvme
    @Option(help: "Capacity per drive (suffixes K, M, G, T).") var size: String = "256M"
    @Option(help: ArgumentHelp(SubsystemClasses.help, valueName: "class[,class…]"))
    var ssc = SubsystemClasses([.opal])
    @Option(help: "Simulated key servers this appliance runs itself (0…4).") var keyServers: Int = 2
    @Option(help: ArgumentHelp("A simulated key server shared with other appliances, run by somebody else: its directory and port.",
                               valueName: "KMIP_DIR@PORT"))
    var sharedKeyServer: [String] = []
    @Option(help: "CN of the appliance's client certificate (default: sedsim-appliance- and a random suffix).") var name: String?
    @Option(help: "Seconds between sedlockd's tests of the RDL token.") var tokenInterval: Int = 2
    @Option(help: "Seconds the boot unlock waits for keys it can verify.") var bootKeyWait: Int = 5

    func validate() throws {
        guard (1...256).contains(drives) else { throw ValidationError("--drives must be 1…256") }
        guard (0...4).contains(keyServers) else { throw ValidationError("--key-servers must be 0…4") }
        guard keyServers + sharedKeyServer.count <= 4 else { throw ValidationError("an appliance uses at most 4 key servers") }
        guard parseSize(size) != nil else { throw ValidationError("--size '\(size)' is not a size (e.g. 256M, 1G)") }
        guard (1...3600).contains(tokenInterval) else { throw ValidationError("--token-interval must be 1…3600 seconds") }
        guard (0...3600).contains(bootKeyWait) else { throw ValidationError("--boot-key-wait must be 0…3600 seconds") }
        for shared in sharedKeyServer where Self.parseShared(shared) == nil {
            throw ValidationError("--shared-key-server '\(shared)' is not KMIP_DIR@PORT")
        }
    }

    static func parseShared(_ text: String) -> (directory: String, port: UInt16)? {
        guard let at = text.lastIndex(of: "@"), let port = UInt16(text[text.index(after: at)...]), port > 0, at != text.startIndex else { return nil }
        return (URL(fileURLWithPath: String(text[..<at])).standardizedFileURL.path, port)
    }

    func run() throws {
        let appliance = location.appliance
        if FileManager.default.fileExists(atPath: appliance.manifestPath) {
            fail("\(appliance.root.path) holds an appliance already; choose a new directory")
        }
        // Unix socket paths hold at most 107 bytes; the array's is the longest of the appliance's.
        let longest = appliance.drives.appendingPathComponent(LinkPaths.socketName).path
        guard longest.utf8.count <= 107 else {
            fail("\(appliance.root.path) is too long a path: its sockets (\(longest)) would exceed 107 bytes; choose a shorter one")
        }
        let clientName = name ?? "sedsim-appliance-" + UUID().uuidString.prefix(8).lowercased()
        do {
            for directory in [appliance.root.path, appliance.runDirectory, appliance.logDirectory,
                              appliance.root.appendingPathComponent("client").path] {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                guard chmod(directory, 0o700) == 0 else { throw ApplianceError("cannot restrict \(directory) to its owner") }
            }
            var settings = DriveSettings()
            settings.ssc = ssc.uniform
            let spec = ArraySpecification(drives: drives, sizeBytes: parseSize(size) ?? 0, kind: kind, settings: settings,
                                          subsystemClasses: ssc.mix)
            try SimulatedArray.create(at: appliance.drives, specification: spec)
            var servers: [ApplianceManifest.KeyServer] = []
            for n in 0..<keyServers {
                let directory = appliance.root.appendingPathComponent("kmip-ks\(n + 1)")
                try KeyServerPKI.initialize(directory)
                servers.append(.init(name: "ks\(n + 1)", directory: directory.path, port: try Loopback.freePort(), managed: true))
            }
            for shared in sharedKeyServer.compactMap(Self.parseShared) {
                servers.append(.init(name: "ks\(servers.count + 1)", directory: shared.directory, port: shared.port, managed: false))
            }
            for server in servers {
                _ = try KeyServerPKI.issueClient(URL(fileURLWithPath: server.directory), commonName: clientName,
                                                 prefix: appliance.clientPrefix(server.name))
            }
            try appliance.writeConfiguration(tokenInterval: tokenInterval, bootKeyWait: bootKeyWait)
            try appliance.newBootID()
            try appliance.save(ApplianceManifest(drives: drives, kind: kind.rawValue, clientName: clientName, keyServers: servers))
            print("created appliance \(appliance.root.path): \(drives) \(kind.rawValue)\(ssc.summary) drive(s), client certificate CN \(clientName)")
            for server in servers {
                print("key server \(server.name): 127.0.0.1:\(server.port), directory \(server.directory)\(server.managed ? "" : " (shared: not started here)")")
            }
            print("next: sedsim appliance start \(appliance.root.path)")
        } catch {
            fail("\(error)")
        }
    }
}

/// The services of a running appliance, and the steps start and reboot share.
struct ApplianceRuntime {
    let appliance: Appliance
    let manifest: ApplianceManifest
    let binaries: URL

    init(_ appliance: Appliance) throws(ApplianceError) {
        self.appliance = appliance
        manifest = try appliance.loadManifest()
        // sedsim, sedlock and sedlockd are built and installed side by side.
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        binaries = URL(fileURLWithPath: me).deletingLastPathComponent()
        for tool in ["sedsim", "sedlock", "sedlockd"] where !FileManager.default.isExecutableFile(atPath: binaries.appendingPathComponent(tool).path) {
            throw ApplianceError("\(tool) is not beside sedsim in \(binaries.path); build or install the three together")
        }
    }

    func tool(_ name: String) -> String { binaries.appendingPathComponent(name).path }

    var arrayServed: Bool { ArrayAccess(appliance.drives).isServed }

    func startDrives() throws(ApplianceError) {
        guard appliance.running("drives") == nil else { return }
        _ = try appliance.launch("drives", tool("sedsim"), ["serve", appliance.drives.path]) { arrayServed }
    }

    func startKeyServers() throws(ApplianceError) {
        for server in manifest.keyServers where server.managed && appliance.running("kmip-\(server.name)") == nil {
            guard !Loopback.accepts(server.port) else {
                throw ApplianceError("port \(server.port) of key server \(server.name) is taken by another program; stop it and start again")
            }
            _ = try appliance.launch("kmip-\(server.name)", tool("sedsim"),
                                     ["kmip", "serve", "--dir", server.directory, "--port", "\(server.port)"]) { Loopback.accepts(server.port) }
        }
    }

    /// The key servers are added to the lock manager's state once, when they first answer.
    func addKeyServers() throws(ApplianceError) {
        guard !manifest.keyServersAdded else { return }
        for server in manifest.keyServers {
            let prefix = appliance.clientPrefix(server.name)
            let result = try runTool("sedlock", ["keyserver", "add", "127.0.0.1:\(server.port)", "--name", server.name,
                                                 "--cert", prefix + ".pem", "--key", prefix + ".key", "--ca", prefix + "-ca.pem",
                                                 "--direct", "--state-dir", appliance.stateDirectory])
            guard result.status == 0 else { throw ApplianceError("cannot add key server \(server.name): \(result.output)") }
        }
        var added = manifest
        added.keyServersAdded = true
        try appliance.save(added)
    }

    /// The boot service's unlock, as sedlock-unlock(-network).service runs it; its status line.
    func bootUnlock() throws(ApplianceError) -> String {
        let started = Date()
        let result = try runTool("sedlockd", ["boot-unlock", "--config", appliance.configurationPath, "--boot-id-file", appliance.bootIDPath])
        // 0 unlocked, 14 partial, 15 held or no keys: each an outcome to report, not a failure of the appliance.
        guard [0, 14, 15].contains(result.status) else {
            throw ApplianceError("the boot unlock failed (exit \(result.status)): \(result.output)")
        }
        let milliseconds = Int(Date().timeIntervalSince(started) * 1000)
        return "boot unlock: \(result.output.isEmpty ? "exit \(result.status)" : result.output) (\(milliseconds) ms)"
    }

    func startDaemon() throws(ApplianceError) -> pid_t {
        try appliance.launch("sedlockd", tool("sedlockd"),
                             ["serve", "--config", appliance.configurationPath, "--boot-id-file", appliance.bootIDPath]) {
            (try? StreamSocket.connect(path: appliance.controlSocket)) != nil
        }
    }

    /// Power cycles through the running array server, as `sedsim power-cycle` does (a failure ends the command).
    func powerCycle(_ drives: [Int]) throws {
        let access = ArrayAccess(appliance.drives)
        for n in drives { _ = try access.request(LinkRequest(.powerCycle, drive: n)) }
    }

    /// Runs one of the three tools to its end; its standard output (trimmed) and exit status.
    /// Standard error goes to logs/TOOL.log.
    private func runTool(_ name: String, _ arguments: [String]) throws(ApplianceError) -> (status: Int32, output: String) {
        let outputPath = appliance.runDirectory + "/\(name).out"
        let output = open(outputPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let log = open(appliance.logDirectory + "/\(name).log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer {
            if output >= 0 { close(output) }
            if log >= 0 { close(log) }
            unlink(outputPath)
        }
        guard output >= 0, log >= 0 else { throw ApplianceError("cannot open files in \(appliance.root.path): \(String(cString: strerror(errno)))") }
        let status: Int32
        do { status = try SpawnedProcess(tool(name), arguments, stdout: output, stderr: log).wait() } catch {
            throw ApplianceError("cannot run \(name): \(error)")
        }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let tail = (try? String(contentsOfFile: appliance.logDirectory + "/\(name).log", encoding: .utf8))?
            .split(separator: "\n").last.map(String.init) ?? ""
        let said = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return (status, status == 0 || !said.isEmpty ? said : tail)
    }

    func describe(daemon: pid_t) {
        print("sedlockd (pid \(daemon)) serves \(appliance.controlSocket)")
        print("export \(ControlClient.socketVariable)=\(appliance.controlSocket)")
    }
}

struct ApplianceStart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Power on: drives served, key servers up, boot unlock, sedlockd running.")
    @OptionGroup var location: ApplianceDirectory

    func run() throws {
        do {
            let runtime = try ApplianceRuntime(location.appliance)
            if let daemon = runtime.appliance.running("sedlockd") {
                fail("the appliance runs already (sedlockd pid \(daemon)); `sedsim appliance reboot` or `stop` it")
            }
            try runtime.startDrives()
            try runtime.startKeyServers()
            try runtime.addKeyServers()
            print(try runtime.bootUnlock())
            runtime.describe(daemon: try runtime.startDaemon())
        } catch {
            fail("\(error)")
        }
    }
}

struct ApplianceReboot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reboot", abstract: "Restart the appliance: sedlockd stops, every drive loses power, a new boot, boot unlock, sedlockd.")
    @OptionGroup var location: ApplianceDirectory
    @Flag(help: ArgumentHelp("The appliance's head replaced: its lock manager state is gone (the drives and key servers keep theirs). The key servers are added to the new, empty state; `sedlock recover` takes the array back."))
    var loseState = false

    func run() throws {
        do {
            var runtime = try ApplianceRuntime(location.appliance)
            guard runtime.appliance.running("drives") != nil else {
                fail("the appliance is not running; `sedsim appliance start \(runtime.appliance.root.path)`")
            }
            runtime.appliance.stop("sedlockd")
            try runtime.powerCycle(Array(0..<runtime.manifest.drives))
            try runtime.appliance.newBootID()
            if loseState {
                try? FileManager.default.removeItem(atPath: runtime.appliance.stateDirectory)
                var manifest = runtime.manifest
                manifest.keyServersAdded = false
                try runtime.appliance.save(manifest)
                runtime = try ApplianceRuntime(location.appliance)
                try runtime.addKeyServers()
                print("the lock manager's state is lost; the key servers are added to a new one: `sedlock recover --drives …` takes the array back")
            }
            print(try runtime.bootUnlock())
            runtime.describe(daemon: try runtime.startDaemon())
        } catch {
            fail("\(error)")
        }
    }
}

struct ApplianceSteal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steal",
        abstract: "A drive leaves the appliance: the thief's copy of it (media and firmware state) as a one-drive array in DIR2.",
        discussion: "The appliance keeps its drive so that its story can go on; the thief's copy is powered off, as a pulled drive is.")
    @OptionGroup var location: ApplianceDirectory
    @Option(help: "Which drive.") var drive: Int
    @Option(help: "Where the thief's one-drive array goes (a new directory).") var to: String

    func run() throws {
        do {
            let runtime = try ApplianceRuntime(location.appliance)
            guard (0..<runtime.manifest.drives).contains(drive) else {
                fail("the appliance has drives 0…\(runtime.manifest.drives - 1), not \(drive)")
            }
            if runtime.arrayServed { try runtime.powerCycle([drive]) }
            let destination = URL(fileURLWithPath: to).standardizedFileURL
            try SimulatedArray.copyDrive(drive, of: runtime.appliance.drives, to: destination)
            let report = try SimulatedArray(directory: destination).drive(0).statusReport(index: 0)
            let guarded = report.ranges.filter(\.readLockEnabled)
            let locked = guarded.filter(\.readLocked).count
            print("drive \(drive) (serial \(report.serial.trimmingCharacters(in: .whitespaces))) is now \(destination.path)/drive-0")
            print("the thief's view: \(report.owned ? "owned" : "not owned"), \(locked) of its \(guarded.count) locking range(s) locked; "
                  + "it opens only with its PINs (serve it: sedsim serve \(destination.path))")
        } catch {
            fail("\(error)")
        }
    }
}

struct ApplianceStop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop sedlockd, the array and the key servers the appliance runs.")
    @OptionGroup var location: ApplianceDirectory

    func run() throws {
        do {
            let appliance = location.appliance
            let manifest = try appliance.loadManifest()
            let services = ["sedlockd", "drives"] + manifest.keyServers.filter(\.managed).map { "kmip-\($0.name)" }
            let stopped = services.filter { appliance.stop($0) }
            print(stopped.isEmpty ? "nothing of \(appliance.root.path) was running" : "stopped " + stopped.joined(separator: ", "))
        } catch {
            fail("\(error)")
        }
    }
}

struct ApplianceEnvironment: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "env", abstract: "Print the environment that points sedlock at the appliance (for eval).")
    @OptionGroup var location: ApplianceDirectory

    func run() throws {
        let appliance = location.appliance
        do { _ = try appliance.loadManifest() } catch { fail("\(error)") }
        print("export \(ControlClient.socketVariable)=\(appliance.controlSocket)")
    }
}
