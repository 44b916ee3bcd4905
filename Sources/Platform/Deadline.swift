/// A point in monotonic time after which an operation gives up, on a given time source.
public struct Deadline: Sendable {
    public let uptimeNanoseconds: UInt64
    public let time: any TimeSource

    public init(uptimeNanoseconds: UInt64, time: any TimeSource = SystemTime()) {
        self.uptimeNanoseconds = uptimeNanoseconds
        self.time = time
    }

    /// `seconds` from now; negative or NaN counts as now, huge values saturate.
    public static func after(seconds: Double, time: any TimeSource = SystemTime()) -> Deadline {
        let bounded = seconds.isNaN ? 0 : min(max(0, seconds), 1e9)
        return Deadline(uptimeNanoseconds: time.uptimeNanoseconds &+ UInt64(bounded * 1e9), time: time)
    }

    public static let never = Deadline(uptimeNanoseconds: UInt64.max)

    public var remainingNanoseconds: UInt64 {
        let now = time.uptimeNanoseconds
        return uptimeNanoseconds > now ? uptimeNanoseconds - now : 0
    }

    public var remainingSeconds: Double { Double(remainingNanoseconds) / 1e9 }

    /// Whole milliseconds left for poll(2): at least 1 while any time is left, at most Int32.max.
    public var remainingMilliseconds: Int {
        let left = remainingNanoseconds
        guard left > 0 else { return 0 }
        return Int(min(max(1, left / 1_000_000), UInt64(Int32.max)))
    }

    public var hasPassed: Bool { time.uptimeNanoseconds >= uptimeNanoseconds }

    /// The earlier of two deadlines.
    public func earlier(_ other: Deadline) -> Deadline {
        other.uptimeNanoseconds < uptimeNanoseconds ? other : self
    }
}
