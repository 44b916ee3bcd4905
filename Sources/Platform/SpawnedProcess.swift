import CShims
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn. Foundation's `Process.run()` on Linux (Swift 6.3.1)
/// crashes now and then while it lists /proc/self/fd (a 256-byte over-read of `d_name`, fixed
/// upstream in swift-corelibs-foundation PR #5472); a suite that starts thousands of processes
/// meets it, so sedlock and its tests start children here instead. The child gets a clean signal mask and
/// default SIGPIPE/SIGTERM/SIGHUP/SIGINT, its own process group, and no descriptor of ours beyond 0–2.
public final class SpawnedProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `path` with `arguments`; `stdin`/`stdout`/`stderr` are descriptors to give the child
    /// (nil: /dev/null). `environment` entries replace the inherited ones.
    public init(_ path: String, _ arguments: [String], environment: [String: String] = [:],
                stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil) throws(SystemError) {
        pid = try Self.spawn(path, arguments, environment: environment, descriptors: [stdin, stdout, stderr], newSession: false)
    }

    /// Starts a service that outlives this process (`sedsim appliance start`): a session of its
    /// own, so no terminal hang-up or process-group signal of ours reaches it; nobody here waits
    /// for it, so when it ends the init process (or the nearest subreaper) reaps it.
    public static func launchDetached(_ path: String, _ arguments: [String], environment: [String: String] = [:],
                                      stdout: Int32? = nil, stderr: Int32? = nil) throws(SystemError) -> pid_t {
        try spawn(path, arguments, environment: environment, descriptors: [nil, stdout, stderr], newSession: true)
    }

    private static func spawn(_ path: String, _ arguments: [String], environment: [String: String],
                              descriptors: [Int32?], newSession: Bool) throws(SystemError) -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGPIPE)
        sigaddset(&defaults, SIGHUP)
        sigaddset(&defaults, SIGINT)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var flags = Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newSession {
            flags |= sedlock_spawn_setsid_flag()
        } else {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= Int16(POSIX_SPAWN_SETPGROUP)
        }
        posix_spawnattr_setflags(&attributes, flags)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, source) in zip(Int32(0)..., descriptors) {
            if let source {
                posix_spawn_file_actions_adddup2(&actions, source, target)
            } else {
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            }
        }
        _ = sedlock_spawn_addclosefrom(&actions, 3)
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw SystemError("posix_spawn", path: path, errno: rc) }
        return child
    }

    /// Whether the child still runs (reaps it when it has ended).
    public var isRunning: Bool { lock.withLock { reap(blocking: false) == nil } }

    /// Waits for the child to end; its exit status, or 128 + the signal that ended it.
    @discardableResult
    public func wait() -> Int32 { lock.withLock { reap(blocking: true) ?? -1 } }

    /// The exit status once the child has ended.
    public var terminationStatus: Int32? { lock.withLock { reap(blocking: false) } }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// SIGTERM to the child's whole process group (servers that fork workers), SIGKILL if it lingers.
    public func stop() {
        guard isRunning else { return }
        kill(-pid, SIGTERM)
        let deadline = Date().addingTimeInterval(3)
        while isRunning && Date() < deadline { usleep(20_000) }
        kill(-pid, SIGKILL)
        wait()
    }

    deinit { stop() }

    private func reap(blocking: Bool) -> Int32? {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        while true {
            let rc = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if rc == pid { break }
            if rc == 0 { return nil }
            if errno == EINTR { continue }
            exitStatus = -1
            return exitStatus
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros: decode the status word by hand.
        let signalled = status & 0x7F
        exitStatus = signalled == 0 ? (status >> 8) & 0xFF : 128 + signalled
        return exitStatus
    }
}
