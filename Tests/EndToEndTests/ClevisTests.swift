import Foundation
import TestSupport
import Testing

/// `--provider clevis` as an operator and the boot units use it, against Debian's clevis and a
/// real tang server on loopback.
@Suite("Keys sealed by clevis through the CLI and the boot unit", .serialized)
struct ClevisTests {
    @Test("setup --provider clevis; the local boot unit leaves the array to the network unit, which unlocks it; tang down: held, exit 15, 0 attempts; back: a rekey keeps the policy; bad options refused")
    func clevisThroughTheCommands() throws {
        let tang = try TangServer()
        let array = try ServedArray(drives: 2)
        let scratch = "/tmp/sedlock-e2e-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let bootID = scratch + "/boot_id"
        func newBoot() throws { try Data((UUID().uuidString + "\n").utf8).write(to: URL(fileURLWithPath: bootID)) }
        try newBoot()
        let paths = ["--state-dir", scratch + "/state", "--boot-id-file", bootID]
        let state = ["--direct"] + paths
        let drives = (0..<2).map { array.device($0) }

        #expect(try run("sedlock", ["setup", "--drives"] + drives + ["--clevis", tang.clevisConfig] + state).status == 64,
                "--clevis without --provider clevis")
        #expect(try run("sedlock", ["setup", "--drives"] + drives + ["--provider", "clevis", "--clevis-pin", "sss"] + state).status == 64)
        let setup = try run("sedlock", ["setup", "--drives"] + drives + ["--provider", "clevis", "--clevis", tang.clevisConfig] + state)
        #expect(setup.status == 0, "\(setup.stderr)")
        let sealed = try FileManager.default.contentsOfDirectory(atPath: scratch + "/state/keys")
        #expect(sealed.count == 1 && sealed[0].hasSuffix(".jwe"), "\(sealed)")

        #expect(try run("sedsim", ["power-cycle", array.directory]).status == 0)
        try newBoot()
        let local = try run("sedlockd", ["boot-unlock", "--keys", "local"] + paths)
        #expect(local.status == 0 && local.output.contains("need the network"), "\(local.output) \(local.stderr)")
        #expect(try run("sedsim", ["read", array.directory, "0", "--lba", "0"]).status != 0, "the local unit left it locked")
        let network = try run("sedlockd", ["boot-unlock", "--keys", "kmip", "--wait", "5"] + paths)
        #expect(network.status == 0 && network.output.contains("unlocked 2/2 drives"), "\(network.output) \(network.stderr)")
        #expect(try run("sedsim", ["read", array.directory, "0", "--lba", "0"]).status == 0)

        tang.stop()
        #expect(try run("sedsim", ["power-cycle", array.directory]).status == 0)
        try newBoot()
        let held = try run("sedlock", ["unlock", "--all", "--boot", "--json"] + state)
        #expect(held.status == 15, "\(held.output) \(held.stderr)")
        let outcomes = try #require((try JSONSerialization.jsonObject(with: held.stdout) as? [String: Any])?["drives"] as? [[String: Any]])
        #expect(outcomes.count == 2 && outcomes.allSatisfy { $0["result"] as? String == "keyUnavailable" && $0["attempts"] as? Int == 0 })
        #expect((outcomes.first?["detail"] as? String ?? "").contains("clevis decrypt"), "\(outcomes)")
        let drivesSeen = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout) as? [[String: Any]]
        #expect(drivesSeen?.allSatisfy { $0["totalFailedAuthentications"] as? Int == 0 } == true)

        try tang.start()
        #expect(try run("sedlock", ["unlock", "--all"] + state).status == 0)
        let rekey = try run("sedlock", ["rekey"] + state)
        #expect(rekey.status == 0, "\(rekey.output) \(rekey.stderr)")
        let keys = try run("sedlock", ["keys", "list"] + state)
        #expect(keys.output.components(separatedBy: "clevis").count == 3, "\(keys.output)")
    }
}
