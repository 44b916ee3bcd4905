import Foundation
import TestSupport
import Testing

/// The lock manager as an operator uses it: `sedlock setup|lock|unlock|status|guard` against a
/// served simulated array, with state and boot id in a scratch directory.
@Suite("Array commands through the CLI", .serialized)
struct ArrayCommandTests {
    @Test("setup, lock, reboot, boot unlock, missing key held with 0 attempts, exit codes, JSON, bad input")
    func arrayLifecycle() throws {
        let array = try ServedArray(drives: 3)
        let scratch = "/tmp/sedlock-e2e-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let bootID = scratch + "/boot_id"
        func newBoot() throws { try Data((UUID().uuidString + "\n").utf8).write(to: URL(fileURLWithPath: bootID)) }
        try newBoot()
        let state = ["--direct", "--state-dir", scratch + "/state", "--boot-id-file", bootID]
        let drives = (0..<3).map { array.device($0) }

        let setup = try run("sedlock", ["setup", "--drives"] + drives + ["--key-tag", "e2e"] + state)
        #expect(setup.status == 0, "\(setup.stderr)")
        #expect(setup.output.components(separatedBy: "set up").count == 4)
        // A second setup is refused (already set up) and changes nothing.
        let again = try run("sedlock", ["setup", "--drives"] + drives + state)
        #expect(again.status == 64 && again.stderr.contains("already set up"))

        #expect(try run("sedlock", ["lock", "--all"] + state).status == 0)
        #expect(try run("sedsim", ["read", array.directory, "1", "--lba", "0"]).status != 0)
        #expect(try run("sedlock", ["unlock", drives[1]] + state).status == 0)
        #expect(try run("sedsim", ["read", array.directory, "1", "--lba", "0"]).status == 0)

        // Reboot without the key: held, exit 15, and the drives saw no authentication at all.
        #expect(try run("sedsim", ["power-cycle", array.directory]).status == 0)
        try newBoot()
        let keys = scratch + "/state/keys"
        try FileManager.default.moveItem(atPath: keys, toPath: keys + ".away")
        let noKey = try run("sedlock", ["unlock", "--all", "--boot", "--json"] + state)
        #expect(noKey.status == 15)
        let report = try JSONSerialization.jsonObject(with: noKey.stdout) as? [String: Any]
        let outcomes = try #require(report?["drives"] as? [[String: Any]])
        #expect(outcomes.count == 3 && outcomes.allSatisfy { $0["result"] as? String == "keyUnavailable" && $0["attempts"] as? Int == 0 })
        let simStatus = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout)
            as? [[String: Any]]
        #expect(simStatus?.allSatisfy { $0["consecutiveFailedAuthentications"] as? Int == 0 } == true)

        try FileManager.default.moveItem(atPath: keys + ".away", toPath: keys)
        let boot = try run("sedlock", ["unlock", "--all", "--boot"] + state)
        #expect(boot.status == 0, "\(boot.stderr)")
        let status = try run("sedlock", ["status", "--json"] + state)
        #expect(status.status == 0 && status.output.contains("\"locked\" : false") && !status.output.contains("\"locked\" : true"))

