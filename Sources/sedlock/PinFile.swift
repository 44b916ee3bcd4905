import Foundation
import Keys
import Platform

/// Reads PINs from files (or stdin for `-`) into `Secret`s. A PIN never appears in output or errors.
/// Reading is bounded in size (at most `maximumFileSize` bytes are ever read) and in time (a pipe
/// that never delivers fails after `waitSeconds`), and every failure names its cause.
enum PinFile {
    static let maximumFileSize = 4096
    static let waitSeconds = 30.0

    /// Reads one PIN; a single trailing newline (LF or CRLF) is not part of it.
    static func read(_ path: String, option: String) throws -> Secret {
        let name = path == "-" ? "standard input" : path
        func failure(_ reason: String) -> CommandFailure { CommandFailure("\(option) \(name): \(reason)", .badArguments) }
        let fd: Int32
        if path == "-" {
            fd = 0
        } else {
            fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
            guard fd >= 0 else { throw failure("cannot open it (\(errnoText()))") }
        }
        defer { if fd != 0 { close(fd) } }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("cannot examine it (\(errnoText()))") }
        if info.st_mode & S_IFMT == S_IFDIR { throw failure("it is a directory, not a PIN file") }
        // A PIN file another account owns or may write to could hold a PIN of its choosing.
        if path != "-", info.st_mode & S_IFMT == S_IFREG, let problem = FileOwnership.problem(info, path: path) {
            throw failure("refused: \(problem)")
        }

        var bytes: [UInt8] = []
        // Room for the largest file at once: an outgrown buffer would be freed with the PIN in it.
        bytes.reserveCapacity(maximumFileSize + 1024)
        defer { bytes.wipe() }
        var chunk = [UInt8](repeating: 0, count: 1024)
        defer { chunk.wipe() }
        let deadline = Deadline.after(seconds: waitSeconds)
        while bytes.count <= maximumFileSize {
            var pollfd = Glibc.pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = retryingEINTR { poll(&pollfd, 1, Int32(deadline.remainingMilliseconds)) }
            if ready == 0 { throw failure("nothing arrived within \(Int(waitSeconds)) s (a pipe with no writer?)") }
            if ready < 0 { throw failure("cannot wait for it (\(errnoText()))") }
            let n = chunk.withUnsafeMutableBytes { raw in retryingEINTR { Glibc.read(fd, raw.baseAddress, raw.count) } }
            if n < 0 {
                if errno == EAGAIN { continue }
                throw failure("cannot read it (\(errnoText()))")
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        guard bytes.count <= maximumFileSize else { throw failure("a PIN file holds at most \(maximumFileSize) bytes") }
        if bytes.last == 0x0A { bytes.removeLast(); if bytes.last == 0x0D { bytes.removeLast() } }
        guard !bytes.isEmpty else { throw failure("the PIN file is empty") }
        return Secret(bytes)
    }
}
