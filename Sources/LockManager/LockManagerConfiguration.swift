import Foundation
import ControlAPI
import LockState
import Synchronization

/// Everything the lock manager is told from outside: one value passed down, no globals.
public struct LockManagerConfiguration: Sendable {
    public var stateDirectory: StateDirectory
    /// Seconds to wait for each drive command.
    public var commandTimeout: Double = 10
    /// Lockout guard: consecutive failed authentications before a drive is guarded.
    public var lockoutLimit: Int = 3
    /// Lockout guard: how far below a drive's own TryLimit sedlock stops.
    public var tryLimitMargin: Int = 2
    /// Boot-loop guard: consecutive failed boots after which a boot makes no attempt.
    public var bootLoopLimit: Int = 3
    public var bootIDPath: String = BootIdentity.defaultPath
    /// Where `local` AK files live (default: `keys/` in the state directory).
    public var localKeyDirectory: String?
    public var credentialsDirectory: String? = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"]
    /// The clevis program that seals and opens `clevis`-kept keys.
    public var clevisCommand: String = "/usr/bin/clevis"
    public var machineIDPath: String = "/etc/machine-id"
    public var sysfs: String = "/sys"
    /// Who asks (for the audit log): "uid 0", "uid 0 via control socket".
    public var actor: String = "uid \(getuid())"
    /// Reads (status, key server status) answer from the monitors' latest results instead of
    /// testing key servers live: sedlockd, whose monitors test them on their own threads. A
    /// one-shot CLI run has no monitor and tests live.
    public var readsFromMonitors = false
    /// After each finished rekey, retired generations beyond the newest this many that no drive
    /// needs are destroyed (nil: kept until `sedlock keys destroy`).
    public var keepRetiredGenerations: Int?

    public init(stateDirectory: StateDirectory) {
        self.stateDirectory = stateDirectory
    }

    public var keyDirectory: String { localKeyDirectory ?? stateDirectory.path + "/keys" }
}

/// The configuration in force, shared by the lock manager and its key service; sedlockd swaps it
/// on reload.
final class CurrentConfiguration: Sendable {
    private let value: Mutex<LockManagerConfiguration>

    init(_ configuration: LockManagerConfiguration) { value = Mutex(configuration) }

    var now: LockManagerConfiguration { value.withLock { $0 } }

    func update(_ change: (inout LockManagerConfiguration) throws(ControlError) -> Void) throws(ControlError) {
        try value.withLock { (current: inout LockManagerConfiguration) throws(ControlError) in try change(&current) }
    }
}
