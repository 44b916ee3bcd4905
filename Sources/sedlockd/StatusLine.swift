import ControlAPI
import Synchronization

/// The one line systemd shows for the daemon (`STATUS=`): drives unlocked, key servers
/// reachable, faults open, as the monitors last found them.
final class StatusLine: Sendable {
    private struct Counts {
        var drives = 0
        var unlocked = 0
        var servers = 0
        var reachable = 0
        var faults = 0
        var checked = false
    }

    private let counts = Mutex(Counts())

    var text: String {
        let c = counts.withLock { $0 }
        guard c.checked else { return "serving; first checks pending" }
        return "\(c.unlocked)/\(c.drives) drives unlocked, \(c.reachable)/\(c.servers) key servers reachable, "
            + "\(c.faults) fault\(c.faults == 1 ? "" : "s")"
    }

    func drives(_ report: StatusReport) {
        counts.withLock {
            $0.drives = report.drives.count
            $0.unlocked = report.drives.filter { $0.locked == false }.count
            $0.servers = report.keyServers.count
            $0.checked = true
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
