import Foundation
import Platform
import Synchronization
import Testing

@Suite("Platform: staggered race over mirrored peers")
struct StaggeredRaceTests {
    /// Which peers were asked, in order.
    private final class Asked: Sendable {
        let order = Mutex<[Int]>([])
        func note(_ index: Int) { order.withLock { $0.append(index) } }
        var all: [Int] { order.withLock { $0 } }
    }

    @Test("a first peer that answers enough is the only one asked")
    func healthyFirstPeer() {
        let asked = Asked()
        let answers = StaggeredRace<Int>(stagger: 30).run(count: 3, deadline: .after(seconds: 60), stillNeeded: { $0.isEmpty ? 1 : 0 }) { index in
            asked.note(index)
            return index * 10
        }
        #expect(answers == [0: 0] && asked.all == [0])
    }

    @Test("a hung first peer costs its head start: the second is asked and its answer returned while the first still hangs")
    func hungFirstPeer() {
        let release = DispatchSemaphore(value: 0)
        let asked = Asked()
        let answers = StaggeredRace<Int>(stagger: 0.05).run(count: 2, deadline: .after(seconds: 60), stillNeeded: { $0.isEmpty ? 1 : 0 }) { index in
            asked.note(index)
            if index == 0 { _ = release.wait(timeout: .now() + 30) }
            return index
        }
        release.signal()
        #expect(answers == [1: 1] && asked.all == [0, 1])
    }

    @Test("an answer that is not enough starts the next peer at once; two needed asks two at once and stops at two good answers")
    func notEnoughAndTogether() {
        let asked = Asked()
        // Odd peers fail (nil); enough is one good answer. The head start is too long to matter.
        let answers = StaggeredRace<Int?>(stagger: 600).run(count: 4, deadline: .after(seconds: 60),
                                                            stillNeeded: { $0.values.contains { $0 != nil } ? 0 : 1 }) { index in
            asked.note(index)
            return index == 0 ? nil : index
        }
        #expect(answers.compactMapValues { $0 } == [1: 1] && asked.all == [0, 1])

        let pair = Asked()
        let two = StaggeredRace<Int>(stagger: 600).run(count: 4, deadline: .after(seconds: 60),
                                                      stillNeeded: { max(0, 2 - $0.count) }) { index in
            pair.note(index)
            return index
        }
        #expect(two == [0: 0, 1: 1] && Set(pair.all) == [0, 1])
    }

    @Test("every peer answering without enough returns them all; the deadline ends the wait for peers that never answer")
    func allAnswersOrDeadline() {
        let all = StaggeredRace<Int>(stagger: 0).run(count: 3, deadline: .after(seconds: 60), stillNeeded: { _ in 1 }) { $0 }
        #expect(all == [0: 0, 1: 1, 2: 2])
        let release = DispatchSemaphore(value: 0)
        let none = StaggeredRace<Int>(stagger: 0).run(count: 2, deadline: .after(seconds: 0.2), stillNeeded: { _ in 1 }) { index in
            _ = release.wait(timeout: .now() + 30)
            return index
        }
        release.signal(); release.signal()
        #expect(none.isEmpty)
    }
}
