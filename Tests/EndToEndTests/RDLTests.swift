import Foundation
import Platform
import Synchronization
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Rapid Data Locking against the simulated key server, through the CLI: the token is fetched
/// before any drive is touched, so a refused certificate or a revoked or destroyed token leaves
/// every drive locked with 0 authentication attempts.
@Suite("Rapid Data Locking", .serialized)
struct RDLTests {
    @Test("enable for good, reboot unlocked; distrusted: held with 0 attempts and a fault; trusted again: unlocked; rekey and array add keep RDL; revoked or destroyed token: held — on Opal drives, and on SAS drives that are Enterprise, Opal, Enterprise",
          arguments: [[String](), ["--kind", "sas", "--ssc", "enterprise,opal"]])
    func rdlLifecycle(simulator: [String]) throws {
        let array = try ServedArray(drives: 3, extra: simulator)
        let scratch = packageRoot.appendingPathComponent(".build/rdl-e2e-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let kmip = scratch + "/kmip"
        #expect(try run("sedsim", ["kmip", "init", "--dir", kmip]).status == 0)
        #expect(try run("sedsim", ["kmip", "issue-client-cert", "--dir", kmip, "--cn", "appliance", "--out", scratch + "/client"]).status == 0)
        let port = 30_000 + Int.random(in: 0..<20_000)
        let server = try SpawnedProcess(Binaries.url("sedsim").path, ["kmip", "serve", "--dir", kmip, "--port", "\(port)"])
        defer { server.stop() }
        #expect(waitFor { (try? run("sedlock", ["kmip", "query", "--server", "127.0.0.1:\(port)", "--cert", scratch + "/client.pem",
                                                  "--key", scratch + "/client.key", "--ca", scratch + "/client-ca.pem"]))?.status == 0 })
        let bootID = scratch + "/boot_id"
        func reboot() throws {
            #expect(try run("sedsim", ["power-cycle", array.directory]).status == 0)
            try Data((UUID().uuidString + "\n").utf8).write(to: URL(fileURLWithPath: bootID))
        }
        try Data("first\n".utf8).write(to: URL(fileURLWithPath: bootID))
        let state = ["--direct", "--state-dir", scratch + "/state", "--boot-id-file", bootID]
        let drives = (0..<3).map { array.device($0) }
        #expect(try run("sedlock", ["keyserver", "add", "127.0.0.1:\(port)", "--name", "ks1", "--cert", scratch + "/client.pem",
                                    "--key", scratch + "/client.key", "--ca", scratch + "/client-ca.pem"] + state).status == 0)
        #expect(try run("sedlock", ["setup", "--drives", drives[0], drives[1]] + state).status == 0)

        let test = try run("sedlock", ["rdl", "test", "--kmip", "ks1"] + state)
        #expect(test.status == 0 && test.output.contains("ks1: OK"), "\(test.stderr)")
        #expect(try run("sedlock", ["rdl", "test", "--kmip", "nope"] + state).status == 64)
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1"] + state).status == 64)  // needs --yes
        // Only on a healthy array: a locked drive refuses it, changing nothing.
        #expect(try run("sedlock", ["lock", drives[0]] + state).status == 0)
        let refused = try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + state)
        #expect(refused.status == 64 && refused.stderr.contains("locked"), "\(refused.stderr)")
        #expect(try run("sedlock", ["unlock", drives[0]] + state).status == 0)

        let enable = try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + state)
        #expect(enable.status == 0 && enable.output.components(separatedBy: "rekeyed").count == 3, "\(enable.stderr) \(enable.output)")
        let status = try run("sedlock", ["rdl", "status", "--json"] + state)
        let report = try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any]
        #expect(report?["state"] as? String == "enabled" && report?["tokenID"] as? String != nil, "\(status.output)")
        let tokenObject = try #require((report?["tokenLocations"] as? [String])?.first?.split(separator: ":").last.map(String.init))
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + state).stderr.contains("enabled already"))
        // A drive added later joins RDL.
        #expect(try run("sedlock", ["array", "add", drives[2]] + state).status == 0)

        var roundTrips: Int?
        func bootUnlock() throws -> (status: Int32, results: [String], attempts: [Int]) {
            let boot = try run("sedlock", ["unlock", "--all", "--boot", "--json"] + state)
            let report = try? JSONSerialization.jsonObject(with: boot.stdout) as? [String: Any]
            let outcomes = report?["drives"] as? [[String: Any]] ?? []
            roundTrips = report?["keyServerRoundTrips"] as? Int
            return (boot.status, outcomes.compactMap { $0["result"] as? String }, outcomes.compactMap { $0["attempts"] as? Int })
        }
        func simFailures() throws -> [Int] {
            let sim = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", array.directory, "--json"]).stdout) as? [[String: Any]]
            return (sim ?? []).map { $0["totalFailedAuthentications"] as? Int ?? -1 }
        }

        try reboot()
        // The token lives on the key servers: the local-key boot unit leaves the array to the network one.
        let daemonState = ["--config", "/dev/null", "--state-dir", scratch + "/state", "--boot-id-file", bootID]
        let localUnit = try run("sedlockd", ["boot-unlock", "--keys", "local"] + daemonState)
        #expect(localUnit.status == 0 && localUnit.output.contains("need the network"), "\(localUnit.output) \(localUnit.stderr)")
        #expect(try run("sedsim", ["read", array.directory, "0", "--lba", "0"]).status != 0)
        var boot = try bootUnlock()
        #expect(boot.status == 0 && boot.results == ["unlocked", "unlocked", "unlocked"], "\(boot)")
        // The token by its recorded identifier, with its name and state, in one batch after the version negotiation.
        #expect(roundTrips == 2)

        // The appliance's certificate distrusted on the key server: locked at the next restart.
        #expect(try run("sedsim", ["kmip", "admin", "--dir", kmip, "--distrust", "appliance"]).status == 0)
        try reboot()
        boot = try bootUnlock()
        #expect(boot.status == 15 && boot.results.allSatisfy { $0 == "keyUnavailable" } && boot.attempts == [0, 0, 0], "\(boot)")
        #expect(try simFailures() == [0, 0, 0])
        #expect(try run("sedsim", ["read", array.directory, "0", "--lba", "0"]).status != 0)
        let faults = try run("sedlock", ["faults"] + state)
        #expect(faults.output.contains("RdlTokenUnavailable"), "\(faults.output)")
        #expect(try run("sedlock", ["rdl", "status"] + state).output.contains("the token is unavailable"))

        // Trust restored (the certificate setup redone): the next boot unlocks, the fault clears.
        #expect(try run("sedsim", ["kmip", "admin", "--dir", kmip, "--trust", "appliance"]).status == 0)
        try reboot()
        boot = try bootUnlock()
        #expect(boot.status == 0 && boot.attempts == [1, 1, 1], "\(boot)")
        #expect(!(try run("sedlock", ["faults"] + state)).output.contains("RdlTokenUnavailable  array  since"))

        // A plain rekey keeps the token: RDL is permanent.
        #expect(try run("sedlock", ["rekey"] + state).status == 0)
        #expect(try run("sedlock", ["rdl", "status"] + state).output.contains("rapid data locking: enabled"))
        try reboot()
        #expect(try bootUnlock().status == 0)

        // Rotate: a new token; the old one no longer matters.
        let rotate = try run("sedlock", ["rdl", "rotate"] + state)
        #expect(rotate.status == 0, "\(rotate.stderr) \(rotate.output)")
        let rotated = try JSONSerialization.jsonObject(with: try run("sedlock", ["rdl", "status", "--json"] + state).stdout) as? [String: Any]
        #expect(rotated?["tokenID"] as? String != report?["tokenID"] as? String)
        #expect(try run("sedsim", ["kmip", "admin", "--dir", kmip, "--destroy", tokenObject]).status == 0)
        try reboot()
        #expect(try bootUnlock().status == 0)
        let newObject = try #require((rotated?["tokenLocations"] as? [String])?.first?.split(separator: ":").last.map(String.init))

        // A revoked token (not Active) no longer unlocks; destroyed, the data is locked for good.
        #expect(try run("sedsim", ["kmip", "admin", "--dir", kmip, "--revoke", newObject]).status == 0)
        try reboot()
        boot = try bootUnlock()
        #expect(boot.status == 15 && boot.attempts == [0, 0, 0], "\(boot)")
        #expect(try run("sedsim", ["kmip", "admin", "--dir", kmip, "--destroy", newObject]).status == 0)
        try reboot()
        boot = try bootUnlock()
        #expect(boot.status == 15 && boot.attempts == [0, 0, 0], "\(boot)")
        #expect(try simFailures() == [0, 0, 0])
        #expect(try run("sedlock", ["rdl", "status"] + state).output.contains("the drives are locked for good"))
        // Leaving RDL needs the drives' PINs, which need the token: with it destroyed, nothing can be done.
        #expect(try run("sedlock", ["rdl", "disable", "--obliterate-all-data", "--yes"] + state).status == 15)
    }

    @Test("disable needs explicit consent, erases every drive, and leaves PINs that need the AK alone")
    func rdlDisable() throws {
        let f = try RDLFixture(drives: 2)
        let state = f.state
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + state).status == 0)
        #expect(try run("sedsim", ["write", f.array.directory, "1", "--lba", "8"], stdin: Data("secret plans".utf8)).status == 0)

        #expect(try run("sedlock", ["rdl", "disable", "--yes"] + state).status == 64)
        let disable = try run("sedlock", ["rdl", "disable", "--obliterate-all-data", "--yes"] + state)
        #expect(disable.status == 0 && disable.output.contains("Rapid Data Locking is off"), "\(disable.stderr) \(disable.output)")
        let read = try run("sedsim", ["read", f.array.directory, "1", "--lba", "8"])
        #expect(read.status == 0 && !read.output.contains("secret plans"))
        #expect(try run("sedlock", ["rdl", "status"] + state).output.contains("rapid data locking: not enabled"))
        // The key server no longer matters to the drives.
        #expect(try f.admin(["--distrust", "appliance"]))
        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        let unlock = try run("sedlock", ["unlock", "--all"] + state)
        #expect(unlock.status == 0, "\(unlock.stderr)")
    }

    @Test("sedlockd's token monitor: a lost token raises RdlTokenUnavailable and, with lock on loss, locks every drive within an interval; without it, data stays available")
    func tokenMonitor() throws {
        for lockOnLoss in [true, false] {
            let f = try RDLFixture(drives: 2)
            #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + (lockOnLoss ? ["--lock-on-loss"] : []) + f.state).status == 0)
            let (daemon, socket) = try f.startDaemon("[rdl]\ntoken_interval = 1\n")
            defer { daemon.stop() }
            #expect(try run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]).status == 0)
            // An unreachable server is not a loss: nothing locks.
            #expect(try f.admin(["--refuse", "on"]))
            #expect(waitFor { (try? run("sedlock", ["faults", "--control-socket", socket]))?.output.contains("no key server could be reached") == true })
            #expect(try run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]).status == 0)
            #expect(try f.admin(["--refuse", "off"]))
            // The certificate refused: lost.
            #expect(try f.admin(["--distrust", "appliance"]))
            let start = Date()
            if lockOnLoss {
                #expect(waitFor { (try? run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]))?.status != 0 })
                #expect(Date().timeIntervalSince(start) < 5)
                #expect(try run("sedsim", ["read", f.array.directory, "1", "--lba", "0"]).status != 0)
            } else {
                #expect(waitFor { (try? run("sedlock", ["faults", "--control-socket", socket]))?.output.contains("the token is lost") == true })
                #expect(try run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]).status == 0)
            }
            let faults = try run("sedlock", ["faults", "--control-socket", socket])
            #expect(faults.output.contains("RdlTokenUnavailable"), "\(faults.output)")
        }
    }
}

