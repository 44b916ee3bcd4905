import Foundation
import Testing

/// How one simulated drive is reached by a host that follows sedutil's conventions.
struct ConventionCase: CustomTestStringConvertible, Sendable {
    var createOptions: [String]
    var node: String
    /// What sedutil's identify step decides the drive is ("ata", "sas", "nvme").
    var transport: String
    var hostOptions: [String] = []
    /// Whether sedlock derives the same PIN from the same password (the serial salt agrees).
    var sameSalt = true
    var testDescription: String { "\(node) (\(createOptions.joined(separator: " "))) as \(transport) \(hostOptions.joined(separator: " "))" }
}

/// sedutil-cli is not packaged for Debian or PyPI, so it cannot run here. Tests/HostTools holds a
/// host that puts on the wire what sedutil puts there — its CDBs and ioctls, 512-byte padding,
/// medium-atom PINs, PBKDF2 salts, and replies read by token index — and these tests run
/// sedutil's command sequences with it through the preload library, against each kind of drive.
@Suite("A host following sedutil's conventions, through device nodes", .serialized)
struct HostToolConventionTests {
    let password = "opal-under-test"
    let payload = Data("sealed by the PBA\n".utf8)

    static let cases: [ConventionCase] = [
        ConventionCase(createOptions: ["--kind", "sata"], node: "/dev/sdsim170", transport: "ata"),
        ConventionCase(createOptions: ["--kind", "sas"], node: "/dev/sdsim171", transport: "sas",
                       hostOptions: ["--sas-inc512=1"], sameSalt: false),
        ConventionCase(createOptions: ["--kind", "sas"], node: "/dev/sdsim172", transport: "sas",
                       hostOptions: ["--sas-inc512=0"], sameSalt: false),
        ConventionCase(createOptions: ["--kind", "nvme"], node: "/dev/nvme170", transport: "nvme"),
    ]

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("HostTools/sedutil_style_host.py").path
    }

    /// Runs one command of the sedutil-convention host against `node` through the preload library.
    static func hostTool(_ args: [String], node: String, options: [String] = [],
                         environment: [String: String]) throws -> CommandResult {
        try run("/usr/bin/env", ["python3", script] + args + [node] + options, environment: environment)
    }

    @Test("query, initial setup, lock on power cycle, PBA unlock, list ranges, revert without erase, PSID revert",
          arguments: cases)
    func sedutilSequences(_ c: ConventionCase) throws {
        let array = try ServedArray(drives: 1, extra: c.createOptions)
        let env = array.preloadEnvironment([c.node])
        func host(_ args: [String], expect status: Int32 = 0) throws -> [String: Any] {
            let r = try Self.hostTool(args, node: c.node, options: c.hostOptions, environment: env)
            #expect(r.status == status, "host \(args.first ?? ""): \(r.stderr)")
            guard status == 0 else { return ["stderr": r.stderr] }
            let object = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
            #expect(object?["transport"] as? String == c.transport)
            return object ?? [:]
        }
        func sim(_ args: [String], stdin: Data? = nil) throws -> CommandResult {
            try run("sedsim", args, stdin: stdin)
        }
        let status = try #require(try JSONSerialization.jsonObject(with: sim(["status", array.directory, "--json"]).stdout)
                                  as? [[String: Any]])
        let serial = try #require(status.first?["serial"] as? String)
        let psid = try #require(status.first?["psid"] as? String)

        let query = try host(["query"])
        if c.transport != "sas" { #expect((query["serial"] as? String)?.trimmingCharacters(in: .whitespaces.union(.controlCharacters)) == serial) }
        #expect((query["features"] as? [Int])?.contains(0x0203) == true)
        #expect((query["features"] as? [Int])?.contains(0x0201) == true, "Single User Mode is announced")
        #expect(query["singleUserAny"] as? Bool == false, "no range is in Single User Mode yet")
        let properties = query["properties"] as? [String: Int] ?? [:]
        #expect((properties["MaxComPacketSize"] ?? 0) >= 2048, "\(properties)")
        #expect(query["lockingEnabled"] as? Bool == false)

        _ = try host(["initialsetup", password])
        let owned = try host(["query"])
        #expect(owned["lockingEnabled"] as? Bool == true && owned["locked"] as? Bool == false && owned["mbrDone"] as? Bool == true)
        #expect(try sim(["write", array.directory, "0", "--lba", "4096"], stdin: payload).status == 0)
        _ = try host(["enablelockingrange", "0", password])
        #expect(try sim(["power-cycle", array.directory]).status == 0)

        // After power-on: locked, and the shadow MBR (the PBA image) stands in front of the media.
        let cold = try host(["query"])
        #expect(cold["locked"] as? Bool == true && cold["mbrDone"] as? Bool == false)
        let shadowed = try sim(["read", array.directory, "0", "--lba", "4096"])
        #expect(shadowed.status == 0 && shadowed.stdout.prefix(payload.count) != payload)
        _ = try host(["setmbrdone", "on", password])
        #expect(try sim(["read", array.directory, "0", "--lba", "4096"]).stderr.contains("data protect"))
        let wrong = try host(["setlockingrange", "0", "RW", "not-the-password"], expect: 1)
        #expect((wrong["stderr"] as? String)?.contains("Session start failed rc = 1") == true, "\(wrong)")

        let ranges = try #require(try host(["listlockingranges", password])["ranges"] as? [[String: Any]])
        #expect(ranges.count >= 2)
        #expect(ranges.first?["readLocked"] as? Bool == true && ranges.first?["readLockEnabled"] as? Bool == true)
        #expect(ranges.dropFirst().allSatisfy { $0["readLocked"] as? Bool == false && $0["length"] as? Int == 0 })

        _ = try host(["setlockingrange", "0", "RW", password])
        #expect(try sim(["read", array.directory, "0", "--lba", "4096"]).stdout.prefix(payload.count) == payload)

        if c.sameSalt {
            // A drive set up by sedutil, adopted by sedlock with the same password.
            let pinPath = try pinFile(password)
            defer { try? FileManager.default.removeItem(atPath: pinPath) }
            let locked = try run("sedlock", ["drive", "lock", c.node, "--pin-file", pinPath, "--pin-derivation", "sedutil-sha1"],
                                 environment: env)
            #expect(locked.status == 0, "\(locked.stderr)")
            #expect(try sim(["read", array.directory, "0", "--lba", "4096"]).stderr.contains("data protect"))
            _ = try host(["setlockingrange", "0", "RW", password])
        }

        _ = try host(["revertnoerase", password])
        #expect(try host(["query"])["lockingEnabled"] as? Bool == false)
        _ = try host(["reverttper", password])
        #expect(try sim(["read", array.directory, "0", "--lba", "4096"]).stdout.prefix(payload.count) == payload,
                "reverting without erase lost the data")
        _ = try host(["reverttper", psid, "--psid"])
        let after = try sim(["status", array.directory])
        #expect(after.output.contains("owned: no"), "\(after.output)")
    }

    @Test("Single User Mode through sedutil's --setup_SUM: the range's user owns it, Admin1 cannot lock it or change the user's PIN")
    func singleUserMode() throws {
        let c = Self.cases[0]
        let array = try ServedArray(drives: 1, extra: c.createOptions)
        let env = array.preloadEnvironment([c.node])
        let setup = try Self.hostTool(["setup_sum", "1", "2048", "4096", password, "user two"], node: c.node, environment: env)
        #expect(setup.status == 0, "\(setup.stderr)")
        let query = try Self.hostTool(["query"], node: c.node, environment: env)
        let object = try JSONSerialization.jsonObject(with: query.stdout) as? [String: Any]
        #expect(object?["lockingEnabled"] as? Bool == true && object?["singleUserAny"] as? Bool == true)

        // User2 locks range 1 with its own password; Admin1 cannot unlock it.
        #expect(try Self.hostTool(["setlockingrange_sum", "1", "LK", "user two"], node: c.node, environment: env).status == 0)
        let adminUnlock = try Self.hostTool(["setlockingrange", "1", "RW", password], node: c.node, environment: env)
        #expect(adminUnlock.status == 1 && adminUnlock.stderr.contains("status 1"), "\(adminUnlock.stderr)")
        let read = try run("sedsim", ["read", array.directory, "0", "--lba", "2048"])
        #expect(read.status != 0, "range 1 reads while its user has locked it")
        #expect(try Self.hostTool(["setlockingrange_sum", "1", "RW", "user two"], node: c.node, environment: env).status == 0)
        #expect(try run("sedsim", ["read", array.directory, "0", "--lba", "2048"]).status == 0)
        let wrongUser = try Self.hostTool(["setlockingrange_sum", "1", "LK", "not the user"], node: c.node, environment: env)
        #expect(wrongUser.status == 1)
    }

    @Test("sedutil's Enterprise SSC sequences on a SAS Enterprise drive: query, initial setup, lock on power cycle, a wrong password answered False, one band listed, sedlock locking the band set up by sedutil, Erase by the EraseMaster, PSID revert")
    func enterpriseSequences() throws {
        let node = "/dev/sdsim173"
        let array = try ServedArray(drives: 1, extra: ["--kind", "sas", "--ssc", "enterprise"])
        let env = array.preloadEnvironment([node])
        func host(_ args: [String], expect status: Int32 = 0) throws -> [String: Any] {
            let r = try Self.hostTool(args, node: node, options: ["--sas-inc512=0"], environment: env)
            #expect(r.status == status, "host \(args.first ?? ""): \(r.stderr)")
            guard status == 0 else { return ["stderr": r.stderr] }
            let object = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
            #expect(object?["transport"] as? String == "sas" && object?["enterprise"] as? Bool == true)
            return object ?? [:]
        }
        func sim(_ args: [String], stdin: Data? = nil) throws -> CommandResult { try run("sedsim", args, stdin: stdin) }
        let status = try #require(try JSONSerialization.jsonObject(with: sim(["status", array.directory, "--json"]).stdout)
                                  as? [[String: Any]])
        let psid = try #require(status.first?["psid"] as? String)

        let query = try host(["query"])
        let features = query["features"] as? [Int] ?? []
        #expect(features.contains(0x0100) && !features.contains(0x0203) && !features.contains(0x0402), "\(features)")
        #expect(query["lockingEnabled"] as? Bool == true, "the Enterprise Locking SP is always enabled")

        _ = try host(["initialsetup", password])
        #expect(try sim(["write", array.directory, "0", "--lba", "4096"], stdin: payload).status == 0)
        #expect(try sim(["power-cycle", array.directory]).status == 0)
        #expect(try host(["query"])["locked"] as? Bool == true)
        #expect(try sim(["read", array.directory, "0", "--lba", "4096"]).stderr.contains("data protect"))

        let wrong = try host(["setlockingrange", "0", "RW", "not-the-password"], expect: 1)
        #expect((wrong["stderr"] as? String)?.contains("response = false") == true, "\(wrong)")
        let band = try #require((try host(["listlockingranges", "0", password])["ranges"] as? [[String: Any]])?.first)
        #expect(band["name"] as? String == "Band0" && band["readLockEnabled"] as? Bool == true && band["readLocked"] as? Bool == true
                && band["lockOnReset"] as? Bool == true, "\(band)")
        _ = try host(["setlockingrange", "0", "RW", password])
        #expect(try sim(["read", array.directory, "0", "--lba", "4096"]).stdout.prefix(payload.count) == payload)

        // sedlock drives the band sedutil set up, with sedutil's password (salted as sedutil salts a SAS drive: its vendor field).
        let pinPath = try pinFile(password)
        defer { try? FileManager.default.removeItem(atPath: pinPath) }
        let locked = try run("sedlock", ["drive", "lock", node, "--pin-file", pinPath, "--pin-derivation", "sedutil-sha1",
                                         ], environment: env)
        #expect(locked.status == 0, "\(locked.stderr)")
        #expect(try sim(["read", array.directory, "0", "--lba", "4096"]).stderr.contains("data protect"))
        _ = try host(["setlockingrange", "0", "RW", password])

        _ = try host(["eraselockingrange", "0", password])
        let erased = try sim(["read", array.directory, "0", "--lba", "4096"])
        #expect(erased.status == 0 && erased.stdout.prefix(payload.count) != payload, "Erase left the data readable")
        _ = try host(["reverttper", psid, "--psid"])
        #expect(try sim(["status", array.directory]).output.contains("owned: no"))
    }
}
