import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a finished process left behind.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: Data
    public var stderr: String
    public var output: String { String(decoding: stdout, as: UTF8.self) }
}

/// A command that failed, with everything it printed.
public struct ProcessFailure: Error, CustomStringConvertible {
    public let description: String
}

/// The one way tests start processes: both output pipes drained at once (a chatty stderr cannot
/// block the child), standard input written and closed, and a kill after `timeout` seconds so a
/// hang fails the test instead of CI.
public enum ProcessRunner {
    public static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil, timeout: Double = 60,
                           environment: [String: String] = [:]) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        let errorReader = DispatchGroup()
        nonisolated(unsafe) var stderrData = Data()
        DispatchQueue.global().async(group: errorReader) { stderrData = err.fileHandleForReading.readDataToEndOfFile() }
        // A child that exits before reading all of its input must not take the test process down
        // with SIGPIPE: the write then fails quietly (the child's result says what happened).
        signal(SIGPIPE, SIG_IGN)
        if let stdin { try? input.fileHandleForWriting.write(contentsOf: stdin) }
        try? input.fileHandleForWriting.close()
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        errorReader.wait()
        process.waitUntilExit()
        killer.cancel()
        return ProcessResult(status: process.terminationStatus, stdout: stdoutData,
                             stderr: String(decoding: stderrData, as: UTF8.self))
    }

    /// Runs `command` with bash; returns its combined output, or throws with it when it fails.
    @discardableResult
    public static func shell(_ command: String, timeout: Double = 300) throws -> String {
        let result = try run("/bin/bash", ["-c", command + " 2>&1"], timeout: timeout)
        guard result.status == 0 else { throw ProcessFailure(description: "`\(command)` failed: \(result.output)") }
        return result.output
    }
}

/// The package root (Tests/TestSupport/ is two levels below it).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A built executable of this package: from SEDLOCK_BIN_DIR (scripts/test sets it), else .build/debug.
public func builtExecutable(_ name: String) -> String {
    if let dir = ProcessInfo.processInfo.environment["SEDLOCK_BIN_DIR"] { return dir + "/" + name }
    return packageRoot.appendingPathComponent(".build/debug/" + name).path
}