extension RDLTests {
    @Test("a key server that hangs or refuses connections at boot: held within the bounded wait, 0 attempts, the fault says unreachable; back: unlocked")
    func unreachableAtBoot() throws {
        let f = try RDLFixture(drives: 2)
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + f.state).status == 0)
        for fault in [["--hang", "on"], ["--refuse", "on"]] {
            #expect(try f.admin(fault))
            #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
            try f.newBoot()
            let start = Date()
            let boot = try run("sedlock", ["unlock", "--all", "--boot", "--wait", "2", "--timeout", "1", "--json"] + f.state)
            let report = try JSONSerialization.jsonObject(with: boot.stdout) as? [String: Any]
            let drives = report?["drives"] as? [[String: Any]] ?? []
            #expect(boot.status == 15 && drives.map { $0["attempts"] as? Int } == [0, 0], "\(fault): \(boot.output) \(boot.stderr)")
            #expect(Date().timeIntervalSince(start) < 15, "\(fault): the wait is bounded")
            #expect(try run("sedlock", ["faults"] + f.state).output.contains("no key server could be reached"), "\(fault)")
            #expect(try f.admin(["--clear"]))
        }
        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        try f.newBoot()
        #expect(try run("sedlock", ["unlock", "--all", "--boot"] + f.state).status == 0)
        let sim = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", f.array.directory, "--json"]).stdout) as? [[String: Any]]
        #expect((sim ?? []).map { $0["totalFailedAuthentications"] as? Int ?? -1 } == [0, 0])
    }

    @Test("hostile key servers at boot (stalled, slowloris, dripping, oversized, malformed): the whole boot ends within --wait + 1 s, 0 attempts; healthy again: unlocked")
    func hostileKeyServersAtBoot() throws {
        let f = try RDLFixture(drives: 2)
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + f.state).status == 0)
        let wait = 3.0
        for fault in [["--hang", "on"], ["--drip", "1000"], ["--drip", "40"], ["--oversized", "on"], ["--malformed", "on"]] {
            #expect(try f.admin(["--clear"]) && f.admin(fault))
            #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
            try f.newBoot()
            let start = Date()
            let boot = try run("sedlock", ["unlock", "--all", "--boot", "--wait", "\(Int(wait))", "--timeout", "2", "--json"] + f.state)
            let took = Date().timeIntervalSince(start)
            let report = try JSONSerialization.jsonObject(with: boot.stdout) as? [String: Any]
            let drives = report?["drives"] as? [[String: Any]] ?? []
            #expect(boot.status == 15 && drives.map { $0["attempts"] as? Int } == [0, 0], "\(fault): \(boot.output) \(boot.stderr)")
            #expect(took <= wait + 1, "\(fault): the boot took \(took) s with --wait \(wait)")
        }
        #expect(try f.admin(["--clear"]))
        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        try f.newBoot()
        #expect(try run("sedlock", ["unlock", "--all", "--boot", "--wait", "\(Int(wait))"] + f.state).status == 0)
        let sim = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", f.array.directory, "--json"]).stdout) as? [[String: Any]]
        #expect((sim ?? []).map { $0["totalFailedAuthentications"] as? Int ?? -1 } == [0, 0])
    }

    @Test("the first of two key servers hung at boot, the per-answer timeout as long as the wait: the second is asked after a head start and the boot unlocks")
    func hungFirstServerOfTwo() throws {
        let f = try RDLFixture(drives: 2)
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + f.state).status == 0)
        // A second server with the same CA and server certificate, objects of its own: it gets the token when added.
        let second = try f.secondServer()
        defer { second.stop() }
        #expect(try f.admin(["--hang", "on"]))
        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        try f.newBoot()
        let start = Date()
        let boot = try run("sedlock", ["unlock", "--all", "--boot", "--wait", "10", "--timeout", "10"] + f.state)
        #expect(boot.status == 0, "\(boot.output) \(boot.stderr)")
        // Asked one after the other, the hung server took the whole wait and the boot was held.
        #expect(Date().timeIntervalSince(start) < 10, "the second server was not waited behind the first")
    }

    @Test("a flood of readers (status, key server status and query, faults) with a hung key server: root's lock and unlock answer in seconds and the watchdog keeps pinging")
    func readerFloodWithHungKeyServer() throws {
        let f = try RDLFixture(drives: 2)
        let notify = try NotifyListener()
        let (daemon, socket) = try f.startDaemon("[control]\ngroup = \"nogroup\"\nmax_connections_per_reader = 32\n[monitors]\nkey_servers_interval = 1\n[deadlines]\ncommand_timeout = 10\n",
                                                environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000"])
        defer { daemon.stop() }
        chmod(socket, 0o666)  // the policy, not the file mode, decides
        chmod(f.scratch, 0o711)  // others may reach the socket, not list the folder
        #expect(try f.admin(["--hang", "on"]))
        // 32 readers (user nobody, of the reader group nogroup, allowed all 32 reader slots), each
        // asking again and again for 8 s.
        let reader = "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups \(Binaries.url("sedlock").path)"
        let script = """
        for i in $(seq 32); do
          ( end=$((SECONDS+8)); while [ $SECONDS -lt $end ]; do
              for q in "status" "keyserver status" "keyserver query" "faults"; do \(reader) $q --control-socket \(socket) >/dev/null 2>&1; done
            done ) &
        done
        wait
        """
        let one = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", Binaries.url("sedlock").path,
                                               "status", "--control-socket", socket])
        #expect(one.status == 0, "a reader is answered: \(one.stderr)")
        let flood = try SpawnedProcess("/bin/bash", ["-c", script])
        let pings = DispatchSemaphore(value: 0)
        let collected = Mutex<[(at: Date, message: String)]>([])
        DispatchQueue.global().async {
            collected.withLock { $0 = notify.timedMessages(seconds: 8) }
            pings.signal()
        }
        _ = waitFor(seconds: 1) { false }  // the readers' processes start up (wall time: they are real processes)
        for command in [["lock", "--all"], ["unlock", "--all"]] {
            let start = Date()
            let result = try run("sedlock", command + ["--control-socket", socket])
            let took = Date().timeIntervalSince(start)
            #expect(result.status == 0 && took < 5, "\(command): exit \(result.status) after \(took) s: \(result.stderr)")
        }
        pings.wait()
        _ = flood.wait()
        let times = collected.withLock { $0 }.filter { $0.message.contains("WATCHDOG=1") }.map(\.at)
        let gaps = zip(times.dropFirst(), times).map { $0.timeIntervalSince($1) }
        #expect(times.count >= 4 && (gaps.max() ?? 99) < 2, "watchdog pings \(times.count), largest gap \(gaps.max() ?? -1) s")
    }

    @Test("a held boot heals itself: the token's server away at boot, sedlockd raises ArrayLocked and, once the server is back, unlocks the array and clears it")
    func heldBootHealsItself() throws {
        let f = try RDLFixture(drives: 2)
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + f.state).status == 0)
        #expect(try f.admin(["--refuse", "on"]))
        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        try f.newBoot()
        #expect(try run("sedlock", ["unlock", "--all", "--boot", "--wait", "1", "--timeout", "1"] + f.state).status == 15)
        let (daemon, socket) = try f.startDaemon("[monitors]\ndrives_interval = 1\nkey_servers_interval = 1\n[deadlines]\ncommand_timeout = 2\n")
        defer { daemon.stop() }
        #expect(waitFor { (try? run("sedlock", ["faults", "--control-socket", socket]))?.output.contains("ERROR  ArrayLocked") == true })
        #expect(try f.admin(["--refuse", "off"]))
        #expect(waitFor(seconds: 30) { (try? run("sedsim", ["read", f.array.directory, "1", "--lba", "0"]))?.status == 0 },
                "the array stayed locked after the key server came back")
        #expect(try run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]).status == 0)
        #expect(waitFor { (try? run("sedlock", ["faults", "--control-socket", socket]))?.output.contains("ERROR  ArrayLocked") == false })
        let sim = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", f.array.directory, "--json"]).stdout) as? [[String: Any]]
        #expect((sim ?? []).map { $0["totalFailedAuthentications"] as? Int ?? -1 } == [0, 0])
    }

    @Test("sedlockd's start never waits on key servers: with the token's server hung it serves at once, and the keytable fills once the server is back")
    func startDoesNotWaitForKeyServers() throws {
        let f = try RDLFixture(drives: 1)
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + f.state).status == 0)
        #expect(try f.admin(["--hang", "on"]))
        let start = Date()
        let (daemon, socket) = try f.startDaemon("[deadlines]\ncommand_timeout = 10\n")
        defer { daemon.stop() }
        let served = Date().timeIntervalSince(start)
        #expect(served < 5, "the control socket came \(served) s after start, with the key server hung")
        // A read answers while the keytable waits for the server.
        #expect(try run("sedlock", ["status", "--control-socket", socket]).status == 0)
        #expect(try f.admin(["--hang", "off"]))
        // `keys list` marks a generation the keytable lacks with "*".
        func activeInKeytable() -> Bool {
            let lines = (try? run("sedlock", ["keys", "list", "--control-socket", socket]))?.output.split(separator: "\n") ?? []
            return lines.contains { $0.contains("  active  ") && $0.hasPrefix(" ") }
        }
        #expect(waitFor(seconds: 30) { activeInKeytable() })
    }

    @Test("with RDL on, a client certificate that comes close to expiry while sedlockd runs raises KmipCertificateFault within a token interval; renewed, it clears")
    func certificateExpiryAtTokenInterval() throws {
        let f = try RDLFixture(drives: 1)
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + f.state).status == 0)
        // Certificates on their own would be looked at hourly; the token's interval is what counts here.
        let (daemon, socket) = try f.startDaemon("[rdl]\ntoken_interval = 1\n[monitors]\ncertificates_interval = 3600\nkey_servers_interval = 3600\ndrives_interval = 3600\n")
        defer { daemon.stop() }
        func faults() -> String { (try? run("sedlock", ["faults", "--control-socket", socket]))?.output ?? "" }
        #expect(!faults().contains("KmipCertificateFault"))
        // Renewed badly: the new certificate has 5 days left (inside the 7-day class).
        let reissue = ["kmip", "issue-client-cert", "--dir", f.kmip, "--cn", "appliance", "--out", f.scratch + "/client"]
        #expect(try run("sedsim", reissue + ["--days", "5"]).status == 0)
        let start = Date()
        #expect(waitFor { faults().contains("KmipCertificateFault") })
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(faults().contains("close to expiry"), "\(faults())")
        #expect(try run("sedsim", reissue + ["--days", "365"]).status == 0)
        #expect(waitFor { faults().contains("  KmipCertificateFault  \(f.scratch)/client.pem") && !faults().contains("  KmipCertificateFault  \(f.scratch)/client.pem  since") },
                "\(faults())")
    }
}

