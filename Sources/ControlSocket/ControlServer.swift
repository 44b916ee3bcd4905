import ControlAPI
import Dispatch
import Foundation
import Logging
import Platform
import Synchronization

/// Bounds that keep one client from holding the daemon: request size, time to send a request
/// and read its reply, connections at once.
public struct ControlServerLimits: Sendable {
    /// Largest request line, in bytes.
    public var requestBytes: Int = ControlFraming.defaultRequestLimit
    /// Seconds a client has to deliver each whole request (counted from connect or from the
    /// previous reply) and to take its reply; an idle connection is closed after it.
    public var requestTimeout: Double = 10
    /// Connections served at once; more are answered "busy" and closed.
    public var maximumConnections: Int = 256

    public init() {}
}

/// sedlockd's control socket: accepts on a thread of its own, serves each connection on its
/// own thread (socket waits never block Swift's cooperative pool), and hands every request that
/// the access policy allows to `handler`.
public final class ControlServer: Sendable {
    public typealias Handler = @Sendable (ControlRequest, UnixSocket.PeerCredentials) async -> ControlResponse

    private struct State {
        var stopping = false
        var connections = 0
        var acceptLoopRunning = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let listener: UnixSocket
    private let policy: AccessPolicy
    private let limits: ControlServerLimits
    private let handler: Handler
    private let logger: Logger
    /// Where handlers run: threads of the daemon's own, so that answering never waits for a free
    /// thread of Swift's cooperative pool.
    private let executor: any TaskExecutor
    private let state = Mutex(State())

    public init(listener: UnixSocket, policy: AccessPolicy, limits: ControlServerLimits, logger: Logger,
                executor: any TaskExecutor, handler: @escaping Handler) {
        self.listener = listener
        self.policy = policy
        self.limits = limits
        self.logger = logger
        self.executor = executor
        self.handler = handler
    }

    /// Starts accepting connections.
    public func start() {
        state.withLock { $0.acceptLoopRunning = true }
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "control-accept"
        thread.start()
    }

    /// Stops accepting, lets requests in flight finish, and returns once every connection ended.
    public func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                state.stopping = true
                if !state.acceptLoopRunning && state.connections == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    public var connectionCount: Int { state.withLock { $0.connections } }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func acceptLoop() {
        while !isStopping {
            let client: UnixSocket?
            do { client = try listener.accept(deadline: .after(seconds: 0.2)) } catch {
                logger.error("control socket: accept failed: \(error)")
                Thread.sleep(forTimeInterval: 0.2)
                continue
            }
            guard let client else { continue }
            let admitted = state.withLock { state -> Bool in
                guard state.connections < limits.maximumConnections else { return false }
                state.connections += 1
                return true
            }
            guard admitted else {
                reply(.failure(ControlError(.busy, "sedlockd serves \(limits.maximumConnections) connections at once",
                                            fix: "try again in a moment")), to: client)
                continue
            }
            let thread = Thread { [self] in
                serve(client)
                finished { $0.connections -= 1 }
            }
            thread.name = "control-connection"
            thread.start()
        }
        finished { $0.acceptLoopRunning = false }
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

    private func serve(_ client: UnixSocket) {
        guard let peer = try? client.peerCredentials() else { return }
        let groups = AccessPolicy.groups(of: client, primary: peer.gid)
        if policy.access(uid: peer.uid, groups: groups) == .refused {
            logger.warning("control socket: refused uid \(peer.uid) (pid \(peer.pid))")
            // Take the request first (bounded), so the client reads the refusal instead of a broken pipe.
            _ = try? LineReader(limit: limits.requestBytes).nextLine(from: client, deadline: .after(seconds: 1))
            if let refusal = policy.refusal(of: .status, uid: peer.uid, groups: groups) { reply(.failure(refusal), to: client) }
            return
        }
        let reader = LineReader(limit: limits.requestBytes)
        while true {
            let line: [UInt8]
            do { line = try reader.nextLine(from: client, deadline: .after(seconds: limits.requestTimeout)) } catch {
                switch error {
                case .tooLong:
                    reply(.failure(ControlError(.badRequest, "control request longer than \(limits.requestBytes) bytes",
                                                fix: "send one request per line")), to: client)
                case .socket(.timedOut):
                    reply(.failure(ControlError(.badRequest, "no complete request within \(limits.requestTimeout) s",
                                                fix: "send each request as one line ending in a newline")), to: client)
                case .socket: break
                }
                return
            }
            let response: ControlResponse
            do {
                let request = try ControlFraming.decodeRequest(line)
                if let refusal = policy.refusal(of: request, uid: peer.uid, groups: groups) {
                    response = .failure(refusal)
                } else if isStopping {
                    response = .failure(ControlError(.unreachable, "sedlockd is stopping", fix: "try again once it has restarted"))
                } else {
                    response = wait(for: request, peer: peer)
                }
            } catch {
                response = .failure(error)
            }
            guard reply(response, to: client) else { return }
        }
    }

    /// Runs the async handler from this connection's thread and waits for its answer.
    private func wait(for request: ControlRequest, peer: UnixSocket.PeerCredentials) -> ControlResponse {
        let answer = Mutex<ControlResponse?>(nil)
        let done = DispatchSemaphore(value: 0)
        let handler = self.handler
        Task(executorPreference: executor) {
            let response = await handler(request, peer)
            answer.withLock { $0 = response }
            done.signal()
        }
        done.wait()
        return answer.withLock { $0 } ?? .failure(ControlError(.failed, "the request ended without an answer"))
    }

    @discardableResult
    private func reply(_ response: ControlResponse, to client: UnixSocket) -> Bool {
        do {
            try client.send(ControlFraming.encode(response: response), deadline: .after(seconds: limits.requestTimeout))
            return true
        } catch {
            return false
        }
    }
}
