import Foundation
import Platform
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Crash torture across `rdl enable` and `rdl rotate`: the command is SIGKILLed at a random moment
/// (or the simulator crashes half way through persisting a drive); the next unlock rolls the
/// journaled rekey forward. No drive is lost: after every episode each drive opens at boot under
/// RDL, and no point costs a drive more than one failed authentication.
/// SEDLOCK_RDL_TORTURE_POINTS (default 24) bounds the run.
@Suite("Crash torture across RDL enable and rotate", .serialized)
struct RDLTortureTests {
    static var points: Int { Int(ProcessInfo.processInfo.environment["SEDLOCK_RDL_TORTURE_POINTS"] ?? "") ?? 24 }
    static let drives = 8
    static let pointsPerEpisode = 6

    @Test("SIGKILL and simulator crashes at random points of rdl enable and rotate: every drive opens under RDL")
    func torture() throws {
        var rng = SeededRandom(seed: 0x0D1_5EA5E)
        var done = 0
        var worst = 0
        while done < Self.points {
            let f = try RDLFixture(drives: Self.drives, simulator: ["--session-timeout", "1"])
            func failures() throws -> [Int] {
                let status = try run("sedsim", ["status", f.array.directory, "--json"])
                let reports = try JSONSerialization.jsonObject(with: status.stdout) as? [[String: Any]] ?? []
                return reports.map { $0["totalFailedAuthentications"] as? Int ?? -1 }
            }
            func enabled() throws -> Bool {
                try run("sedlock", ["rdl", "status"] + f.state).output.contains("rapid data locking: enabled")
            }
            for _ in 0..<Self.pointsPerEpisode where done < Self.points {
                // Enable until RDL is in force (a kill before its journal began leaves it off), then rotate.
                let command = try enabled() ? ["rdl", "rotate"] + f.state : ["rdl", "enable", "--kmip", "ks1", "--yes"] + f.state
                let before = try failures()
                if Int.random(in: 0..<3, using: &rng) == 0 {
                    #expect(try run("sedsim", ["fault", f.array.directory, "\(Int.random(in: 0..<Self.drives, using: &rng))", "--crash"]).status == 0)
                    _ = try run("sedlock", command, timeout: 120)
                    if f.array.waitForExit(timeout: 0.5) != nil { try f.array.start() }
                    for drive in 0..<Self.drives { _ = try? run("sedsim", ["fault", f.array.directory, "\(drive)"]) }
                } else {
                    let process = try SpawnedProcess(Binaries.url("sedlock").path, command)
                    usleep(useconds_t(Double.random(in: 0...0.3, using: &rng) * 1_000_000))
                    process.signal(SIGKILL)
                    process.wait()
                }
                // Recovery: unlock rolls an unfinished rekey forward (retried while a killed session times out).
                var recovered = try run("sedlock", ["unlock", "--all"] + f.state, timeout: 120)
                for _ in 0..<3 where recovered.status != 0 {
                    recovered = try run("sedlock", ["unlock", "--all"] + f.state, timeout: 120)
                }
                #expect(recovered.status == 0, "point \(done) (\(command[1])): \(recovered.stderr) \(recovered.output)")
                let added = zip(before, try failures()).map { $1 - $0 }
                worst = max(worst, added.max() ?? 0)
                #expect(added.allSatisfy { $0 <= 1 }, "point \(done): failed authentications added per drive \(added)")
                done += 1
            }
            // Finish whatever is unfinished, then a reboot: every drive opens, under RDL.
            if !(try enabled()) { #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + f.state).status == 0) }
            #expect(try enabled())
            #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
            try f.newBoot()
            let boot = try run("sedlock", ["unlock", "--all", "--boot"] + f.state, timeout: 120)
            #expect(boot.status == 0, "boot after the episode: \(boot.stderr) \(boot.output)")
            // Without the token (certificate refused), the same boot holds every drive with 0 attempts.
            #expect(try f.admin(["--distrust", "appliance"]))
            #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
            try f.newBoot()
            let before = try failures()
            #expect(try run("sedlock", ["unlock", "--all", "--boot"] + f.state, timeout: 120).status == 15)
            #expect(try failures() == before)
        }
        print("RDL crash torture: \(done) points, at most \(worst) failed authentication(s) added to a drive by one point")
    }
}
