import ControlAPI
import Foundation
import Synchronization

/// The key-server monitor's latest test of each server (with when it was made), which reads
/// answer from in sedlockd: a reader never opens a connection to a key server, so a hung server
/// or a crowd of readers costs the work path nothing. A live question to one server (a query of
/// what it holds) runs one at a time per server: a second asker is told it is in flight.
public final class KeyServerHealth: Sendable {
    private let latest = Mutex<[String: KeyServerReport.Server]>([:])
    private let inFlight = Mutex<Set<String>>([])

    public init() {}

    /// Keeps the monitor's results (each carries `checkedAt`).
    func record(_ servers: [KeyServerReport.Server]) {
        latest.withLock { table in for server in servers { table[server.name] = server } }
    }

    /// The latest result for `server`, or its configured entry untested (reachable nil).
    func latest(for server: KeyServerReport.Server) -> KeyServerReport.Server {
        latest.withLock { $0[server.name] } ?? server
    }

    /// Runs `body` unless a live question to `server` is in flight already.
    func oneAtATime<R>(_ server: String, _ body: () -> R) -> R? {
        guard inFlight.withLock({ $0.insert(server).inserted }) else { return nil }
        defer { _ = inFlight.withLock { $0.remove(server) } }
        return body()
    }
}
