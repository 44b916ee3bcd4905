import ControlAPI
import Synchronization

/// The one line systemd shows for the daemon (`STATUS=`): drives unlocked, key servers
/// reachable, faults open, as the monitors last found them.
final class StatusLine: Sendable {
    private struct Counts {
        /// Each managed drive: locked (true), unlocked (false), unknown (nil: it did not answer).
        var drives: [String: Bool?] = [:]
        var servers = 0
        var reachable = 0
        var faults = 0
        var checked = false
        /// A request changed drives since the monitors last looked: they look again at once.
        var recheck = false
    }

    private let counts = Mutex(Counts())

    var text: String {
        let c = counts.withLock { $0 }
        guard c.checked else { return "serving; first checks pending" }
        let unlocked = c.drives.values.filter { $0 == false }.count
        return "\(unlocked)/\(c.drives.count) drives unlocked, \(c.reachable)/\(c.servers) key servers reachable, "
            + "\(c.faults) fault\(c.faults == 1 ? "" : "s")"
    }

    func drives(_ report: StatusReport) {
        counts.withLock {
            $0.drives = Dictionary(report.drives.map { ($0.address, $0.locked) }) { first, _ in first }
            $0.servers = report.keyServers.count
            $0.checked = true
        }
    }

    /// What an answered request did to the drives, at once (STATUS= must not wait for the next
    /// monitor round to say a lock happened); outcomes that leave the state unsaid, a setup or a
    /// rekey, ask the monitors for a fresh look.
    func applied(_ report: ArrayReport) {
        counts.withLock {
            for outcome in report.drives {
                switch outcome.result {
                case .unlocked: $0.drives[outcome.address] = .some(false)
                case .locked: $0.drives[outcome.address] = .some(true)
                case .removed, .released, .reverted: $0.drives[outcome.address] = nil
                default: break
                }
            }
            $0.recheck = true
        }
    }

    /// Whether a request changed drives since the last call (and so the drives are due a look).
    func takeRecheck() -> Bool {
        counts.withLock { state in
            defer { state.recheck = false }
            return state.recheck
        }
    }

    func keyServers(_ report: KeyServerReport) {
        counts.withLock {
            $0.servers = report.servers.count
            $0.reachable = report.servers.filter { $0.reachable == true }.count
        }
    }

    func faults(open: Int) { counts.withLock { $0.faults = open } }
}
