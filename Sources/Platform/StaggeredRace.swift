import Foundation
import Synchronization

/// Asks several peers the same question the way a careful client asks mirrored servers: as many
/// at once as good answers are still needed, one more after each head start of `stagger` seconds,
/// and a replacement as soon as an answer leaves the need unmet — so a healthy first peer costs one
/// exchange, and a hung one costs at most the head start rather than the whole wait. It returns the
/// answers in hand once none is needed any more, every peer has answered, or `deadline` passes.
/// Peers still working then finish on their own threads (each exchange is bounded by the same
/// deadline) and their answers are dropped.
public struct StaggeredRace<Answer: Sendable>: Sendable {
    public let stagger: Double

    public init(stagger: Double = 0.5) {
        self.stagger = max(0, stagger)
    }

    private struct Progress {
        var answers: [Int: Answer] = [:]
        var started = 0
    }

    /// `ask(i)` asks peer `i` of `count`; `stillNeeded` says, from the answers so far (by peer),
    /// how many more good answers are needed (0: enough).
    public func run(count: Int, deadline: Deadline, stillNeeded: ([Int: Answer]) -> Int,
                    ask: @escaping @Sendable (Int) -> Answer) -> [Int: Answer] {
        let progress = Mutex(Progress())
        let answered = DispatchSemaphore(value: 0)
        func startNext() {
            let index = progress.withLock { state -> Int? in
                guard state.started < count else { return nil }
                defer { state.started += 1 }
                return state.started
            }
            guard let index else { return }
            let thread = Thread {
                let answer = ask(index)
                progress.withLock { $0.answers[index] = answer }
                answered.signal()
            }
            thread.name = "race-\(index)"
            thread.start()
        }
        var nextStart = DispatchTime.now() + stagger
        while true {
            let (answers, started) = progress.withLock { ($0.answers, $0.started) }
            let needed = stillNeeded(answers)
            if needed == 0 || answers.count == count || deadline.hasPassed { return answers }
            // Enough peers in flight for what is still needed, replacing those that answered short.
            if started - answers.count < needed && started < count {
                for _ in 0..<min(needed - (started - answers.count), count - started) { startNext() }
                nextStart = DispatchTime.now() + stagger
                continue
            }
            // Wake at the next head start (while peers are left to start), else at the deadline.
            let end = DispatchTime.now() + min(deadline.remainingSeconds, 86_400)  // `.never` stays in range
            let wake = started < count ? min(nextStart, end) : end
            if answered.wait(timeout: wake) == .timedOut && started < count && !deadline.hasPassed {
                startNext()
                nextStart = DispatchTime.now() + stagger
            }
        }
    }
}
