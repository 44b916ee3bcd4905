import Platform
import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Crash torture over 12-drive arrays: `sedlock setup` and `sedlock rekey` are killed (SIGKILL)
/// at random moments, or the simulator crashes half way through persisting a drive's state; the
/// next command finishes the work. After every point every drive must still open with the
/// array's key and have counted at most one failed authentication for it.
/// SEDLOCK_TORTURE_POINTS (default 200) and SEDLOCK_TORTURE_SECONDS (default 900) bound the run.
@Suite("Crash torture", .serialized)
struct CrashTortureTests {
    static let environment = ProcessInfo.processInfo.environment
    static var points: Int { Int(environment["SEDLOCK_TORTURE_POINTS"] ?? "") ?? 200 }
    static var budget: Double { Double(environment["SEDLOCK_TORTURE_SECONDS"] ?? "") ?? 900 }
    static let drives = 12
    static let pointsPerArray = 10

    final class Episode {
        let array: ServedArray
        let scratch: String
        var state: [String] { ["--direct", "--state-dir", scratch + "/state", "--boot-id-file", scratch + "/boot_id"] }
        var addresses: [String] { (0..<CrashTortureTests.drives).map { array.device($0) } }

        init() throws {
            array = try ServedArray(drives: CrashTortureTests.drives, extra: ["--session-timeout", "1"])
            scratch = "/tmp/sedlock-torture-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o700])
            try newBoot()
        }

        deinit { try? FileManager.default.removeItem(atPath: scratch) }

        func newBoot() throws {
            try Data((UUID().uuidString + "\n").utf8).write(to: URL(fileURLWithPath: scratch + "/boot_id"))
        }

        /// Every drive's lifetime count of failed authentications.
        func failures() throws -> [Int] {
            let status = try run("sedsim", ["status", array.directory, "--json"])
            let reports = try JSONSerialization.jsonObject(with: status.stdout) as? [[String: Any]] ?? []
            return reports.map { $0["totalFailedAuthentications"] as? Int ?? -1 }
        }

        /// Runs `arguments` and SIGKILLs it after `delay` seconds (if it has not finished).
        func killed(_ arguments: [String], after delay: Double) throws {
            let process = try SpawnedProcess(Binaries.url("sedlock").path, arguments)
            usleep(useconds_t(delay * 1_000_000))
            process.signal(SIGKILL)
            process.wait()
        }

        /// Arms the simulator to crash half way through persisting drive `drive`'s next change,
        /// runs `arguments` to its end, and restarts the simulator if it crashed.
        func simulatorCrash(_ arguments: [String], drive: Int) throws {
            #expect(try run("sedsim", ["fault", array.directory, "\(drive)", "--crash"]).status == 0)
            _ = try run("sedlock", arguments, timeout: 120)
            if array.waitForExit(timeout: 0.5) != nil { try array.start() }
            // Disarm: the crash may not have fired (the drive had nothing more to persist).
            _ = try? run("sedsim", ["fault", array.directory, "\(drive)"])
        }
    }

    @Test("SIGKILL and simulator crashes at random points of setup and rekey: every drive opens, at most one failed authentication each")
    func torture() throws {
        var rng = SeededRandom(seed: 0x5ED_10C4)
        let start = Date()
        var done = 0
        var worst = 0
        while done < Self.points && Date().timeIntervalSince(start) < Self.budget {
            let episode = try Episode()
            for index in 0..<Self.pointsPerArray where done < Self.points {
                let isSetup = index == 0
                let command = isSetup ? ["setup", "--drives"] + episode.addresses + episode.state : ["rekey"] + episode.state
                let before = try episode.failures()
                if Int.random(in: 0..<3, using: &rng) == 0 {
                    try episode.simulatorCrash(command, drive: Int.random(in: 0..<Self.drives, using: &rng))
                } else {
                    try episode.killed(command, after: Double.random(in: 0...(isSetup ? 0.45 : 0.25), using: &rng))
                }
                // Recovery: the same setup again starts or finishes it (a finished one says so);
                // unlock rolls a rekey forward.
                let recovery = isSetup ? command : ["unlock", "--all"] + episode.state
                func finished(_ result: CommandResult) -> Bool {
                    result.status == 0 || (isSetup && result.status == 64 && result.stderr.contains("already set up"))
                }
                var recovered = try run("sedlock", recovery, timeout: 120)
                for _ in 0..<3 where !finished(recovered) {
                    recovered = try run("sedlock", recovery, timeout: 120)
                }
                if finished(recovered) { recovered.status = 0 }
                #expect(recovered.status == 0, "point \(done) (\(isSetup ? "setup" : "rekey")): \(recovered.stderr) \(recovered.output)")
                let after = try episode.failures()
                let added = zip(before, after).map { $1 - $0 }
                worst = max(worst, added.max() ?? 0)
                #expect(added.allSatisfy { $0 <= 1 }, "point \(done): failed authentications added per drive \(added)")
                done += 1
            }
            // Every drive still opens with the array's key after a power cycle.
            #expect(try run("sedsim", ["power-cycle", episode.array.directory]).status == 0)
            try episode.newBoot()
            let boot = try run("sedlock", ["unlock", "--all", "--boot"] + episode.state, timeout: 120)
            #expect(boot.status == 0, "boot after the episode: \(boot.stderr) \(boot.output)")
            let status = try run("sedlock", ["status", "--json"] + episode.state)
            #expect(!status.output.contains("\"locked\" : true"))
        }
        print("crash torture: \(done) points over \(Int(Date().timeIntervalSince(start))) s, at most \(worst) failed authentication(s) added to a drive by one point")
        #expect(done >= min(Self.points, 20))
    }
}