/// A served array, a simulated KMIP server (`kmip`) trusting the appliance's certificate, and a
/// state with that server added as `ks1` and the drives set up with a local key.
extension RDLTests {
    @Test("sedlock keys restore on a state put back from a backup older than a rekey (RDL on): the key the drives hold is adopted from the recovery record, then unlock opens every drive with 0 failed authentications")
    func keysRestoreAdoptsFromRecord() throws {
        let f = try RDLFixture(drives: 2, provider: "kmip")
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + f.state).status == 0)
        let backup = f.scratch + "/state-backup"
        try FileManager.default.copyItem(atPath: f.scratch + "/state", toPath: backup)
        let rekey = try run("sedlock", ["rekey"] + f.state)
        #expect(rekey.status == 0, "\(rekey.stderr)")
        try FileManager.default.removeItem(atPath: f.scratch + "/state")
        try FileManager.default.moveItem(atPath: backup, toPath: f.scratch + "/state")
        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        try f.newBoot()
        let restore = try run("sedlock", ["keys", "restore", "--all"] + f.state)
        #expect(restore.status == 0 && restore.output.contains("adopted from the newest recovery record: 2 drive(s) moved"),
                "\(restore.output) \(restore.stderr)")
        let unlock = try run("sedlock", ["unlock", "--all"] + f.state)
        #expect(unlock.status == 0, "\(unlock.output) \(unlock.stderr)")
        let sim = try #require(try JSONSerialization.jsonObject(with: try run("sedsim", ["status", f.array.directory, "--json"]).stdout)
            as? [[String: Any]])
        #expect(sim.map { $0["totalFailedAuthentications"] as? Int } == [0, 0])
    }
}