        // Bad input: clear errors, nothing changed.
        #expect(try run("sedlock", ["unlock"] + state).status == 64)
        #expect(try run("sedlock", ["unlock", "--all", drives[0]] + state).status == 64)
        let unknown = try run("sedlock", ["lock", "sim:/tmp/not-in-array/0"] + state)
        #expect(unknown.status == 64 && unknown.stderr.contains("not a drive of the array"))
        #expect(try run("sedlock", ["guard", "reset", drives[0]] + state).status == 64)  // needs --yes
        #expect(try run("sedlock", ["guard", "reset", drives[0], "--yes"] + state).status == 0)
        // A host not set up: status answers so (exit 0); what needs a state says there is none.
        let noArray = try run("sedlock", ["status", "--direct", "--state-dir", scratch + "/nothing"])
        #expect(noArray.status == 0 && noArray.output.contains("no array is set up"), "\(noArray.output) \(noArray.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch + "/nothing"), "status made no state")
        let noState = try run("sedlock", ["keys", "list", "--direct", "--state-dir", scratch + "/nothing"])
        #expect(noState.status == 13 && noState.stderr.contains("no sedlock state"))
        // The state and every output hold no key material.
        let keyText = try String(contentsOfFile: try FileManager.default.contentsOfDirectory(atPath: keys).map { keys + "/" + $0 }[0],
                                 encoding: .utf8)
        let akBase64 = String(keyText.split(separator: " ")[3].dropLast())
        for output in [setup.output, setup.stderr, boot.output, status.output, noKey.output] {
            #expect(!output.contains(akBase64))
        }
    }

    @Test("one array of mixed addresses: a preload-mapped NVMe node, a preload-mapped SAS node and a sim: drive")
    func mixedAddresses() throws {
        let nvme = try ServedArray(drives: 2)
        let sas = try ServedArray(drives: 1, extra: ["--kind", "sas"])
        let scratch = "/tmp/sedlock-mix-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Data("mixed-boot\n".utf8).write(to: URL(fileURLWithPath: scratch + "/boot_id"))
        let state = ["--direct", "--state-dir", scratch + "/state", "--boot-id-file", scratch + "/boot_id"]
        // Drive 0 of the NVMe array as /dev/nvme230, the SAS drive as /dev/sg231; drive 1 over the simulator's link.
        let environment = ["LD_PRELOAD": Binaries.preloadLibrary,
                           "SEDSIM_DEVICES": "/dev/nvme230=\(nvme.directory)/0,/dev/sg231=\(sas.directory)/0"]
        let drives = ["/dev/nvme230", "/dev/sg231", nvme.device(1)]
        let setup = try run("sedlock", ["setup", "--drives"] + drives + state, environment: environment)
        #expect(setup.status == 0, "\(setup.stderr) \(setup.output)")
        #expect(try run("sedsim", ["power-cycle", nvme.directory]).status == 0)
        #expect(try run("sedsim", ["power-cycle", sas.directory]).status == 0)
        let unlock = try run("sedlock", ["unlock", "--all", "--json"] + state, environment: environment)
        #expect(unlock.status == 0, "\(unlock.stderr) \(unlock.output)")
        #expect(unlock.output.components(separatedBy: "\"unlocked\"").count == 4)
        let status = try run("sedlock", ["status"] + state, environment: environment)
        for drive in drives { #expect(status.output.contains(drive + "  ")) }
        #expect(!status.output.contains("LOCKED"))
    }

    @Test("a SAS drive set up by the sedutil-style host (sedutil 1.20's salt: the INQUIRY vendor identification NUL-padded): setup adopts it by default, no try wasted")
    func adoptSedutilSASDrive() throws {
        let array = try ServedArray(drives: 1, extra: ["--kind", "sas"])
        let nodes = ["/dev/sdsim190"]
        let environment = array.preloadEnvironment(nodes)
        let password = try pinFile("sedutil sas password")
        let scratch = try AdoptionScratch()
        defer {
            try? FileManager.default.removeItem(atPath: password)
            withExtendedLifetime(scratch) {}  // the state lives as long as the test
        }
        let state = scratch.state
        let host = try HostToolConventionTests.hostTool(["initialsetup", "sedutil sas password"], node: nodes[0], environment: environment)
        #expect(host.status == 0, "\(host.stderr)")
        let adopted = try run("sedlock", ["setup", "--drives"] + nodes + state
                                  + ["--adopt-pin-file", password, "--pin-derivation", "sedutil-sha1"], environment: environment)
        #expect(adopted.status == 0 && adopted.output.contains("\(nodes[0]): adopted"), "\(adopted.stderr) \(adopted.output)")
        let status = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout)
            as? [[String: Any]]
        #expect(status?.allSatisfy { $0["totalFailedAuthentications"] as? Int == 0 } == true, "\(String(describing: status))")
    }

    @Test("an array with a drive first set up by the sedutil-style host: setup adopts it with its password, no try wasted")
    func adoptSedutilDrive() throws {
        let array = try ServedArray(drives: 2, extra: ["--kind", "sata"])
        let nodes = ["/dev/sdsim180", "/dev/sdsim181"]
        let environment = array.preloadEnvironment(nodes)
        let password = try pinFile("sedutil password 1")
        let scratch = try AdoptionScratch()
        defer {
            try? FileManager.default.removeItem(atPath: password)
            withExtendedLifetime(scratch) {}  // the state lives as long as the test
        }
        let state = scratch.state
        // sedutil's --initialsetup on drive 0, with its PBKDF2-SHA1 hashed password, salted by a
        // build that took the serial from udev (spaces trimmed).
        let host = try HostToolConventionTests.hostTool(["initialsetup", "sedutil password 1"], node: nodes[0],
                                                        options: ["--salt=trimmed"], environment: environment)
        #expect(host.status == 0, "\(host.stderr)")

        // Without the password, setup refuses and touches nothing.
        let refused = try run("sedlock", ["setup", "--drives"] + nodes + state, environment: environment)
        #expect(refused.status == 64 && refused.stderr.contains("already owned"))
        // With it but no salt named: the SATA serial salts three ways, so nothing is tried.
        let ambiguous = try run("sedlock", ["setup", "--drives"] + nodes + state
                                    + ["--adopt-pin-file", password, "--pin-derivation", "sedutil-sha1"], environment: environment)
        #expect(ambiguous.status == 64 && ambiguous.stderr.contains("--pin-salt")
                && ambiguous.stderr.contains("reported, ata-unswapped, trimmed"), "\(ambiguous.stderr)")
        let nulPaddedOnSATA = try run("sedlock", ["setup", "--drives"] + nodes + state
                                          + ["--adopt-pin-file", password, "--pin-derivation", "sedutil-sha1", "--pin-salt", "nul-padded"],
                                      environment: environment)
        #expect(nulPaddedOnSATA.status == 64 && nulPaddedOnSATA.stderr.contains("on a sata drive"))
        let adopted = try run("sedlock", ["setup", "--drives"] + nodes + state
                                  + ["--adopt-pin-file", password, "--pin-derivation", "sedutil-sha1", "--pin-salt", "trimmed"],
                              environment: environment)
        #expect(adopted.status == 0, "\(adopted.stderr) \(adopted.output)")
        #expect(adopted.output.contains("\(nodes[0]): adopted") && adopted.output.contains("\(nodes[1]): set up"))
        #expect(try run("sedsim", ["power-cycle", array.directory]).status == 0)
        #expect(try run("sedlock", ["unlock", "--all"] + state, environment: environment).status == 0)
        let status = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout)
            as? [[String: Any]]
        #expect(status?.allSatisfy { $0["totalFailedAuthentications"] as? Int == 0 } == true)
    }
}

/// A state directory and boot id of its own for one adoption test (removed with it).
final class AdoptionScratch {
    let path = "/tmp/sedlock-adopt-\(UUID().uuidString.prefix(8))"
    var state: [String] { ["--direct", "--state-dir", path + "/state", "--boot-id-file", path + "/boot_id"] }

    init() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        try Data("adopt-boot\n".utf8).write(to: URL(fileURLWithPath: path + "/boot_id"))
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
