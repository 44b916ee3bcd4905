import ArgumentParser
import CommandLineSupport
import ControlAPI
import ControlSocket
import Foundation
import Keys
import LockManager
import Logging
import Platform
import ServiceLifecycle
import SimulatorTransport
import Synchronization
import Systemd
import UnixSignals

@main
struct Sedlockd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sedlockd",
        abstract: "The sedlock daemon: the array's lock manager behind a control socket, its monitors, and the boot unlock.",
        version: SedlockVersion.number,
        subcommands: [Serve.self, BootUnlock.self, CheckConfig.self, Reload.self],
        defaultSubcommand: Serve.self)
}

/// Options the daemon and the boot unlock share.
struct DaemonOptions: ParsableArguments {
    @Option(help: "Configuration file (default: /etc/sedlock/sedlockd.toml; absent means every default).") var config: String?
    @Option(help: "State directory (overrides the configuration; default: $STATE_DIRECTORY, else /var/lib/sedlock).") var stateDir: String?
    @Option(help: ArgumentHelp("File holding this boot's id (default: the kernel's); for simulated reboots.",
                               visibility: .hidden)) var bootIdFile: String?

    func load() throws -> DaemonConfiguration {
        do {
            var configuration = try DaemonConfiguration.load(path: config)
            if let stateDir { configuration.stateDirectory = stateDir }
            return configuration
        } catch {
            throw DaemonFailure("configuration: \(error)", status: 78)  // EX_CONFIG
        }
    }
}

struct DaemonFailure: Error, CustomStringConvertible {
    let description: String
    let status: Int32
    init(_ description: String, status: Int32) {
        self.description = description
        self.status = status
    }
}

/// Logs to the journal under systemd, to standard error elsewhere.
func bootstrapLogging(identifier: String) {
    let sink: any JournalSink = SystemJournal.isConnected ? SystemJournal() : StandardErrorSink()
    LoggingSystem.bootstrap { _ in JournalLogHandler(identifier: identifier, sink: sink) }
}

