#if canImport(Glibc)
import Glibc
#endif

/// Runs a helper program (clevis) to its end or to a deadline, whichever comes first: `input`
/// goes to its standard input through a pipe (never a file or an argument, where other users
/// could read it), its standard output comes back through another. At the deadline the whole
/// process group is killed (clevis is a shell script whose children — curl, jose — would
/// otherwise outlive it), so a helper that hangs on a dead server costs the deadline and no more.
public enum BoundedCommand {
    public struct Outcome: Sendable {
        /// The exit status, or 128 + the signal; nil when the deadline ended it.
        public var status: Int32?
        /// What it wrote to standard output (the caller wipes it when it is secret).
        public var output: [UInt8]
        /// The first line of what it wrote to standard error, for messages.
        public var message: String
    }

    /// Ends at `deadline` (the caller's, on its clock) or after `seconds` of real time, whichever
    /// is first. `outputLimit`: bytes of standard output kept; a helper that writes more is
    /// killed (a sealed key or an AK is a few kilobytes).
    public static func run(_ path: String, _ arguments: [String], input: [UInt8], deadline: Deadline, seconds: Double,
                           outputLimit: Int = 1 << 20) throws(SystemError) -> Outcome {
        let own = Deadline.after(seconds: seconds)
        let over = { deadline.hasPassed || own.hasPassed }
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1], errors: [Int32] = [-1, -1]
        guard closingPipe(&toChild) == 0 else { throw SystemError("pipe2", errno: errno) }
        guard closingPipe(&fromChild) == 0 else {
            let saved = errno
            close(toChild[0]); close(toChild[1])
            throw SystemError("pipe2", errno: saved)
        }
        guard closingPipe(&errors) == 0 else {
            let saved = errno
            for fd in toChild + fromChild { close(fd) }
            throw SystemError("pipe2", errno: saved)
        }
        let process: SpawnedProcess
        do {
            process = try SpawnedProcess(path, arguments, stdin: toChild[0], stdout: fromChild[1], stderr: errors[1])
        } catch {
            for fd in toChild + fromChild + errors { close(fd) }
            throw error
        }
        close(toChild[0]); close(fromChild[1]); close(errors[1])
        var writer: Int32 = toChild[1]
        let reader = fromChild[0], errorReader = errors[0]
        _ = fcntl(writer, F_SETFL, fcntl(writer, F_GETFL) | O_NONBLOCK)
        defer {
            if writer >= 0 { close(writer) }
            close(reader); close(errorReader)
        }
        var output: [UInt8] = []
        // Room for what a helper writes up front: growing would leave copies of a key behind.
        output.reserveCapacity(min(outputLimit, 1 << 16) + 4096)
        var message: [UInt8] = []
        var written = 0
        var open: Set<Int32> = [reader, errorReader]
        var chunk = [UInt8](repeating: 0, count: 4096)
        defer { chunk.wipe() }
        var killed = false
        if input.isEmpty { close(writer); writer = -1 }
        while !open.isEmpty || writer >= 0 {
            if over() || output.count > outputLimit { killed = true; break }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if writer >= 0 { fds.append(pollfd(fd: writer, events: Int16(POLLOUT), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(deadline.remainingMilliseconds, own.remainingMilliseconds, 100)))
            if ready < 0 && errno != EINTR { killed = true; break }
            for entry in fds where entry.revents != 0 {
                if entry.fd == writer {
                    let n = withoutSIGPIPE { input[written...].withUnsafeBytes { Glibc.write(writer, $0.baseAddress, $0.count) } }
                    if n > 0 { written += n }
                    // All of it sent, or the helper stopped reading: its end of file either way.
                    if n < 0 && errno != EAGAIN && errno != EINTR || written == input.count { close(writer); writer = -1 }
                    continue
                }
                let n = chunk.withUnsafeMutableBytes { Glibc.read(entry.fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if entry.fd == reader { output += chunk[0..<n] } else if message.count < 4096 { message += chunk[0..<n] }
                } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                    open.remove(entry.fd)
                }
            }
        }
        // Its output closed; it may still linger a moment (never past the deadline).
        while !killed && process.isRunning {
            if over() { killed = true; break }
            usleep(2_000)
        }
        if killed {
            kill(-process.pid, SIGKILL)
            process.wait()
            output.wipe()
            return Outcome(status: nil, output: [], message: "did not finish in time (killed)")
        }
        let status = process.wait()
        let firstLine = String(decoding: message, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
        return Outcome(status: status, output: output, message: firstLine)
    }

    /// pipe(2) with both ends close-on-exec (glibc's pipe2 is not exposed to Swift): no other
    /// child started meanwhile keeps an end open (SpawnedProcess closes all but 0–2 as well).
    private static func closingPipe(_ ends: inout [Int32]) -> Int32 {
        guard pipe(&ends) == 0 else { return -1 }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return 0
    }
}
