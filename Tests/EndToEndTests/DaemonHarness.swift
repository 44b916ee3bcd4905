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

    /// Starts sedlockd and waits until its socket answers; `environment` adds to what it inherits.
    func startDaemon(extra: [String] = [], environment: [String: String] = [:]) throws {
        let logFD = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer { close(logFD) }
        let process = try SpawnedProcess(Binaries.url("sedlockd").path,
                                         ["serve", "--config", configuration, "--state-dir", scratch + "/state",
                                          "--boot-id-file", scratch + "/boot_id", "--control-socket", socket] + extra,
                                         environment: environment, stdout: logFD, stderr: logFD)
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
        let connection = try StreamSocket.connect(path: socket)
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

/// A notify socket as systemd offers one ($NOTIFY_SOCKET): a datagram socket whose messages a
/// test reads, without touching its own process's environment.
final class NotifyListener: Sendable {
    let path = "/tmp/sedlock-notify-\(UUID().uuidString.prefix(8))"
    private let fd: Int32

    init() throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = try StreamSocket.address(path)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw HarnessError("cannot bind \(path)") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Every message received within `seconds`, with when it arrived.
    func timedMessages(seconds: Double) -> [(at: Date, message: String)] {
        var out: [(at: Date, message: String)] = []
        _ = messages(seconds: seconds) { message in
            out.append((Date(), message))
            return false
        }
        return out
    }

    /// Messages received until one satisfies `until` or `seconds` pass.
    func messages(seconds: Double = 15, until: (String) -> Bool) -> [String] {
        var out: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) == 1 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { continue }
            let message = String(decoding: buffer[0..<n], as: UTF8.self)
            out.append(message)
            if until(message) { break }
        }
        return out
    }
}
