import Foundation
import Platform
import SedSimulator
import SimulatorLink
#if canImport(Glibc)
import Glibc
#endif

/// What `sedsim appliance create` decided, kept in DIR/appliance.json.
struct ApplianceManifest: Codable {
    struct KeyServer: Codable {
        var name: String
        /// The simulated key server's directory (its CA, objects and admin controls).
        var directory: String
        var port: UInt16
        /// Started and stopped with the appliance; false for a server shared by several appliances.
        var managed: Bool
    }

    var drives: Int
    var kind: String
    /// CN of the appliance's client certificate on every key server: what `sedsim kmip admin
    /// --distrust` names to revoke the appliance's trust.
    var clientName: String
    var keyServers: [KeyServer]
    /// Whether the key servers have been added to the lock manager's state (at the first start,
    /// when they answer).
    var keyServersAdded = false
}

/// Where everything of one appliance lives under its directory, and its processes: the array
/// server, the key servers it runs, and sedlockd — each detached, with a pid file and a log.
struct Appliance {
    let root: URL

    init(_ path: String) { root = URL(fileURLWithPath: path).standardizedFileURL }

    var manifestPath: String { root.appendingPathComponent("appliance.json").path }
    var drives: URL { root.appendingPathComponent("drives") }
    var stateDirectory: String { root.appendingPathComponent("state").path }
    var controlSocket: String { root.appendingPathComponent("control.sock").path }
    var configurationPath: String { root.appendingPathComponent("sedlockd.toml").path }
    var bootIDPath: String { root.appendingPathComponent("boot_id").path }
    /// sedlockd's Prometheus metrics (node_exporter textfile format).
    var metricsPath: String { root.appendingPathComponent("metrics.prom").path }
    var runDirectory: String { root.appendingPathComponent("run").path }
    var logDirectory: String { root.appendingPathComponent("logs").path }
    func clientPrefix(_ server: String) -> String { root.appendingPathComponent("client/\(server)").path }

    func loadManifest() throws(ApplianceError) -> ApplianceManifest {
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw ApplianceError("\(root.path) is not an appliance (no appliance.json); create one with `sedsim appliance create`")
        }
        do { return try JSONDecoder().decode(ApplianceManifest.self, from: data) } catch {
            throw ApplianceError("\(manifestPath) is not readable: \(error)")
        }
    }

    func save(_ manifest: ApplianceManifest) throws(ApplianceError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try AtomicFile.write(Array(try encoder.encode(manifest)), to: manifestPath, mode: 0o600) } catch {
            throw ApplianceError("cannot write \(manifestPath): \(error)")
        }
    }

    /// sedlockd's configuration: the appliance's own state, socket and short monitor intervals,
    /// so that a demo sees faults within seconds.
    func writeConfiguration(tokenInterval: Int, bootKeyWait: Int) throws(ApplianceError) {
        let text = """
            # Written by `sedsim appliance create`.
            state_directory = "\(stateDirectory)"

            [control]
            socket = "\(controlSocket)"

            [monitors]
            key_servers_interval = 10
            drives_interval = 10
            certificates_interval = 60

            [rdl]
            token_interval = \(tokenInterval)

            [deadlines]
            boot_key_wait = \(bootKeyWait)

            [metrics]
            file = "\(metricsPath)"

            """
        do { try AtomicFile.write(Array(text.utf8), to: configurationPath, mode: 0o600) } catch {
            throw ApplianceError("cannot write \(configurationPath): \(error)")
        }
    }

    func newBootID() throws(ApplianceError) {
        do { try AtomicFile.write(Array((UUID().uuidString.lowercased() + "\n").utf8), to: bootIDPath, mode: 0o600) } catch {
            throw ApplianceError("cannot write \(bootIDPath): \(error)")
        }
    }

    // MARK: processes

    /// The pid of `service` while it runs. The pid file alone is not trusted: the process must
    /// still be alive and name this appliance's directory on its command line (pids are reused).
    func running(_ service: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: pidFile(service), encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
              let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
              String(decoding: commandLine, as: UTF8.self).contains(root.path),
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let state = stat.split(separator: ")").last?.split(separator: " ").first, state != "Z" else { return nil }
        return pid
    }

    /// Starts `service` detached, its output appended to logs/SERVICE.log, and waits until
    /// `ready` holds (or the process dies: then its log's end is the error).
    func launch(_ service: String, _ executable: String, _ arguments: [String], readyWithin seconds: Double = 15,
                ready: () -> Bool) throws(ApplianceError) -> pid_t {
        let logPath = logDirectory + "/\(service).log"
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw ApplianceError("cannot open \(logPath): \(String(cString: strerror(errno)))") }
        defer { close(log) }
        let pid: pid_t
        do { pid = try SpawnedProcess.launchDetached(executable, arguments, stdout: log, stderr: log) } catch {
            throw ApplianceError("cannot start \(service): \(error)")
        }
        do { try AtomicFile.write(Array("\(pid)\n".utf8), to: pidFile(service), mode: 0o600) } catch {
            kill(pid, SIGTERM)
            throw ApplianceError("cannot write \(pidFile(service)): \(error)")
        }
        let deadline = Date().addingTimeInterval(seconds)
        while !ready() {
            guard running(service) != nil else {
                throw ApplianceError("\(service) ended at start: \(tail(of: logPath))")
            }
            guard Date() < deadline else {
                throw ApplianceError("\(service) did not become ready within \(Int(seconds)) s: \(tail(of: logPath))")
            }
            usleep(20_000)
        }
        return pid
    }

    /// SIGTERM, then SIGKILL if it has not ended after `grace` seconds. True when it was running.
    @discardableResult
    func stop(_ service: String, grace: Double = 10) -> Bool {
        guard let pid = running(service) else {
            try? FileManager.default.removeItem(atPath: pidFile(service))
            return false
        }
        kill(pid, SIGTERM)
        Self.waitUntilEnded(pid, seconds: grace)
        // Still this appliance's process (not a pid reused meanwhile): it ignored SIGTERM.
        if running(service) != nil {
            kill(pid, SIGKILL)
            Self.waitUntilEnded(pid, seconds: 10)
        }
        try? FileManager.default.removeItem(atPath: pidFile(service))
        return true
    }

    /// Waits until `pid` has exited (gone or a zombie), at most `seconds`. Its command line
    /// empties while it exits, so "no longer this appliance's process" comes before "ended".
    static func waitUntilEnded(_ pid: pid_t, seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if kill(pid, 0) != 0 { return }
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
               stat.split(separator: ")").last?.split(separator: " ").first == "Z" { return }
            usleep(20_000)
        }
    }

    private func pidFile(_ service: String) -> String { runDirectory + "/\(service).pid" }

    private func tail(of path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n").suffix(3).joined(separator: " | ")
        return lines.isEmpty ? "(nothing in \(path))" : lines + " (see \(path))"
    }
}

struct ApplianceError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Loopback TCP, for the key servers' ports.
enum Loopback {
    /// A port nobody listens on now (the kernel's choice for a bind to port 0).
    static func freePort() throws(ApplianceError) -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ApplianceError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw ApplianceError("cannot pick a free loopback port: \(String(cString: strerror(errno)))") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Whether something accepts connections on 127.0.0.1:`port`.
    static func accepts(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

private extension sockaddr_in {
    init(port: UInt16) {
        self.init()
        sin_family = sa_family_t(AF_INET)
        sin_port = port.bigEndian
        sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
    }
}
