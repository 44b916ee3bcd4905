import Foundation
import Platform
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// systemd 252 booted as PID 1 of new PID + mount namespaces (Tests/Systemd/boot.sh), with the
/// project's units from systemd/, the built binaries at /usr/local/bin, a simulated array at
/// /run/sedsim-array and optionally a simulated KMIP server at /run/sedsim-kmip. Its /tmp, /run,
/// /var/lib and /etc are private (see ../shared/reference/systemd-testing.md). Files it needs
/// live under .build/, never under the machine's /tmp.
final class SystemdNamespace {
    /// Whether this machine lets us create the namespaces (root with CAP_SYS_ADMIN, systemd 252 present).
    static let available: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/lib/systemd/systemd"),
              let probe = try? ProcessRunner.run("/usr/bin/unshare", ["--pid", "--fork", "--mount", "--mount-proc", "/bin/true"],
                                                 timeout: 20) else { return false }
        return probe.status == 0
    }()

    let work: String
    private var unshare: SpawnedProcess?
    private(set) var pid1: pid_t = 0
    var consoleLog: String { work + "/console.log" }
    let kmipPort: Int?

    /// Prepares the work directory: `drives` simulated drives, the units, an /etc overlay with
    /// `sedlockd.toml` and a `sedlock` group.
    init(drives: Int, configuration: String = "", kmip: Bool = false) throws {
        work = packageRoot.appendingPathComponent(".build/systemd-test-\(UUID().uuidString.prefix(8))").path
        for dir in ["", "/state", "/units", "/etc-upper/sedlock"] {
            try FileManager.default.createDirectory(atPath: work + dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        let created = try run("sedsim", ["create", work + "/array", "--drives", "\(drives)", "--size", "16M"])
        guard created.status == 0 else { throw HarnessError("sedsim create: \(created.stderr)") }
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: work + "/etc-upper/sedlock/sedlockd.toml"))
        var group = (try? String(contentsOfFile: "/etc/group", encoding: .utf8)) ?? ""
        if !group.contains("\nsedlock:") { group += "sedlock:x:977:\n" }
        try Data(group.utf8).write(to: URL(fileURLWithPath: work + "/etc-upper/group"))
        if kmip {
            let port = 20_000 + Int.random(in: 0..<20_000)
            kmipPort = port
            for step in [["kmip", "init", "--dir", work + "/kmip"],
                         ["kmip", "issue-client-cert", "--dir", work + "/kmip", "--cn", "sedlock-appliance", "--out", work + "/kmip/client"]] {
                let result = try run("sedsim", step)
                guard result.status == 0 else { throw HarnessError("sedsim \(step): \(result.stderr)") }
            }
        } else {
            kmipPort = nil
        }
        try installUnits()
    }

    deinit {
        shutdown()
        try? FileManager.default.removeItem(atPath: work)
    }

    /// The project's units and the test's own: the simulated array (and key server) before any
    /// unlock, a consumer of the drives, and the targets the tests start.
    private func installUnits() throws {
        let shipped = packageRoot.appendingPathComponent("systemd")
        for name in try FileManager.default.contentsOfDirectory(atPath: shipped.path) where name.hasSuffix(".service") || name.hasSuffix(".socket") {
            try FileManager.default.copyItem(atPath: shipped.appendingPathComponent(name).path, toPath: "\(work)/units/\(name)")
        }
        var units: [String: String] = [
            "sedsim-array.service": """
            [Unit]
            Description=simulated drives (test)
            DefaultDependencies=no
            Before=sedlock-unlock.service sedlock-unlock-network.service sedlockd.service
            [Service]
            ExecStart=/usr/local/bin/sedsim serve /run/sedsim-array
            ExecStartPost=/bin/sh -c 'i=0; until [ -S /run/sedsim-array/sedsim.sock ]; do i=$((i+1)); [ $i -gt 400 ] && exit 1; sleep 0.05; done'
            """,
            "drives-consumer.service": """
            [Unit]
            Description=something that needs the unlocked drives (test)
            DefaultDependencies=no
            After=sedlock-unlock.service sedlock-unlock-network.service
            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart=/usr/local/bin/sedsim read /run/sedsim-array 0 --lba 2048 --count 1
            """,
            "sedlock-boot-test.target": """
            [Unit]
            Description=the boot under test
            Wants=systemd-journald.socket sedsim-array.service sedlock-unlock.service sedlock-unlock-network.service drives-consumer.service
            After=systemd-journald.socket sedsim-array.service sedlock-unlock.service sedlock-unlock-network.service drives-consumer.service
            """,
            "sedlock-daemon-test.target": """
            [Unit]
            Description=the daemon under test
            Wants=systemd-journald.socket sedsim-array.service sedlockd.socket
            After=systemd-journald.socket sedsim-array.service sedlockd.socket
            """,
            "sedlock-base-test.target": """
            [Unit]
            Description=simulated hardware only
            Wants=systemd-journald.socket sedsim-array.service
            After=systemd-journald.socket sedsim-array.service
            """,
        ]
        if let kmipPort {
            units["sedsim-kmip.service"] = """
            [Unit]
            Description=simulated KMIP key server (test)
            DefaultDependencies=no
            Before=sedlock-unlock-network.service sedlockd.service
            [Service]
            ExecStart=/usr/local/bin/sedsim kmip serve --dir /run/sedsim-kmip --port \(kmipPort)
            ExecStartPost=/bin/bash -c 'i=0; until echo > /dev/tcp/127.0.0.1/\(kmipPort); do i=$((i+1)); [ $i -gt 400 ] && exit 1; sleep 0.05; done 2>/dev/null'
            """
            // A target's start job ends once the units it is After= have started: it waits for all it wants.
            for target in ["sedlock-boot-test.target", "sedlock-daemon-test.target", "sedlock-base-test.target"] {
                units[target] = units[target]?.replacingOccurrences(of: "sedsim-array.service", with: "sedsim-array.service sedsim-kmip.service")
            }
        }
        for (name, text) in units { try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: "\(work)/units/\(name)")) }
    }

    /// Adds a drop-in to a unit (before boot).
    func dropIn(_ unit: String, _ text: String) throws {
        let dir = "\(work)/units/\(unit).d"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/test.conf"))
    }

    /// Boots with `target` and waits until startup has finished.
    func boot(_ target: String = "sedlock-base-test.target") throws {
        let log = open(consoleLog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(log) }
        let script = packageRoot.appendingPathComponent("Tests/Systemd/boot.sh").path
        let process = try SpawnedProcess("/usr/bin/unshare", ["--pid", "--fork", "--mount", "--mount-proc", "/bin/sh", script,
                                                              work, Binaries.directory.path, target],
                                         stdout: log, stderr: log)
        unshare = process
        // PID 1 of the namespace is unshare's child.
        let deadline = Date().addingTimeInterval(20)
        while pid1 == 0 && Date() < deadline {
            if let children = try? String(contentsOfFile: "/proc/\(process.pid)/task/\(process.pid)/children", encoding: .utf8),
               let child = children.split(separator: " ").first.flatMap({ pid_t($0) }) {
                pid1 = child
            } else {
                usleep(20_000)
            }
        }
        guard pid1 != 0 else { throw HarnessError("no PID 1 appeared: \(console)") }
        let running = waitFor(seconds: 60) {
            guard process.isRunning else { return true }
            let state = (try? inside(["systemctl", "is-system-running"]))?.output ?? ""
            return state.hasPrefix("running") || state.hasPrefix("degraded")
        }
        guard running, process.isRunning else { throw HarnessError("systemd did not finish starting: \(console)") }
    }

    var console: String { (try? String(contentsOfFile: consoleLog, encoding: .utf8)) ?? "" }

    /// Runs a command inside the namespaces.
    @discardableResult
    func inside(_ command: [String], timeout: Double = 120) throws -> ProcessResult {
        try ProcessRunner.run("/usr/bin/nsenter", ["-t", "\(pid1)", "-m", "-p"] + command, timeout: timeout)
    }

    /// `systemctl show -p NAME` values of a unit.
    func show(_ unit: String, _ properties: [String]) throws -> [String: String] {
        let result = try inside(["systemctl", "show", unit] + properties.flatMap { ["-p", $0] })
        var values: [String: String] = [:]
        for line in result.output.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }

    /// Ends the namespace: SIGKILL to its PID 1 ends every process in it.
    func shutdown() {
        if pid1 != 0 { kill(pid1, SIGKILL) }
        unshare?.wait()
        unshare = nil
        pid1 = 0
    }
}
