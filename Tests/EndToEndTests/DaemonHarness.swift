import Foundation
import Platform
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A simulated array set up by `sedlock setup --direct`, and a real `sedlockd serve` over its
/// state, with its control socket, configuration and boot id in a scratch directory.
final class DaemonFixture {
    let array: ServedArray
    let scratch: String
    var socket: String { scratch + "/control.sock" }
    var configuration: String { scratch + "/sedlockd.toml" }
    var log: String { scratch + "/sedlockd.log" }
    private(set) var daemon: SpawnedProcess?
    var drives: [String] { (0..<driveCount).map { array.device($0) } }
    let driveCount: Int

    /// `--direct` options for maintenance commands on the same state.
    var direct: [String] { ["--direct", "--state-dir", scratch + "/state", "--boot-id-file", scratch + "/boot_id"] }
    var viaSocket: [String] { ["--control-socket", socket] }

    init(drives: Int, configuration text: String = "") throws {
        driveCount = drives
        array = try ServedArray(drives: drives)
        scratch = "/tmp/sedlockd-e2e-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        try newBoot()
        try Data(text.utf8).write(to: URL(fileURLWithPath: configuration))
        let setup = try run("sedlock", ["setup", "--drives"] + self.drives + ["--key-tag", "daemon-e2e"] + direct)
        guard setup.status == 0 else { throw HarnessError("setup failed: \(setup.stderr)") }
    }

    deinit {
        stopDaemon()
        try? FileManager.default.removeItem(atPath: scratch)
    }

    func newBoot() throws {
        try Data((UUID().uuidString + "\n").utf8).write(to: URL(fileURLWithPath: scratch + "/boot_id"))
    }

    /// Starts sedlockd and waits until its socket answers.
    func startDaemon(extra: [String] = []) throws {
        let logFD = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer { close(logFD) }
        let process = try SpawnedProcess(Binaries.url("sedlockd").path,
                                         ["serve", "--config", configuration, "--state-dir", scratch + "/state",
                                          "--boot-id-file", scratch + "/boot_id", "--control-socket", socket] + extra,
                                         stdout: logFD, stderr: logFD)
        daemon = process
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if ServedArray.canConnect(socket) { return }
            if !process.isRunning { throw HarnessError("sedlockd exited with \(process.terminationStatus ?? -1): \(logText)") }
            usleep(20_000)
        }
        throw HarnessError("sedlockd did not start serving: \(logText)")
    }

    func stopDaemon() {
        daemon?.stop()
        daemon = nil
    }

    /// SIGKILL, as a crash would.
    func killDaemon() {
        if let daemon { kill(daemon.pid, SIGKILL); daemon.wait() }
        daemon = nil
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Sends raw bytes on a new connection and returns every reply line until the daemon closes
    /// it or `timeout` passes.
    func raw(_ bytes: [UInt8], timeout: Double = 15) throws -> [String] {
        try Self.raw(socket: socket, bytes, timeout: timeout)
    }

    static func raw(socket: String, _ bytes: [UInt8], timeout: Double = 15) throws -> [String] {
        let connection = try UnixSocket.connect(path: socket)
        try connection.send(bytes, deadline: .after(seconds: timeout))
        shutdown(connection.fd, Int32(SHUT_WR))
        var received: [UInt8] = []
        let deadline = Deadline.after(seconds: timeout)
        while let chunk = try? connection.receiveSome(limit: 65_536, deadline: deadline), !chunk.isEmpty {
            received += chunk
        }
        return String(decoding: received, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
