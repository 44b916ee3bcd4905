import Foundation
import Synchronization

/// The threads of a server that accepts on one thread of its own and serves each connection on
/// another (socket waits never block Swift's cooperative pool), and its stop: no new connection
/// once stopping, and `stop()` returns when the accept loop and every connection have ended.
public final class ServingThreads: Sendable {
    private struct State {
        var stopping = false
        var acceptLoopRunning = false
        var connections = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let name: String

    /// `name` prefixes the threads' names ("control" → control-accept, control-connection).
    public init(name: String) { self.name = name }

    public var isStopping: Bool { state.withLock { $0.stopping } }
    public var connectionCount: Int { state.withLock { $0.connections } }

    /// Runs `loop` on the accept thread; it should return soon after `isStopping` turns true.
    public func startAcceptLoop(_ loop: @escaping @Sendable () -> Void) {
        state.withLock { $0.acceptLoopRunning = true }
        let thread = Thread { [self] in
            loop()
            finished { $0.acceptLoopRunning = false }
        }
        thread.name = "\(name)-accept"
        thread.start()
    }

    /// Serves one connection on a thread of its own; `done` runs when it ends, before the stop
    /// can complete.
    public func serve(_ body: @escaping @Sendable () -> Void) {
        state.withLock { $0.connections += 1 }
        let thread = Thread { [self] in
            body()
            finished { $0.connections -= 1 }
        }
        thread.name = "\(name)-connection"
        thread.start()
    }

    /// Stops taking connections; `interrupt` then runs (to close connections that would
    /// otherwise wait out their deadline), and this returns once every thread has ended.
    public func stop(interrupt: @Sendable () -> Void = {}) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                state.stopping = true
                if !state.acceptLoopRunning && state.connections == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            interrupt()
            if done { continuation.resume() }
        }
    }

    private func finished(_ change: (inout State) -> Void) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            change(&state)
            guard state.stopping, !state.acceptLoopRunning, state.connections == 0 else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
