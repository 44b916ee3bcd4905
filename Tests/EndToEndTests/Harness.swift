import Platform
import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Locates the built `sedlock` and `sedsim` executables.
enum Binaries {
    static let directory = URL(fileURLWithPath: builtExecutable(""))

    static func url(_ name: String) -> URL {
        // An absolute path names a system tool (sg_inq, nvme) rather than one of ours.
        name.hasPrefix("/") ? URL(fileURLWithPath: name) : directory.appendingPathComponent(name)
    }

    /// The preload library that shows simulated drives as device nodes.
    static var preloadLibrary: String { directory.appendingPathComponent("libsedsim-preload.so").path }

    /// A system tool installed by scripts/setup (sg3-utils, nvme-cli), by name.
    static func systemTool(_ name: String) -> String? {
        ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/usr/local/sbin"]
            .map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

typealias CommandResult = ProcessResult

/// Runs one of our tools (or a system tool by absolute path) to completion, killed after `timeout` seconds.
@discardableResult
func run(_ tool: String, _ arguments: [String], stdin: Data? = nil, timeout: Double = 60,
         environment: [String: String] = [:]) throws -> CommandResult {
    try ProcessRunner.run(Binaries.url(tool).path, arguments, stdin: stdin, timeout: timeout, environment: environment)
}

/// A simulated array served by a real `sedsim serve` process for the duration of a test.
final class ServedArray {
    let directory: String
    private(set) var server: SpawnedProcess?

    init(drives: Int = 1, extra: [String] = []) throws {
        // Short path: Unix socket paths are limited to 107 bytes.
        directory = "/tmp/sedlock-e2e-\(UUID().uuidString.prefix(8))"
        let created = try run("sedsim", ["create", directory, "--drives", "\(drives)", "--size", "16M"] + extra)
        guard created.status == 0 else { throw HarnessError("sedsim create failed: \(created.stderr)") }
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func start() throws {
        let process = try SpawnedProcess(Binaries.url("sedsim").path, ["serve", directory])
        server = process
        // Ready once the socket accepts.
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if Self.canConnect("\(directory)/sedsim.sock") { return }
            if !process.isRunning { throw HarnessError("sedsim serve exited with \(process.terminationStatus ?? -1)") }
            usleep(20_000)
        }
        throw HarnessError("sedsim serve did not start listening")
    }

    func stop() {
        server?.stop()
        server = nil
    }

    /// Waits for the server to exit by itself (after an injected crash).
    func waitForExit(timeout: Double = 10) -> Int32? {
        guard let server else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while server.isRunning && Date() < deadline { usleep(20_000) }
        return server.terminationStatus
    }

    func device(_ n: Int = 0) -> String { "sim:\(directory)/\(n)" }

    /// The environment that makes `nodes[i]` (a /dev path) show drive i to any program.
    func preloadEnvironment(_ nodes: [String]) -> [String: String] {
        ["LD_PRELOAD": Binaries.preloadLibrary,
         "SEDSIM_DEVICES": nodes.enumerated().map { "\($0.element)=\(directory)/\($0.offset)" }.joined(separator: ",")]
    }

    static func canConnect(_ path: String) -> Bool {
        (try? StreamSocket.connect(path: path)) != nil
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes a PIN file readable only by the owner.
func pinFile(_ pin: String) throws -> String {
    let path = "/tmp/sedlock-pin-\(UUID().uuidString.prefix(8))"
    FileManager.default.createFile(atPath: path, contents: Data((pin + "\n").utf8), attributes: [.posixPermissions: 0o600])
    return path
}

/// Polls `condition` for up to `seconds`.
func waitFor(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}