/// Ends the process with the failure's status after saying why on standard error.
func exiting(_ body: () async throws -> Void) async -> Never {
    do {
        try await body()
        exit(0)
    } catch let failure as DaemonFailure {
        FileHandle.standardError.write(Data("sedlockd: \(failure.description)\n".utf8))
        exit(failure.status)
    } catch {
        FileHandle.standardError.write(Data("sedlockd: \(error)\n".utf8))
        exit(1)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the daemon (the default): control socket, work loop, monitors, watchdog; SIGHUP reloads, SIGTERM stops.")
    @OptionGroup var options: DaemonOptions
    @Option(help: "Control socket path when not socket-activated (overrides the configuration).") var controlSocket: String?
    @Option(help: "Keep Prometheus metrics in this file for node_exporter's textfile collector (overrides [metrics] file).")
    var metricsFile: String?
    @Option(help: ArgumentHelp("Test-only fault: while this file exists the work loop takes no jobs (also $SEDLOCKD_TEST_HANG_FILE).",
                               visibility: .hidden))
    var testHangFile: String?

    func run() async throws {
        await exiting {
            // Keys and PINs pass through this process: no core dumps, no ptrace by others.
            disableCoreDumps()
            ProcessMemory.limitArenas()
            let configuration = try loadConfiguration()
            bootstrapLogging(identifier: "sedlockd")
            let logger = Logger(label: "sedlockd")
            let serviceManager = ServiceManager()

            // Reads answer from the monitors' latest results: no reader ever opens a key-server connection.
            var managerConfiguration = configuration.managerConfiguration(bootIDPath: options.bootIdFile)
            managerConfiguration.readsFromMonitors = true
            let manager = LockManager(configuration: managerConfiguration, factory: .withSimulator)
            do throws(ControlError) { try manager.holdState() } catch {
                throw DaemonFailure("cannot load the state: \(error.description)", status: 1)
            }
            defer { manager.releaseState() }

            // SIGHUP is trapped before anything can announce READY: systemd (or a test) may reload at once,
            // and the signal's default action would end the daemon.
            let reloadSignals = await UnixSignalsSequence(trapping: .sighup)
            let (listener, boundPath) = try controlListener(configuration, serviceManager: serviceManager, logger: logger)
            // Threads of their own for each kind of work, so that none can take another's: state
            // changes (and the watchdog's heartbeat through them), the monitors' probes, root's
            // requests, and the readers' requests.
            let workThreads = BlockingExecutor(threads: 4, name: "sedlockd-work")
            let monitorThreads = BlockingExecutor(threads: 2, name: "sedlockd-monitors")
            let rootThreads = BlockingExecutor(threads: 2, name: "sedlockd-root")
            let readerThreads = BlockingExecutor(threads: 4, name: "sedlockd-readers")
            let loop = WorkLoop(executor: workThreads,
                                hangFile: testHangFile ?? ProcessInfo.processInfo.environment["SEDLOCKD_TEST_HANG_FILE"])
            let events = DaemonEvents(logger: logger)
            let statusLine = StatusLine()
            let settings = LiveConfiguration(configuration)
            let metrics = MetricsExporter(file: configuration.metricsFile)
            let reloader = ConfigurationReloader(load: loadConfiguration, source: options.config ?? DaemonConfiguration.defaultPath,
                                                 bootIDPath: options.bootIdFile, manager: manager, settings: settings,
                                                 statusLine: statusLine, serviceManager: serviceManager, logger: logger)
            let server = ControlServer(listener: listener, policy: AccessPolicy(readerGroupName: configuration.readerGroup),
                                       limits: configuration.serverLimits, logger: logger, executor: readerThreads,
                                       privilegedExecutor: rootThreads) { request, peer, progress in
                // Each drive as it finishes: to the client ahead of the reply, and into STATUS=.
                let reporting: @Sendable (DriveProgress) -> Void = { update in
                    progress(update)
                    serviceManager.status(update.summary)
                }
                let response = await Self.answer(request, peer: peer, manager: manager, loop: loop, reloader: reloader, events: events,
                                                 progress: reporting)
                if request.changesState {
                    if case .array(let report) = response { statusLine.applied(report) }
                    serviceManager.status(statusLine.text)
                }
                return response
            }

            // The keytable, loaded beside serving (never before it): lock and unlock on demand keep
            // working while a key server (or, under RDL, the token) is away, until the next restart.
            var services: [any Service] = [loop,
                                           KeytableService(manager: manager, executor: BlockingExecutor(threads: 1, name: "sedlockd-keys"),
                                                           logger: logger),
                                           ControlService(server: server, boundPath: boundPath, serviceManager: serviceManager,
                                                          statusLine: statusLine, logger: logger),
                                           MonitorService(manager: manager, settings: settings, statusLine: statusLine,
                                                          events: events, serviceManager: serviceManager, executor: monitorThreads,
                                                          loop: loop, metrics: metrics),
                                           ReloadService(signals: reloadSignals, reloader: reloader)]
            if let address = configuration.metricsListen {
                services.append(MetricsEndpoint(exporter: metrics, address: address, logger: logger))
            }
            if let interval = serviceManager.watchdogInterval {
                services.append(WatchdogService(interval: interval, loop: loop,
                                                workLimit: .milliseconds(Int64(configuration.workLimit * 1000)),
                                                serviceManager: serviceManager, logger: logger))
            }
            var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                               logger: logger)
            groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(Int64(configuration.stopWait * 1000))
            let group = ServiceGroup(configuration: groupConfiguration)
            try await group.run()
        }
    }

    /// The file with the command line's overrides on top (a reload reads it the same way).
    func loadConfiguration() throws -> DaemonConfiguration {
        var configuration = try options.load()
        if let controlSocket { configuration.controlSocket = controlSocket }
        if let metricsFile { configuration.metricsFile = metricsFile }
        return configuration
    }

    /// The control socket: handed over by systemd (socket activation), or bound here.
    private func controlListener(_ configuration: DaemonConfiguration, serviceManager: ServiceManager,
                                 logger: Logger) throws -> (StreamSocket, String?) {
        if let fd = serviceManager.listenDescriptors().first {
            logger.info("control socket from socket activation (fd \(fd))")
            return (StreamSocket(adopting: fd), nil)
        }
        let path = configuration.controlSocket
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o755])
        do {
            let listener = try StreamSocket.listen(path: path, mode: 0o660)
            // Members of the reader group may connect; the policy then decides what each may do.
            if let group = getgrnam(configuration.readerGroup) { _ = chown(path, 0, group.pointee.gr_gid) }
            return (listener, path)
        } catch {
            throw DaemonFailure("cannot serve the control socket at \(path): \(error)", status: 1)
        }
    }

    /// One request: state changes through the work loop, one at a time; reads beside it. Both
    /// run on the daemon's own threads (the server's executor), never Swift's cooperative pool.
    static func answer(_ request: ControlRequest, peer: StreamSocket.PeerCredentials, manager: LockManager, loop: WorkLoop,
                       reloader: ConfigurationReloader, events: DaemonEvents,
                       progress: @escaping @Sendable (DriveProgress) -> Void = { _ in }) async -> ControlResponse {
        let requester = "uid \(peer.uid) (pid \(peer.pid)) via control socket"
        if request.needsSecret {
            return .failure(ControlError(.badRequest, "this request needs a secret (a drive password or a PSID), and secrets never cross the control socket",
                                         fix: "stop sedlockd (`systemctl stop sedlockd.socket sedlockd.service`), run the command with --direct, then start it again"))
        }
        if case .reload = request {
            // Beside the work loop: a reload applies to requests that start later, and must not
            // wait behind a long rekey (systemctl reload would time out).
            let response: ControlResponse
            do throws(ControlError) { response = .reloaded(try reloader.reload()) } catch { response = .failure(error) }
            events.answered(request, response, requester: requester)
            return response
        }
        let work: @Sendable () async -> ControlResponse = {
            await LockManager.$progress.withValue(ProgressReporter(progress)) {
                await LockManager.$requester.withValue(requester) { await manager.respond(to: request) }
            }
        }
        let response: ControlResponse
        if request.changesState {
            response = await loop.perform(work)
                ?? .failure(ControlError(.unreachable, "sedlockd is stopping", fix: "try again once it has restarted"))
        } else {
            response = await work()  // already on the daemon's executor (ControlServer runs handlers there)
        }
        events.answered(request, response, requester: requester)
        if case .rekey = request, case .array(let report) = response, report.allSucceeded,
           let keys = try? manager.keysList(), let active = keys.keys.first(where: { $0.state == "active" }) {
            events.rekeyed(toKeyID: active.keyID)
        }
        return response
    }
}