final class RDLFixture {
    let array: ServedArray
    let scratch: String
    let kmip: String
    let port: Int
    private let server: SpawnedProcess
    var state: [String] { ["--direct", "--state-dir", scratch + "/state", "--boot-id-file", scratch + "/boot_id"] }
    var client: [String] { ["--cert", scratch + "/client.pem", "--key", scratch + "/client.key", "--ca", scratch + "/client-ca.pem"] }
    let drives: [String]

    init(drives: Int, setUp: Int? = nil, provider: String = "local", simulator extra: [String] = []) throws {
        let array = try ServedArray(drives: drives, extra: extra)
        self.array = array
        self.drives = (0..<drives).map { array.device($0) }
        scratch = packageRoot.appendingPathComponent(".build/rdl-e2e-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        kmip = scratch + "/kmip"
        for step in [["kmip", "init", "--dir", kmip],
                     ["kmip", "issue-client-cert", "--dir", kmip, "--cn", "appliance", "--out", scratch + "/client"]] {
            guard try run("sedsim", step).status == 0 else { throw HarnessError("sedsim \(step) failed") }
        }
        port = 30_000 + Int.random(in: 0..<20_000)
        server = try SpawnedProcess(Binaries.url("sedsim").path, ["kmip", "serve", "--dir", kmip, "--port", "\(port)"])
        let client = self.client
        let port = self.port
        guard waitFor(seconds: 20, { (try? run("sedlock", ["kmip", "query", "--server", "127.0.0.1:\(port)"] + client))?.status == 0 }) else {
            throw HarnessError("the simulated key server did not start")
        }
        try newBoot()
        let add = try run("sedlock", ["keyserver", "add", "127.0.0.1:\(port)", "--name", "ks1"] + client + state)
        guard add.status == 0 else { throw HarnessError("keyserver add: \(add.stderr)") }
        let setup = try run("sedlock", ["setup", "--drives"] + Array(self.drives.prefix(setUp ?? drives)) + ["--provider", provider] + state)
        guard setup.status == 0 else { throw HarnessError("setup: \(setup.stderr)") }
    }

    deinit {
        server.stop()
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// A second simulated key server (`ks2`) trusting the same appliance certificate, added to the
    /// state (so it receives copies of what the array needs); the caller stops it.
    func secondServer() throws -> SpawnedProcess { try extraServer(2).server }

    /// Simulated key server `ksN` (N ≥ 2) trusting the same appliance certificate, on port + N - 1;
    /// added to the state unless `add` is false. The caller stops it.
    func extraServer(_ n: Int, add: Bool = true) throws -> (server: SpawnedProcess, address: String) {
        let directory = scratch + "/kmip\(n)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        for file in try FileManager.default.contentsOfDirectory(atPath: kmip) where file.hasSuffix(".pem") || file.hasSuffix(".key") {
            try FileManager.default.copyItem(atPath: kmip + "/" + file, toPath: directory + "/" + file)
        }
        let port = self.port + n - 1
        let server = try SpawnedProcess(Binaries.url("sedsim").path, ["kmip", "serve", "--dir", directory, "--port", "\(port)"])
        let client = self.client
        guard waitFor(seconds: 20, { (try? run("sedlock", ["kmip", "query", "--server", "127.0.0.1:\(port)"] + client))?.status == 0 }) else {
            server.stop()
            throw HarnessError("simulated key server ks\(n) did not start")
        }
        if add {
            let added = try run("sedlock", ["keyserver", "add", "127.0.0.1:\(port)", "--name", "ks\(n)"] + client + state)
            guard added.status == 0 else {
                server.stop()
                throw HarnessError("keyserver add ks\(n): \(added.stderr)")
            }
        }
        return (server, "127.0.0.1:\(port)")
    }

    func newBoot() throws {
        try Data((UUID().uuidString + "\n").utf8).write(to: URL(fileURLWithPath: scratch + "/boot_id"))
    }

    func admin(_ arguments: [String]) throws -> Bool {
        try run("sedsim", ["kmip", "admin", "--dir", kmip] + arguments).status == 0
    }

    /// sedlockd serving this fixture's state with `configuration` (TOML text), once its socket answers.
    func startDaemon(_ configuration: String, extra: [String] = [],
                     environment: [String: String] = [:]) throws -> (daemon: SpawnedProcess, socket: String) {
        let path = scratch + "/sedlockd.toml"
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: path))
        let socket = scratch + "/control.sock"
        let daemon = try SpawnedProcess(Binaries.url("sedlockd").path,
                                        ["serve", "--config", path, "--state-dir", scratch + "/state", "--boot-id-file", scratch + "/boot_id",
                                         "--control-socket", socket] + extra, environment: environment)
        guard waitFor({ ServedArray.canConnect(socket) }) else {
            daemon.stop()
            throw HarnessError("sedlockd did not serve \(socket)")
        }
        return (daemon, socket)
    }
}
