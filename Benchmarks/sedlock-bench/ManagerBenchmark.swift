import ControlAPI
import Foundation
import LockManager
import LockState
import SecurityTransport
import SimulatorTransport

/// `sedlock-bench manager SEDSIM COUNT`: a COUNT-drive served array set up by the lock manager,
/// then, with the keytable loaded (as in sedlockd), unlock after a power cycle and lock on demand,
/// each timed over several rounds (median and best reported).
func managerBenchmark(_ args: [String]) async throws {
    guard args.count == 3, let count = Int(args[2]), count > 0 else {
        print("usage: sedlock-bench manager PATH-TO-SEDSIM DRIVES")
        exit(64)
    }
    let sedsim = args[1]
    // A simulated array serves at most 256 drives: larger counts are spread over several.
    let arrays = try stride(from: 0, to: count, by: 250).map { try ServedArray(sedsim: sedsim, drives: min(250, count - $0)) }
    defer { for array in arrays { array.stop() } }
    let root = "/tmp/sedlock-bench-state-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
    defer { try? FileManager.default.removeItem(atPath: root) }
    try Data("bench-boot\n".utf8).write(to: URL(fileURLWithPath: root + "/boot_id"))
    var configuration = LockManagerConfiguration(stateDirectory: StateDirectory(path: root + "/state"))
    configuration.bootIDPath = root + "/boot_id"
    configuration.credentialsDirectory = nil
    let manager = LockManager(configuration: configuration, factory: .withSimulator)
    let addresses = arrays.flatMap { array in (0..<array.drives).map { "sim:\(array.directory)/\($0)" } }

    var start = now()
    let setup = try await manager.setup(SetupRequest(drives: addresses, provider: .local))
    guard setup.allSucceeded else { print("setup failed: \(setup.drives.filter { !$0.succeeded }.prefix(3))"); exit(1) }
    print(String(format: "manager_\(count)_setup_ms %.1f", (now() - start) * 1000))

    var unlocks: [Double] = []
    var locks: [Double] = []
    // More rounds where they are cheap: this machine's timings vary by a few ms from run to run.
    for _ in 0..<(count <= 240 ? 15 : 5) {
        for array in arrays { try powerCycle(sedsim: sedsim, array: array.directory) }
        start = now()
        let unlock = try await manager.unlock(UnlockRequest(drives: .all))
        unlocks.append(now() - start)
        guard unlock.allSucceeded else { print("unlock failed: \(unlock.drives.filter { !$0.succeeded }.prefix(3))"); exit(1) }
        start = now()
        let lock = try await manager.lock(LockRequest(drives: .all))
        locks.append(now() - start)
        guard lock.allSucceeded else { print("lock failed: \(lock.drives.filter { !$0.succeeded }.prefix(3))"); exit(1) }
    }
    unlocks.sort()
    locks.sort()
    print(String(format: "manager_\(count)_unlock_ms %.1f", percentile(unlocks, 0.5) * 1000))
    print(String(format: "manager_\(count)_unlock_best_ms %.1f", unlocks[0] * 1000))
    print(String(format: "manager_\(count)_unlock_per_drive_ms %.3f", percentile(unlocks, 0.5) * 1000 / Double(count)))
    print(String(format: "manager_\(count)_lock_ms %.1f", percentile(locks, 0.5) * 1000))
}

private func powerCycle(sedsim: String, array: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: sedsim)
    process.arguments = ["power-cycle", array]
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
}
