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
    /// Connections root (and the daemon's own user) may hold at once; more are answered "busy".
    public var maximumConnections: Int = 256
    /// Connections all other users (the reader group) may hold at once, and each one of them:
    /// when full, the reader connection idle longest is closed to make room.
    public var readerConnections: Int = 32
    public var connectionsPerReader: Int = 4

    public init() {}

    var quota: ConnectionQuota.Limits {
        ConnectionQuota.Limits(privileged: maximumConnections, readers: readerConnections, perReader: connectionsPerReader)
    }
}

/// sedlockd's control socket: accepts on a thread of its own, serves each connection on its
/// own thread (socket waits never block Swift's cooperative pool), and hands every request that
/// the access policy allows to `handler`.
public final class ControlServer: Sendable {
    /// Answers a request; `progress` sends a drive's progress to the client ahead of the reply.
    public typealias Handler = @Sendable (ControlRequest, StreamSocket.PeerCredentials,
                                          _ progress: @escaping @Sendable (DriveProgress) -> Void) async -> ControlResponse

    private struct State {
        var quota: ConnectionQuota
        /// The socket of each admitted connection, to close one that must make room.
        var sockets: [Int: StreamSocket] = [:]
    }

    private let listener: StreamSocket
    private let policy: AccessPolicy
    private let limits: ControlServerLimits
    private let handler: Handler
    private let logger: Logger
    /// Where handlers run: threads of the daemon's own, so that answering never waits for a free
    /// thread of Swift's cooperative pool; root's (and the daemon user's) on threads of their own,
    /// which no reader's request can occupy.
    private let executor: any TaskExecutor
    private let privilegedExecutor: any TaskExecutor
    private let privilegedUsers: Set<UInt32>
    private let state: Mutex<State>
    /// Connection threads alive (a connection closed to make room counts until its thread ends).
    private let threads = ServingThreads(name: "control")

    /// `privilegedUsers`: besides root, whose connections never compete with readers (the
    /// daemon's own user).
    public init(listener: StreamSocket, policy: AccessPolicy, limits: ControlServerLimits, logger: Logger,
                executor: any TaskExecutor, privilegedExecutor: (any TaskExecutor)? = nil,
                privilegedUsers: Set<UInt32> = [0, geteuid()], handler: @escaping Handler) {
        state = Mutex(State(quota: ConnectionQuota(limits: limits.quota, privilegedUsers: privilegedUsers.union([0]))))
        self.privilegedExecutor = privilegedExecutor ?? executor
        self.privilegedUsers = privilegedUsers.union([0])
        self.listener = listener
        self.policy = policy
        self.limits = limits
        self.logger = logger
        self.executor = executor
        self.handler = handler
    }

    /// Starts accepting connections.
    public func start() {
        threads.startAcceptLoop { [self] in acceptLoop() }
    }

    /// Stops accepting, lets requests in flight finish, and returns once every connection ended.
    public func stop() async { await threads.stop() }

    public var connectionCount: Int { threads.connectionCount }

    private var isStopping: Bool { threads.isStopping }

    private func acceptLoop() {
        while !isStopping {
            let client: StreamSocket?
            do { client = try listener.accept(deadline: .after(seconds: 0.2)) } catch {
                logger.error("control socket: accept failed: \(error)")
                Thread.sleep(forTimeInterval: 0.2)
                continue
            }
            guard let client else { continue }
            // The kernel's word on the peer decides its slot before a thread is spent on it.
            guard let peer = try? client.peerCredentials() else { continue }
            let now = DispatchTime.now().uptimeNanoseconds
            let (admission, closing) = state.withLock { state -> (ConnectionQuota.Admission, [StreamSocket]) in
                let admission = state.quota.admit(uid: peer.uid, now: now)
                guard case .admitted(let id, let closing) = admission else { return (admission, []) }
                state.sockets[id] = client
                return (admission, closing.compactMap { state.sockets.removeValue(forKey: $0) })
            }
            // Idle readers making room: their threads see the hang-up and end.
            for socket in closing { socket.shutdown() }
            guard case .admitted(let id, _) = admission else {
                if case .busy(let why) = admission {
                    logger.warning("control socket: busy for uid \(peer.uid) (pid \(peer.pid)): \(why)")
                    reply(.failure(ControlError(.busy, why, fix: "try again in a moment")), to: client)
                }
                continue
            }
            threads.serve { [self] in
                serve(client, id: id, peer: peer)
                state.withLock {
                    $0.quota.release(id)
                    $0.sockets[id] = nil
                }
            }
        }
    }

    private func serve(_ client: StreamSocket, id: Int, peer: StreamSocket.PeerCredentials) {
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
            // Waiting for a request, this connection is what makes room for a newcomer first.
            state.withLock { $0.quota.mark(id, idle: true, now: DispatchTime.now().uptimeNanoseconds) }
            do {
                line = try reader.nextLine(from: client, deadline: .after(seconds: limits.requestTimeout))
                state.withLock { $0.quota.mark(id, idle: false, now: 0) }
            } catch {
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
                    response = wait(for: request, peer: peer, client: client)
                }
            } catch {
                response = .failure(error)
            }
            guard reply(response, to: client) else { return }
        }
    }

    /// Runs the async handler from this connection's thread and waits for its answer.
    private func wait(for request: ControlRequest, peer: StreamSocket.PeerCredentials, client: StreamSocket) -> ControlResponse {
        let answer = Mutex<ControlResponse?>(nil)
        let done = DispatchSemaphore(value: 0)
        let handler = self.handler
        // Progress lines go out one at a time, each within the request timeout; a client that
        // stopped reading loses its progress, never the work or the reply's own deadline.
        let sending = Mutex(true)
        let timeout = limits.requestTimeout
        let progress: @Sendable (DriveProgress) -> Void = { update in
            sending.withLock { open in
                guard open else { return }
                do { try client.send(ControlFraming.encode(progress: update), deadline: .after(seconds: timeout)) } catch { open = false }
            }
        }
        Task(executorPreference: privilegedUsers.contains(peer.uid) ? privilegedExecutor : executor) {
            let response = await handler(request, peer, progress)
            answer.withLock { $0 = response }
            done.signal()
        }
        done.wait()
        return answer.withLock { $0 } ?? .failure(ControlError(.failed, "the request ended without an answer"))
    }

    @discardableResult
    private func reply(_ response: ControlResponse, to client: StreamSocket) -> Bool {
        do {
            try client.send(ControlFraming.encode(response: response), deadline: .after(seconds: limits.requestTimeout))
            return true
        } catch {
            return false
        }
    }
}
