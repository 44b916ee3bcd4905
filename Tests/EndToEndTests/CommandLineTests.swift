import Foundation
import Testing

/// The operator's view: `sedsim serve` in its own process, `sedlock` and `sedsim` run as commands.
@Suite("End to end through the CLI", .serialized)
struct CommandLineTests {
    let pin = "correct horse battery staple"
    let payload = Data("payroll records 2026\n".utf8)

    @Test("own, lock, power-cycle, unreadable, unlock, readable — and no PIN in any output")
    func demoFlow() throws {
        let array = try ServedArray(drives: 2)
        let dev = array.device(0)
        var outputs: [String] = []
        func step(_ tool: String, _ args: [String], stdin: Data? = nil, expect status: Int32 = 0) throws -> CommandResult {
            let r = try run(tool, args, stdin: stdin)
            outputs.append(r.output + r.stderr)
            #expect(r.status == status, "\(tool) \(args.joined(separator: " ")): \(r.stderr)")
            return r
        }
        let list = try step("sedlock", ["drive", "list", "--sim", array.directory, "--json"])
        // Real disks (from sysfs) come first; the simulated drives follow.
        let entries = (try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])?
            .filter { ($0["device"] as? String)?.hasPrefix("sim:") == true }
        #expect(entries?.count == 2 && entries?.first?["opal"] as? Bool == true)

        let discover = try step("sedlock", ["drive", "discover", dev, "--json"])
        let report = try JSONSerialization.jsonObject(with: discover.stdout) as? [String: Any]
        let names = (report?["features"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        #expect(names.contains("Opal v2") && names.contains("Locking") && names.contains("Block SID"))

        _ = try step("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", "-"], stdin: Data(pin.utf8))
        let pinPath = try pinFile(pin)
        defer { try? FileManager.default.removeItem(atPath: pinPath) }
        _ = try step("sedlock", ["drive", "setup-range", dev, "--range", "0", "--lock-on-reset", "power-cycle", "--pin-file", pinPath])
        _ = try step("sedsim", ["write", array.directory, "0", "--lba", "64"], stdin: payload)
        let readBack = try step("sedsim", ["read", array.directory, "0", "--lba", "64"])
        #expect(readBack.stdout.prefix(payload.count) == payload)

        // With --json, a drive command's outcome is one object.
        let lockedJSON = try step("sedlock", ["drive", "lock", dev, "--pin-file", pinPath, "--json"])
        let outcome = try JSONSerialization.jsonObject(with: lockedJSON.stdout) as? [String: Any]
        #expect(outcome?["device"] as? String == dev && outcome?["operation"] as? String == "lock"
                && outcome?["range"] as? Int == 0 && outcome?["result"] as? String == "locked", "\(lockedJSON.output)")
        let locked = try step("sedsim", ["read", array.directory, "0", "--lba", "64"], expect: 1)
        #expect(locked.stderr.contains("data protect"))
        _ = try step("sedlock", ["drive", "unlock", dev, "--pin-file", pinPath])
        _ = try step("sedsim", ["power-cycle", array.directory])
        _ = try step("sedsim", ["read", array.directory, "0", "--lba", "64"], expect: 1)
        let status = try step("sedsim", ["status", array.directory, "--drive", "0"])
        #expect(status.output.contains("LOCKED") && status.output.contains("owned: yes"))
        _ = try step("sedlock", ["drive", "unlock", dev, "--pin-file", pinPath])
        let again = try step("sedsim", ["read", array.directory, "0", "--lba", "64"])
        #expect(again.stdout.prefix(payload.count) == payload)
        let ranges = try step("sedlock", ["drive", "ranges", dev, "--pin-file", pinPath, "--json"])
        #expect(ranges.output.contains("\"readLockEnabled\" : true"))
        for text in outputs { #expect(!text.contains(pin), "a PIN leaked into output") }
        // The other drive was never touched.
        let other = try step("sedsim", ["status", array.directory, "--drive", "1", "--json"])
        #expect(other.output.contains("\"owned\" : false"))
    }

