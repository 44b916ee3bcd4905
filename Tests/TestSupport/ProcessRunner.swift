import Platform
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
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0], errors: [Int32] = [0, 0]
        // Children start through SpawnedProcess, which closes every descriptor above 2: no race
        // between pipe() and FD_CLOEXEC can leak these into another test's child.
        guard pipe(&input) == 0, pipe(&output) == 0, pipe(&errors) == 0 else {
            throw ProcessFailure(description: "pipe: \(String(cString: strerror(errno)))")
        }
        for fd in input + output + errors { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let child: SpawnedProcess
        do {
            child = try SpawnedProcess(executable, arguments, environment: environment,
                                       stdin: input[0], stdout: output[1], stderr: errors[1])
        } catch {
            for fd in input + output + errors { close(fd) }
            throw error
        }
        close(input[0]); close(output[1]); close(errors[1])
        // Feed standard input from its own thread, so a child that fills its output first cannot
        // deadlock us; a child that stops reading makes the write fail quietly (SIGPIPE ignored).
        signal(SIGPIPE, SIG_IGN)
        let feeder = DispatchGroup()
        let stdinFD = input[1]
        DispatchQueue.global().async(group: feeder) {
            if let stdin {
                stdin.withUnsafeBytes { raw in
                    var done = 0
                    while done < raw.count {
                        let n = write(stdinFD, raw.baseAddress! + done, raw.count - done)
                        if n < 0 { if errno == EINTR { continue }; break }
                        done += n
                    }
                }
            }
            close(stdinFD)
        }
        // Drain both outputs until both close; kill the child when it runs past `timeout`.
        var collected: [Int32: Data] = [output[0]: Data(), errors[0]: Data()]
        var open = [output[0], errors[0]]
        let deadline = Date().addingTimeInterval(timeout)
        var killed = false
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let remaining = max(0, deadline.timeIntervalSinceNow)
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(remaining, 1) * 1000) + 1)
            if ready < 0 && errno != EINTR { break }
            if deadline.timeIntervalSinceNow <= 0 && !killed {
                child.signal(SIGTERM)
                killed = true
            }
            for entry in fds where entry.revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    collected[entry.fd]?.append(contentsOf: buffer[0..<n])
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(entry.fd)
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        feeder.wait()
        let status = child.wait()
        return ProcessResult(status: status, stdout: collected[output[0]] ?? Data(),
                             stderr: String(decoding: collected[errors[0]] ?? Data(), as: UTF8.self))
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