/// `systemctl reload` (ExecReload=): asks the serving daemon to reload and returns once it has,
/// with its answer. A SIGHUP alone would return before the daemon read the file, and a file that
/// does not validate would still "reload" successfully.
struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Make the serving sedlockd read its configuration again; exit 0 once applied, 78 if it does not validate.")
    @Option(help: "sedlockd's control socket (default: $SEDLOCK_CONTROL_SOCKET, else \(ControlClient.defaultSocketPath)).")
    var controlSocket: String?
    @Option(help: "Seconds to wait for the daemon's answer.") var replyTimeout: Double = 30

    func validate() throws {
        guard replyTimeout > 0 && replyTimeout <= 600 else { throw ValidationError("--reply-timeout must be between 0 and 600 seconds") }
    }

    func run() async throws {
        await exiting {
            let response: ControlResponse
            do throws(ControlError) {
                let client = try ControlClient(path: controlSocket ?? ControlClient.socketPathFromEnvironment)
                response = try client.send(.reload, timeout: replyTimeout)
            } catch {
                throw DaemonFailure(error.description, status: 69)  // EX_UNAVAILABLE
            }
            switch response {
            case .reloaded(let report):
                print("sedlockd reloaded \(report.source)")
                if !report.pendingRestart.isEmpty {
                    print("applies on restart only: \(report.pendingRestart.joined(separator: ", "))")
                }
            case .failure(let error):
                throw DaemonFailure(error.description, status: error.code == .badRequest ? 78 : 1)
            default:
                throw DaemonFailure("sedlockd answered the reload with something else; is it the same version?", status: 1)
            }
        }
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a configuration file: every key known, every value in range.")
    @Argument(help: "The file (default: /etc/sedlock/sedlockd.toml).") var file: String?
    @Option(help: "The file, as `serve --config` names it (the same as the argument).") var config: String?

    func validate() throws {
        if file != nil && config != nil { throw ValidationError("name the file once: as the argument or with --config") }
    }

    func run() async throws {
        let path = file ?? config
        await exiting {
            if path == nil && !FileManager.default.fileExists(atPath: DaemonConfiguration.defaultPath) {
                print("no \(DaemonConfiguration.defaultPath): every default applies")
                return
            }
            let configuration: DaemonConfiguration
            do { configuration = try DaemonConfiguration.load(path: path ?? DaemonConfiguration.defaultPath) } catch {
                throw DaemonFailure("\(error)", status: 78)
            }
            print("\(path ?? DaemonConfiguration.defaultPath): valid")
            print("state directory \(configuration.stateDirectory ?? "(default)"), control socket \(configuration.controlSocket) (group \(configuration.readerGroup))")
            print("monitors: drives every \(configuration.driveInterval) s, key servers every \(configuration.keyServerInterval) s, certificates every \(configuration.certificateInterval) s")
            print("metrics: file \(configuration.metricsFile ?? "none"), endpoint \(configuration.metricsListen.map { "http://\($0.description)/metrics" } ?? "none")")
            print("guards: lockout after \(configuration.lockoutLimit), try-limit margin \(configuration.tryLimitMargin), boot-loop hold after \(configuration.bootLoopLimit)")
        }
    }
}