    @Test("a PIN file another account owns, or may write to, is refused before the drive is asked anything")
    func pinFileOfAnotherAccount() throws {
        let array = try ServedArray(drives: 1)
        let dev = array.device(0)
        let pinPath = try pinFile(pin)
        defer { try? FileManager.default.removeItem(atPath: pinPath) }
        #expect(chown(pinPath, 65534, 65534) == 0)
        let owned = try run("sedlock", ["drive", "unlock", dev, "--pin-file", pinPath])
        #expect(owned.status == 64 && owned.stderr.contains("refused: \(pinPath) is owned by uid 65534"), "\(owned.stderr)")
        #expect(chown(pinPath, 0, 0) == 0 && chmod(pinPath, 0o622) == 0)
        let writable = try run("sedlock", ["drive", "unlock", dev, "--pin-file", pinPath])
        #expect(writable.status == 64 && writable.stderr.contains("can be written by other users"), "\(writable.stderr)")
        let status = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout) as? [[String: Any]]
        #expect((status ?? []).map { $0["totalFailedAuthentications"] as? Int ?? -1 } == [0])
    }

    @Test("sedsim create --quirks: recorded and shown; sedlock works with a drive that has every quirk; an unknown quirk is refused")
    func quirkyDrive() throws {
        let array = try ServedArray(drives: 1, extra: ["--quirks", "two-comids", "session-manager-any-hsn", "method-then-end-of-session"])
        let status = try run("sedsim", ["status", array.directory])
        #expect(status.output.contains("quirks: method-then-end-of-session, session-manager-any-hsn, two-comids"), "\(status.output)")
        let pin = try pinFile("quirky drive")
        defer { try? FileManager.default.removeItem(atPath: pin) }
        #expect(try run("sedlock", ["drive", "take-ownership", array.device(), "--new-pin-file", pin]).status == 0)
        #expect(try run("sedlock", ["drive", "setup-range", array.device(), "--range", "0", "--pin-file", pin]).status == 0)
        #expect(try run("sedlock", ["drive", "lock", array.device(), "--pin-file", pin]).status == 0)
        let unknown = try run("sedsim", ["create", array.directory + "-other", "--quirks", "lenient"])
        #expect(unknown.status == 64 && unknown.stderr.contains("lenient"))
    }

    @Test("a Pyrite drive (locking, no media encryption; its data in clear on the media) is refused by setup before anything is sent but discovery, saying why")
    func pyriteRefused() throws {
        let array = try ServedArray(drives: 1, extra: ["--ssc", "pyrite"])
        #expect(try run("sedsim", ["write", array.directory, "0", "--lba", "64"], stdin: Data("pyrite record".utf8)).status == 0)
        // What removing the drive would give: the record, in clear, in the media file.
        let media = try Data(contentsOf: URL(fileURLWithPath: array.directory + "/drive-0/media.img"))
        #expect(media.range(of: Data("pyrite record".utf8)) != nil)
        let discover = try run("sedlock", ["drive", "discover", array.device(), "--json"])
        #expect(discover.output.contains("Pyrite v2") && discover.output.contains("\"mediaEncryption\" : \"no\""), "\(discover.output)")
        let scratch = "/tmp/sedlock-pyrite-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let state = ["--direct", "--state-dir", scratch + "/state"]
        let setup = try run("sedlock", ["setup", "--drives", array.device()] + state)
        #expect(setup.status == 64 && setup.stderr.contains("does not encrypt") && setup.stderr.contains("--allow-unencrypted"), "\(setup.stderr)")
        let status = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout) as? [[String: Any]]
        #expect(status?.first?["owned"] as? Bool == false && status?.first?["totalFailedAuthentications"] as? Int == 0, "\(status ?? [])")

        // Asked for explicitly: its locking managed, and said so wherever the array is shown.
        let lockOnly = try run("sedlock", ["setup", "--drives", array.device(), "--allow-unencrypted"] + state)
        #expect(lockOnly.status == 0, "\(lockOnly.stderr)")
        let shown = try run("sedlock", ["status"] + state)
        #expect(shown.output.contains("Pyrite v2  LOCK ONLY: no media encryption"), "\(shown.output)")
        let erase = try run("sedlock", ["erase", array.device(), "--crypto", "--yes"] + state)
        #expect(erase.status != 0 && erase.output.contains("does not encrypt"), "\(erase.output) \(erase.stderr)")
    }

    @Test("setup --dry-run through the CLI: each drive's plan printed, exit 0, nothing changed on the drives or in the state")
    func setupDryRun() throws {
        let array = try ServedArray(drives: 2, extra: ["--ssc", "opal,enterprise"])
        let scratch = "/tmp/sedlock-dry-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let state = ["--direct", "--state-dir", scratch + "/state"]
        let dry = try run("sedlock", ["setup", "--drives", array.device(0), array.device(1), "--dry-run"] + state)
        #expect(dry.status == 0 && dry.output.components(separatedBy: "would change").count == 3 && dry.output.contains("dry run: nothing was changed"),
                "\(dry.output) \(dry.stderr)")
        let status = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout) as? [[String: Any]]
        #expect(status?.allSatisfy { $0["owned"] as? Bool == false && $0["totalFailedAuthentications"] as? Int == 0 } == true)
        #expect(try run("sedlock", ["keys", "list"] + state).output.contains("active") == false)
    }

    @Test("sedlock, sedlockd and sedsim print one version with --version")
    func versions() throws {
        let versions = try ["sedlock", "sedlockd", "sedsim"].map { tool -> String in
            let result = try run(tool, ["--version"])
            #expect(result.status == 0, "\(tool): \(result.stderr)")
            return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(Set(versions).count == 1 && versions[0].split(separator: ".").count == 3, "\(versions)")
    }

    @Test("each kind of failure has its own exit status and a clear message")
    func exitStatuses() throws {
        let array = try ServedArray(extra: ["--try-limit", "2", "--lockout-status", "locked-out"])
        let dev = array.device()
        let good = try pinFile(pin), bad = try pinFile("not the pin")
        defer { for p in [good, bad] { try? FileManager.default.removeItem(atPath: p) } }

        #expect(try run("sedlock", ["drive", "lock", "nonsense", "--pin-file", good]).status == 64)
        #expect(try run("sedlock", ["drive", "lock", dev]).status == 64)
        let missing = try run("sedlock", ["drive", "lock", dev, "--pin-file", "/nonexistent/pin"])
        #expect(missing.status == 64 && missing.stderr.contains("cannot open"))
        let noServer = try run("sedlock", ["drive", "discover", "sim:/tmp/no-such-array/0"])
        #expect(noServer.status == 12 && noServer.stderr.contains("sedsim serve"))

        #expect(try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", good]).status == 0)
        // Taking ownership again is refused before any authentication is attempted.
        let twice = try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", good])
        #expect(twice.status == 13 && twice.stderr.contains("already owned"))

        let wrong = try run("sedlock", ["drive", "unlock", dev, "--pin-file", bad])
        #expect(wrong.status == 10 && wrong.stderr.contains("NOT_AUTHORIZED"))
        #expect(try run("sedlock", ["drive", "unlock", dev, "--pin-file", bad]).status == 10)
        let lockedOut = try run("sedlock", ["drive", "unlock", dev, "--pin-file", good])
        #expect(lockedOut.status == 11 && lockedOut.stderr.contains("power-cycle"))

        let status = try run("sedsim", ["status", array.directory, "--json"])
        #expect(status.output.contains("\"lockedOut\" : true"))
        #expect(try run("sedsim", ["power-cycle", array.directory]).status == 0)
        #expect(try run("sedlock", ["drive", "unlock", dev, "--pin-file", good]).status == 0)
        let tries = try run("sedlock", ["drive", "tries", dev, "--pin-file", good, "--json"])
        #expect(tries.status == 0 && tries.output.contains("\"tryLimit\" : 2"))
    }

    @Test("a dropped response is a transport error within the timeout, not a hang")
    func droppedResponse() throws {
        let array = try ServedArray()
        #expect(try run("sedsim", ["fault", array.directory, "0", "--drop", "1"]).status == 0)
        let start = Date()
        let r = try run("sedlock", ["drive", "take-ownership", array.device(), "--new-pin-file", "-", "--timeout", "1"],
                        stdin: Data(pin.utf8), timeout: 30)
        #expect(r.status == 12 && r.stderr.contains("no response"))
        #expect(Date().timeIntervalSince(start) < 20)
    }

    @Test("a fault plan stays armed until its commands come: sedsim fault and status say what waits, and it is gone once used")
    func faultPlanStaysArmedUntilUsed() throws {
        let array = try ServedArray(drives: 1)
        let armed = try run("sedsim", ["fault", array.directory, "0", "--busy", "1"])
        #expect(armed.status == 0 && armed.output.contains("armed until used: SP_BUSY to the next 1 StartSession"))
        // A power cycle does not use it: only a StartSession does.
        #expect(try run("sedsim", ["power-cycle", array.directory]).status == 0)
        #expect(try run("sedsim", ["status", array.directory]).output.contains("faults armed: SP_BUSY to the next 1 StartSession"))
        // The next StartSession meets it (sedlock waits out SP_BUSY within its timeout, or gives up).
        _ = try run("sedlock", ["drive", "take-ownership", array.device(), "--new-pin-file", "-", "--timeout", "2"],
                    stdin: Data(pin.utf8), timeout: 30)
        let after = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout) as? [[String: Any]]
        #expect((after?.first?["armedFaults"] as? [String]) == [])
        let cleared = try run("sedsim", ["fault", array.directory, "0"])
        #expect(cleared.output.contains("no fault armed"))
    }

    @Test("a reply lost in a write session leaves no session behind: the next command runs at once, not after the drive's 30 s session timeout")
    func lostReplyLeavesNoSession() throws {
        let array = try ServedArray()
        let dev = array.device()
        let good = try pinFile(pin)
        defer { try? FileManager.default.removeItem(atPath: good) }
        #expect(try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", good]).status == 0)
        // The session opens, then the next two answers are lost (the method's and EndOfSession's).
        #expect(try run("sedsim", ["fault", array.directory, "0", "--drop", "2", "--drop-after", "1"]).status == 0)
        // The Set reached the drive and its answer was lost: outcome unknown.
        #expect(try run("sedlock", ["drive", "lock", dev, "--pin-file", good, "--timeout", "1"], timeout: 30).status == 17)
        let status = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout) as? [[String: Any]]
        #expect(status?.first?["openSessions"] as? Int == 0)
        let start = Date()
        #expect(try run("sedlock", ["drive", "lock", dev, "--pin-file", good, "--timeout", "2"]).status == 0)
        #expect(Date().timeIntervalSince(start) < 2)
    }

    @Test("lockout reporting: wrong PINs say how close the drive is to erasing itself; at the lifetime limit it says the drive erased itself (exit 11), and so does the PSID revert after; a range the drive lacks is a bad argument that spends no try")
    func lockoutReporting() throws {
        let array = try ServedArray(drives: 1, extra: ["--lifetime-limit", "3", "--try-limit", "0"])
        let dev = array.device()
        let good = try pinFile(pin), wrong = try pinFile("not the pin")
        defer { for p in [good, wrong] { try? FileManager.default.removeItem(atPath: p) } }
        #expect(try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", good]).status == 0)

        // A range beyond the drive's 8: refused before anything is set, no try spent.
        let range = try run("sedlock", ["drive", "lock", dev, "--range", "20", "--pin-file", good])
        #expect(range.status == 64 && range.stderr.contains("no locking range 20") && !range.stderr.contains("TryLimit"), "\(range.stderr)")
        func failures() throws -> Int {
            let status = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout) as? [[String: Any]]
            return status?.first?["consecutiveFailedAuthentications"] as? Int ?? -1
        }
        #expect(try failures() == 0)

        let first = try run("sedlock", ["drive", "lock", dev, "--pin-file", wrong])
        #expect(first.status == 10 && first.stderr.contains("counted 1 consecutive failed authentications; at 3 it erases itself"), "\(first.stderr)")
        #expect(try run("sedlock", ["drive", "lock", dev, "--pin-file", wrong]).status == 10)
        let last = try run("sedlock", ["drive", "lock", dev, "--pin-file", wrong])
        #expect(last.status == 11 && last.stderr.contains("erased itself for good"), "\(last.stderr)")
        // The right PIN and the PSID no longer open it, and sedlock says why.
        #expect(try run("sedlock", ["drive", "lock", dev, "--pin-file", good]).stderr.contains("erased itself for good"))
        let psid = try #require((try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout)
            as? [[String: Any]])?.first?["psid"] as? String)
        let revert = try run("sedlock", ["drive", "revert", dev, "--psid-file", "-", "--yes"], stdin: Data(psid.utf8))
        #expect(revert.status == 11 && revert.stderr.contains("the PSID included"), "\(revert.stderr)")
    }

    @Test("a PIN change whose answer is lost: exit 17, outcome unknown, try the new PIN first — and the new PIN works with no failed try")
    func outcomeUnknown() throws {
        let array = try ServedArray()
        let dev = array.device()
        let good = try pinFile(pin), next = try pinFile("the next pin")
        defer { for p in [good, next] { try? FileManager.default.removeItem(atPath: p) } }
        #expect(try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", good]).status == 0)
        // StartSession answered; the Set of the new PIN applied, its answer lost.
        #expect(try run("sedsim", ["fault", array.directory, "0", "--drop", "1", "--drop-after", "1"]).status == 0)
        let change = try run("sedlock", ["drive", "set-pin", dev, "--authority", "admin1", "--pin-file", good, "--new-pin-file", next, "--timeout", "1"], timeout: 30)
        #expect(change.status == 17 && change.stderr.contains("may or may not have been done") && change.stderr.contains("try the new PIN first"),
                "\(change.status) \(change.stderr)")
        #expect(try run("sedlock", ["drive", "lock", dev, "--pin-file", next]).status == 0)
        let status = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout) as? [[String: Any]]
        #expect(status?.first?["totalFailedAuthentications"] as? Int == 0)
    }

    @Test("a crash halfway through saving a command leaves the old state intact")
    func crashMidCommand() throws {
        let array = try ServedArray()
        let dev = array.device()
        let good = try pinFile(pin), next = try pinFile("the next pin")
        defer { for p in [good, next] { try? FileManager.default.removeItem(atPath: p) } }
        #expect(try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", good]).status == 0)
        #expect(try run("sedsim", ["fault", array.directory, "0", "--crash"]).status == 0)
        let r = try run("sedlock", ["drive", "set-pin", dev, "--authority", "sid", "--pin-file", good, "--new-pin-file", next])
        #expect(r.status == 12)
        #expect(array.waitForExit() == 86)
        try array.start()
        // The half-written state never replaced the old one: the old PIN still works.
        #expect(try run("sedlock", ["drive", "tries", dev, "--authority", "sid", "--pin-file", good]).status == 0)
    }

    @Test("revert --keep-data with a wrong SID PIN and the right Admin1 PIN changes nothing")
    func keepDataRevertWithWrongSID() throws {
        let array = try ServedArray()
        let dev = array.device()
        let good = try pinFile(pin), wrong = try pinFile("not the sid pin")
        defer { for p in [good, wrong] { try? FileManager.default.removeItem(atPath: p) } }
        #expect(try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", good]).status == 0)
        #expect(try run("sedlock", ["drive", "setup-range", dev, "--range", "0", "--pin-file", good]).status == 0)
        #expect(try run("sedlock", ["drive", "revert", dev, "--sid-pin-file", wrong, "--admin-pin-file", good, "--yes"]).status == 64)
        let r = try run("sedlock", ["drive", "revert", dev, "--keep-data", "--sid-pin-file", wrong, "--admin-pin-file", good, "--yes"])
        #expect(r.status == 10)
        let after = try run("sedsim", ["status", array.directory])
        #expect(after.output.contains("owned: yes") && after.output.contains("Locking SP: Manufactured "))
        #expect(try run("sedlock", ["drive", "revert", dev, "--keep-data", "--sid-pin-file", good, "--yes"]).status == 0)
        #expect(try run("sedsim", ["status", array.directory]).output.contains("owned: no"))
    }

    @Test("PSID revert from the label returns the drive to factory state")
    func psidRevert() throws {
        let array = try ServedArray()
        let dev = array.device()
        #expect(try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", "-"], stdin: Data(pin.utf8)).status == 0)
        let status = try run("sedsim", ["status", array.directory, "--json"])
        let reports = try JSONSerialization.jsonObject(with: status.stdout) as? [[String: Any]]
        let psid = try #require(reports?.first?["psid"] as? String)
        // Destructive drive commands refuse without --yes, before the drive is asked anything.
        let unconfirmed = try run("sedlock", ["drive", "revert", dev, "--psid", psid])
        #expect(unconfirmed.status == 64 && unconfirmed.stderr.contains("--yes"), "\(unconfirmed.stderr)")
        #expect(try run("sedlock", ["drive", "erase", dev, "--range", "0", "--pin-file", "/nonexistent"]).status == 64)
        #expect(try run("sedlock", ["drive", "revert", dev, "--psid", "WRONG", "--yes"]).status == 10)
        #expect(try run("sedlock", ["drive", "revert", dev, "--psid", psid, "--keep-data", "--yes"]).status == 64)
        #expect(try run("sedlock", ["drive", "revert", dev, "--psid", psid, "--psid-file", "-", "--yes"]).status == 64)
        #expect(try run("sedlock", ["drive", "revert", dev, "--psid-file", "-", "--yes"], stdin: Data((psid + "\n").utf8)).status == 0)
        let after = try run("sedsim", ["status", array.directory])
        #expect(after.output.contains("owned: no") && after.output.contains("Manufactured-Inactive"))
    }
}
