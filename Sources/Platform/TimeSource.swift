import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where time comes from. Everything that waits, times out or records when something happened
/// takes one, so guards, deadlines and boot records can be tested without sleeping.
public protocol TimeSource: Sendable {
    /// Nanoseconds on a clock that never goes backwards (CLOCK_MONOTONIC); for deadlines.
    var uptimeNanoseconds: UInt64 { get }
    /// Wall-clock time; for records people read (boot records, faults, the audit log).
    var wallTime: Date { get }
    /// Waits `nanoseconds` (a manual time source advances instead).
    func sleep(nanoseconds: UInt64)
}

/// The machine's clocks.
public struct SystemTime: TimeSource {
    public init() {}

    public var uptimeNanoseconds: UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    public var wallTime: Date { Date() }

    public func sleep(nanoseconds: UInt64) {
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

/// A time source that moves only when told to: `sleep` advances it at once.
public final class ManualTime: TimeSource {
    private struct State { var uptime: UInt64; var wall: Date }
    private let state: Mutex<State>

    public init(uptimeNanoseconds: UInt64 = 1_000_000_000, wallTime: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        state = Mutex(State(uptime: uptimeNanoseconds, wall: wallTime))
    }

    public var uptimeNanoseconds: UInt64 { state.withLock { $0.uptime } }
    public var wallTime: Date { state.withLock { $0.wall } }

    public func sleep(nanoseconds: UInt64) { advance(nanoseconds: nanoseconds) }

    /// Moves both clocks forward.
    public func advance(nanoseconds: UInt64) {
        state.withLock {
            $0.uptime &+= nanoseconds
            $0.wall = $0.wall.addingTimeInterval(Double(nanoseconds) / 1e9)
        }
    }
}
