import CSystemd
import Foundation

/// The service manager's side of the notify protocol (sd_notify): readiness, status, watchdog,
/// reload and stop, timeout extensions. Without `$NOTIFY_SOCKET` (not under systemd) every call
/// does nothing, so the daemon runs unchanged.
public struct ServiceManager: Sendable {
    public init() {}

    /// True when a service manager listens for notifications.
    public var isPresent: Bool { ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] != nil }

    /// The daemon serves: its socket is open and its state loaded.
    public func ready(status: String) { send(["READY=1", "STATUS=" + oneLine(status)]) }

    public func status(_ text: String) { send(["STATUS=" + oneLine(text)]) }

    public func watchdogPing() { send(["WATCHDOG=1"]) }

    /// A reload starts: systemd waits for the next `ready` (MONOTONIC_USEC ties the two).
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send(["RELOADING=1", "MONOTONIC_USEC=\(usec)"])
    }

    public func stopping(status: String) { send(["STOPPING=1", "STATUS=" + oneLine(status)]) }

    /// Asks for `seconds` more before the start (or stop) timeout fires.
    public func extendTimeout(seconds: Double) {
        send(["EXTEND_TIMEOUT_USEC=\(UInt64(max(0, seconds) * 1_000_000))"])
    }

    /// The watchdog interval systemd expects pings within (WatchdogSec=), when it set one for us.
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// Descriptors passed by socket activation (fd 3 onwards), in order.
    public func listenDescriptors() -> [Int32] {
        let count = sd_listen_fds(1)
        guard count > 0 else { return [] }
        return (0..<count).map { SD_LISTEN_FDS_START + $0 }
    }

    private func send(_ assignments: [String]) {
        _ = sd_notify(0, assignments.joined(separator: "\n"))
    }

    /// STATUS= is one line; a newline would end the assignment.
    private func oneLine(_ text: String) -> String {
        text.replacingOccurrences(of: "\n", with: " ")
    }
}
