import ControlAPI
import Foundation
import Keys
import LockManager
import LockState
import Opal
import Platform
import SedSimulator
import SimulatorTestSupport
import Synchronization

/// A simulated array and a lock manager over it, with its state, key directory and boot id in a
/// scratch directory.
final class LockManagerFixture: Sendable {
    let drives: ArrayFixture
    let root: String
    let time: ManualTime
    let configuration: LockManagerConfiguration
    /// How the lock manager reaches key servers (TLS unless a test carries KMIP in-process).
    let connector: any KeyServerConnector
    private let current: Mutex<LockManager>

    /// The lock manager of the running "process"; a reboot starts a new one (its keytable empty).
    var manager: LockManager { current.withLock { $0 } }

    init(drives count: Int = 4, settings: DriveSettings = DriveSettings(), subsystemClasses: [SimulatedSSC]? = nil,
         lockoutLimit: Int = 3, connector: any KeyServerConnector = TLSKeyServerConnector()) throws {
        drives = try ArrayFixture(drives: count, settings: settings, subsystemClasses: subsystemClasses)
        root = FileManager.default.temporaryDirectory.appendingPathComponent("lockmgr-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        time = ManualTime()
        // Host and drives share the test's clock: a session a cut left open expires when the
        // host's wait for the lost answer (or a test's advance) passes its SessionTimeout, never
        // because a loaded machine ran slowly.
        for drive in drives.array.drives { drive.useClock(time) }
        var configuration = LockManagerConfiguration(stateDirectory: StateDirectory(path: root + "/state"))
        configuration.bootIDPath = root + "/boot_id"
        configuration.credentialsDirectory = nil
        configuration.machineIDPath = root + "/machine-id"
        configuration.lockoutLimit = lockoutLimit
        configuration.commandTimeout = 5
        try Data("4f1c0a9e2b7d4c1e8a3f5b6c7d8e9f00\n".utf8).write(to: URL(fileURLWithPath: configuration.machineIDPath))
        self.configuration = configuration
        self.connector = connector
        current = Mutex(LockManager(configuration: configuration, factory: drives.factory, time: time, connector: connector))
        try newBoot()
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    var addresses: [String] { drives.array.drives.indices.map { drives.address($0) } }
    var keyDirectory: String { manager.configuration.keyDirectory }

    /// A new kernel boot id, every drive power-cycled, and a new lock manager process (what a reboot does).
    func reboot() throws {
        try newBoot()
        for drive in drives.array.drives { try drive.powerCycle() }
        restartManager()
    }

    /// A new lock manager process: nothing in memory survives, the state does.
    func restartManager() {
        current.withLock { $0.releaseState() }
        let fresh = LockManager(configuration: configuration, factory: drives.factory, time: time, connector: connector)
        current.withLock { $0 = fresh }
    }

    private func newBoot() throws {
        try Data((UUID().uuidString.lowercased() + "\n").utf8).write(to: URL(fileURLWithPath: root + "/boot_id"))
    }

    func drive(_ n: Int) -> SimulatedDrive { drives.array.drives[n] }

    /// Lets the drives' SessionTimeout (30 s) pass on the shared clock: a session a cut left open
    /// ends, as it would on a real drive a while later.
    func letDriveSessionsExpire() { time.advance(nanoseconds: 31_000_000_000) }

    /// Failed authentications the drive itself has counted (every authority), and its lifetime count.
    func driveFailures(_ n: Int) -> (tries: UInt64, consecutive: Int) {
        let report = drive(n).statusReport(index: n)
        return (report.tries.reduce(0) { $0 + $1.tries }, report.consecutiveFailedAuthentications)
    }

    func isLocked(_ n: Int) -> Bool {
        (try? drive(n).read(lba: 0, count: 1)) == nil
    }

    /// The one key file setup wrote.
    func keyFile() throws -> String {
        let files = try FileManager.default.contentsOfDirectory(atPath: keyDirectory).filter { $0.hasSuffix(".ak") }
        guard files.count == 1 else { throw FixtureFailure("expected one key file, found \(files)") }
        return keyDirectory + "/" + files[0]
    }

    /// The AK kept in generation `keyID`'s key file (nil when there is none).
    func keyFileAK(keyID: String) throws -> Secret? {
        let path = keyDirectory + "/" + keyID + ".ak"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let field = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).last,
              let raw = Data(base64Encoded: String(field)) else { return nil }
        return Secret(Array(raw))
    }

    func setUpArray() async throws -> ArrayReport {
        try await manager.setup(SetupRequest(drives: addresses, provider: .local, keyTag: "array-test"))
    }
}

struct FixtureFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
