import Foundation
import Platform
#if canImport(Glibc)
import Glibc
#endif

/// Where the lock manager keeps its database: `--state-dir`, else `$STATE_DIRECTORY` (systemd's
/// StateDirectory=), else /var/lib/sedlock. Created 0700; refused when others may read or write it.
public struct StateDirectory: Sendable {
    public static let defaultPath = "/var/lib/sedlock"
    public let path: String

    /// Chooses the directory by the documented order (the first entry of `$STATE_DIRECTORY`, which
    /// systemd sets as a colon-separated list).
    public static func resolve(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> StateDirectory {
        if let explicit, !explicit.isEmpty { return StateDirectory(path: explicit) }
        if let fromSystemd = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !fromSystemd.isEmpty {
            return StateDirectory(path: String(fromSystemd))
        }
        return StateDirectory(path: defaultPath)
    }

    public init(path: String) {
        self.path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    public var databasePath: String { path + "/state.sqlite" }
    public var writerLockPath: String { path + "/writer.lock" }
    /// The verified copy of the last good state, written after each change set.
    public var backupPath: String { path + "/state.sqlite.bak" }

    /// Creates the directory (0700, whatever the umask) if missing, and checks an existing one.
    public func prepare() throws(StateError) {
        if mkdir(path, 0o700) == 0 {
            _ = chmod(path, 0o700)
            return
        }
        guard errno == EEXIST else {
            throw StateError(.unreadable, "cannot create the state directory \(path): \(errnoText())",
                             fix: "create its parent, or choose another with --state-dir")
        }
        try verify(forWriting: true)
    }

    /// Refuses a state directory, or a file of it, that another account owns or may write to (it
    /// could have swapped in a database naming its own key server), and, for writing, one that
    /// others may read. Nothing in it is opened before this passes.
    public func verify(forWriting: Bool) throws(StateError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw StateError(.unreadable, "cannot examine \(path): \(errnoText())") }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw StateError(.unsafeLocation, "\(path) is not a directory (a symbolic link or a file)",
                             fix: "give --state-dir a real directory")
        }
        if let problem = FileOwnership.problem(info, path: path, privateToOwner: forWriting) {
            throw StateError(.unsafeLocation, "the state directory is not safe: \(problem)",
                             fix: "check what is in it (another account may have changed it), then `chown root:root \(path)` and `chmod 700 \(path)`")
        }
        for file in stateFiles {
            if let problem = FileOwnership.problem(at: file) {
                throw StateError(.unsafeLocation, "the state is not safe: \(problem)",
                                 fix: "check the file (another account may have replaced it), restore it from a backup or `chown root:root` it")
            }
        }
    }

    /// The files of the state this directory holds (each may be missing).
    var stateFiles: [String] {
        [databasePath, databasePath + "-wal", databasePath + "-shm", writerLockPath, backupPath]
    }

    /// The whole disks (kernel names such as `sda`, `nvme0n1`) under the filesystem that holds the
    /// directory: a partition resolves to its disk, a device-mapper or MD device to the disks
    /// beneath it. Empty when the filesystem has no block device (tmpfs, overlay).
    public func backingDisks(sysfs: String = "/sys") throws(StateError) -> Set<String> {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StateError(.unreadable, "cannot examine \(path): \(errnoText())") }
        let node = "\(sysfs)/dev/block/\(DeviceNumber(info.st_dev))"
        return Self.disks(underSysfsNode: node)
    }

    /// Refuses a state directory that lives on one of `disks` (kernel names of drives being managed):
    /// unlocking them would need the state they hold.
    public func requireNotOn(disks: Set<String>, sysfs: String = "/sys") throws(StateError) {
        let under = try backingDisks(sysfs: sysfs)
        let clash = under.intersection(disks)
        guard clash.isEmpty else {
            throw StateError(.unsafeLocation,
                             "the state directory \(path) is on \(clash.sorted().joined(separator: ", ")), a drive sedlock unlocks",
                             fix: "keep the state on the boot or root filesystem (--state-dir)")
        }
    }

    static func disks(underSysfsNode node: String, depth: Int = 0) -> Set<String> {
        let fm = FileManager.default
        guard depth < 8, let resolved = try? fm.destinationOfSymbolicLink(atPath: node) else { return [] }
        let target = resolved.hasPrefix("/") ? resolved : (node as NSString).deletingLastPathComponent + "/" + resolved
        let device = (target as NSString).standardizingPath
        if fm.fileExists(atPath: device + "/partition") {
            return [((device as NSString).deletingLastPathComponent as NSString).lastPathComponent]
        }
        let slaves = (try? fm.contentsOfDirectory(atPath: device + "/slaves")) ?? []
        if slaves.isEmpty { return [(device as NSString).lastPathComponent] }
        var out = Set<String>()
        for slave in slaves { out.formUnion(disks(underSysfsNode: device + "/slaves/" + slave, depth: depth + 1)) }
        return out
    }
}
