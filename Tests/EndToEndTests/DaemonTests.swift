import Foundation
import Platform
import Synchronization
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// sedlockd as operators and the boot service meet it: the CLI through the control socket,
/// peers refused by credentials, a configuration checked and reloaded, hostile clients, crashes.
@Suite("sedlockd and its control socket", .serialized)
struct DaemonTests {
    @Test("operator commands go through the socket; --direct is refused while the daemon holds the state; secrets never cross")
    func operatorCommands() throws {
        let f = try DaemonFixture(drives: 3)
        try f.startDaemon()
        let status = try run("sedlock", ["status"] + f.viaSocket)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.output.components(separatedBy: "unlocked").count == 4)

        let lock = try run("sedlock", ["lock", "--all"] + f.viaSocket)
        #expect(lock.status == 0 && lock.output.components(separatedBy: ": locked").count == 4, "\(lock.stderr)")
        #expect(try run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]).status != 0)
        let unlock = try run("sedlock", ["unlock", f.drives[0], "--json"] + f.viaSocket)
        #expect(unlock.status == 0 && unlock.output.contains("\"unlocked\""))
        #expect(try run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]).status == 0)

        // A rekey through the socket shows each drive as it finishes, ahead of the reply, once each.
        let rekey = try run("sedlock", ["rekey"] + f.viaSocket)
        let rekeyLines = rekey.output.split(separator: "\n")
        #expect(rekey.status == 0 && rekeyLines.count == 3 && (1...3).allSatisfy { n in rekeyLines.contains { $0.hasSuffix("[\(n)/3]") } }
                && f.drives.allSatisfy { drive in rekeyLines.filter { $0.hasPrefix(drive + ": rekeyed") }.count == 1 }, "\(rekey.output)")
        // With --json the output is the report alone.
        let rekeyJSON = try run("sedlock", ["rekey", "--json"] + f.viaSocket)
        #expect(rekeyJSON.status == 0 && !rekeyJSON.output.contains("[1/3]")
                && (try? JSONSerialization.jsonObject(with: rekeyJSON.stdout)) != nil, "\(rekeyJSON.output)")

        // The daemon holds the writer lock: a --direct change is busy and says what to do.
        let direct = try run("sedlock", ["lock", "--all"] + f.direct)
        #expect(direct.status == 16 && direct.stderr.contains("sedlockd"), "\(direct.stderr)")
        // A request that carries a secret is refused before it is sent.
        let psid = try pinFile("PSID0123456789ABCDEF0123456789AB")
        defer { unlink(psid) }
        let erase = try run("sedlock", ["erase", f.drives[2], "--psid-file", psid, "--yes"] + f.viaSocket)
        #expect(erase.status == 64 && erase.stderr.contains("--direct"))
        // State-dir options belong to --direct only.
        #expect(try run("sedlock", ["status", "--state-dir", "/tmp"] + f.viaSocket).status == 64)

        // The audit log names the socket peer.
        let audit = try run("/usr/bin/sqlite3", [f.scratch + "/state/state.sqlite", "SELECT actor FROM audit ORDER BY id DESC LIMIT 1"])
        #expect(audit.status == 0 && audit.output.contains("via control socket"), "\(audit.output) \(audit.stderr)")

        // Graceful stop: exit 0, socket file removed.
        let daemon = try #require(f.daemon)
        kill(daemon.pid, SIGTERM)
        #expect(daemon.wait() == 0)
        #expect(!FileManager.default.fileExists(atPath: f.socket))
        let stopped = try run("sedlock", ["status"] + f.viaSocket)
        #expect(stopped.status == 12 && stopped.stderr.contains("--direct"))
    }

    @Test("a stop while state changes wait behind a hung work loop ends within [deadlines] stop_wait: each waiting request is told sedlockd is stopping")
    func stopWithQueuedChanges() throws {
        let f = try DaemonFixture(drives: 1, configuration: "[deadlines]\nstop_wait = 2\n")
        let hang = f.scratch + "/hang"
        try Data().write(to: URL(fileURLWithPath: hang))
        try f.startDaemon(extra: ["--test-hang-file", hang])
        var clients: [(process: SpawnedProcess, output: String)] = []
        for n in 0..<3 {
            let output = f.scratch + "/client\(n).txt"
            let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            defer { close(fd) }
            clients.append((try SpawnedProcess(Binaries.url("sedlock").path, ["lock", "--all"] + f.viaSocket, stdout: fd, stderr: fd), output))
        }
        // Until the daemon has accepted all three (the listener and three accepted sockets carry its path).
        // The bound is generous: a CI machine running the crash tortures beside this can take long
        // to start three processes; what is measured here is the stop, after.
        func sockets() -> Int {
            ((try? String(contentsOfFile: "/proc/net/unix", encoding: .utf8)) ?? "").split(separator: "\n")
                .filter { $0.hasSuffix(" " + f.socket) }.count
        }
        #expect(waitFor(seconds: 90) { sockets() >= 4 },
                "the three requests reached sedlockd: \(sockets()) sockets on its path; clients: \(clients.map { (try? String(contentsOfFile: $0.output, encoding: .utf8)) ?? "" })")
        // Queued in the loop or still being read by the server: either way a stop answers "stopping".
        #expect(clients.allSatisfy { $0.process.isRunning }, "the hung loop answered")
        let daemon = try #require(f.daemon)
        kill(daemon.pid, SIGTERM)
        // Before the loop was cancelled with its queue answered, the queued requests waited forever and so did the stop.
        #expect(waitFor(seconds: 20) { !daemon.isRunning }, "sedlockd did not stop")
        for client in clients {
            #expect(waitFor(seconds: 10) { !client.process.isRunning })
            let text = (try? String(contentsOfFile: client.output, encoding: .utf8)) ?? ""
            let status = client.process.wait()
            #expect(status == 12 && text.contains("sedlockd is stopping"), "\(status): \(text)")
        }
    }

    @Test("the boot unlock run again while sedlockd holds the state hands the unlock to it instead of failing busy")
    func bootUnlockHandsOffToTheDaemon() throws {
        let f = try DaemonFixture(drives: 2)
        try Data("[control]\nsocket = \"\(f.socket)\"\n".utf8).write(to: URL(fileURLWithPath: f.configuration))
        try f.startDaemon()
        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        let boot = try run("sedlockd", ["boot-unlock", "--config", f.configuration, "--state-dir", f.scratch + "/state",
                                        "--boot-id-file", f.scratch + "/boot_id"])
        #expect(boot.status == 0 && boot.output.contains("unlocked 2/2 drives"), "\(boot.status): \(boot.output) \(boot.stderr)")
        #expect(try run("sedsim", ["read", f.array.directory, "1", "--lba", "0"]).status == 0)
    }

    @Test("faults --check speaks a monitoring plugin's language: one line, 0 healthy, 2 with an error fault, 3 when the faults cannot be read")
    func faultsCheck() throws {
        let f = try DaemonFixture(drives: 1)
        let healthy = try run("sedlock", ["faults", "--check"] + f.direct)
        #expect(healthy.status == 0 && healthy.output.hasPrefix("SEDLOCK OK") && healthy.output.split(separator: "\n").count == 1,
                "\(healthy.output) \(healthy.stderr)")
        // A guarded drive (set in the state as the lockout guard would) is an error fault.
        #expect(try run("/usr/bin/sqlite3", [f.scratch + "/state/state.sqlite", "UPDATE drive SET guardReason = 'test' WHERE id = 1"]).status == 0)
        let guarded = try run("sedlock", ["faults", "--check"] + f.direct)
        #expect(guarded.status == 2 && guarded.output.hasPrefix("SEDLOCK CRITICAL") && guarded.output.contains("DriveGuarded"), "\(guarded.output)")
        // No daemon to ask: unknown, not healthy.
        let unknown = try run("sedlock", ["faults", "--check"] + f.viaSocket)
        #expect(unknown.status == 3 && unknown.output.hasPrefix("SEDLOCK UNKNOWN"), "\(unknown.output)")
    }

    @Test("peer credentials: root changes, the reader group reads, anyone else is refused")
    func peerCredentials() throws {
        // nogroup (65534) stands in for the sedlock group on a machine where it was not created.
        let f = try DaemonFixture(drives: 1, configuration: "[control]\ngroup = \"nogroup\"\n")
        try f.startDaemon()
        chmod(f.socket, 0o666)  // let the policy, not the file mode, decide
        let asReader = ["--reuid=65534", "--regid=65534", "--clear-groups", Binaries.url("sedlock").path]
        let read = try run("/usr/bin/setpriv", asReader + ["status"] + f.viaSocket)
        #expect(read.status == 0, "\(read.stderr)")
        let change = try run("/usr/bin/setpriv", asReader + ["lock", "--all"] + f.viaSocket)
        #expect(change.status == 10 && change.stderr.contains("may read the array's state but not change it"), "\(change.stderr)")
        let stranger = ["--reuid=65534", "--regid=12345", "--clear-groups", Binaries.url("sedlock").path]
        let refused = try run("/usr/bin/setpriv", stranger + ["status"] + f.viaSocket)
        #expect(refused.status == 10 && refused.stderr.contains("may not use sedlockd"), "\(refused.stderr)")
        #expect(f.logText.contains("refused uid 65534"))
        // Nothing changed: the drive is still unlocked.
        #expect(try run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]).status == 0)
    }

    @Test("the notify protocol as systemd sees it: READY with STATUS once serving, WATCHDOG pings, STATUS=rekey k/n during a rekey, RELOADING with MONOTONIC_USEC then READY, STOPPING; the boot unlock's STATUS and EXTEND_TIMEOUT_USEC")
    func notifyProtocol() throws {
        let f = try DaemonFixture(drives: 2)
        let notify = try NotifyListener()
        try f.startDaemon(environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000"])
        let daemon = try #require(f.daemon)
        let ready = notify.messages { $0.contains("READY=1") }
        #expect(ready.last?.hasPrefix("READY=1\nSTATUS=") == true, "\(ready)")
        // The first ping and the monitors' first STATUS come in either order.
        var seen: [String] = []
        let isStatus = { (message: String) in message.contains("STATUS=2/2 drives unlocked, 0/0 key servers reachable, 0 faults") }
        _ = notify.messages(seconds: 20) { message in
            seen.append(message)
            return seen.contains("WATCHDOG=1") && seen.contains(where: isStatus)
        }
        #expect(seen.contains("WATCHDOG=1"), "\(seen)")
        #expect(seen.contains(where: isStatus), "\(seen)")
        // A rekey through the socket: STATUS= counts its drives as they finish, then the array again.
        #expect(try run("sedlock", ["rekey"] + f.viaSocket).status == 0)
        let rekeying = notify.messages(seconds: 5) { $0.contains("STATUS=2/2 drives unlocked") }
        #expect(rekeying.contains("STATUS=rekey 1/2 drives") && rekeying.contains("STATUS=rekey 2/2 drives"), "\(rekeying)")
        // A lock and an unlock through the socket: STATUS= says so as each is answered, not at the
        // drive monitor's next round (60 s away here).
        #expect(try run("sedlock", ["lock", "--all"] + f.viaSocket).status == 0)
        let locked = notify.messages(seconds: 5) { $0.contains("STATUS=0/2 drives unlocked") }
        #expect(locked.last?.contains("STATUS=0/2 drives unlocked") == true, "\(locked)")
        #expect(try run("sedlock", ["unlock", "--all"] + f.viaSocket).status == 0)
        let unlocked = notify.messages(seconds: 5) { $0.contains("STATUS=2/2 drives unlocked") }
        #expect(unlocked.last?.contains("STATUS=2/2 drives unlocked") == true, "\(unlocked)")
        kill(daemon.pid, SIGHUP)
        let reload = notify.messages { $0.hasPrefix("RELOADING=1") }
        #expect(reload.last.map { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") } == true, "\(reload)")
        #expect(notify.messages { $0.hasPrefix("READY=1") }.last?.hasPrefix("READY=1") == true)
        kill(daemon.pid, SIGTERM)
        #expect(notify.messages { $0.hasPrefix("STOPPING=1") }.last?.hasPrefix("STOPPING=1") == true)
        #expect(daemon.wait() == 0)

        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        let boot = try run("sedlockd", ["boot-unlock", "--config", f.configuration, "--state-dir", f.scratch + "/state",
                                        "--boot-id-file", f.scratch + "/boot_id"], environment: ["NOTIFY_SOCKET": notify.path])
        #expect(boot.status == 0 && boot.output.contains("unlocked 2/2 drives"), "\(boot.stderr)")
        let bootMessages = notify.messages(seconds: 2) { $0 == "STATUS=unlocked 2/2 drives" }
        #expect(bootMessages.contains { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") } && bootMessages.last == "STATUS=unlocked 2/2 drives",
                "\(bootMessages)")
    }

    @Test("a boot with the local key file gone fails at once (exit 15, the file named), not after the key wait; back in place, it unlocks")
    func missingLocalKeyFailsAtOnce() throws {
        let f = try DaemonFixture(drives: 2)
        let keys = f.scratch + "/state/keys"
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: keys).first { $0.hasSuffix(".ak") })
        try FileManager.default.moveItem(atPath: keys + "/" + file, toPath: f.scratch + "/" + file)
        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        let boot = { () throws -> ProcessResult in
            try run("sedlockd", ["boot-unlock", "--wait", "300", "--config", f.configuration, "--state-dir", f.scratch + "/state",
                                 "--boot-id-file", f.scratch + "/boot_id"], timeout: 60)
        }
        let start = Date()
        let held = try boot()
        #expect(Date().timeIntervalSince(start) < 10, "the boot waited for a key file that cannot appear")
        #expect(held.status == 15 && held.output.contains(keys + "/" + file), "\(held.status) \(held.output) \(held.stderr)")
        try FileManager.default.moveItem(atPath: f.scratch + "/" + file, toPath: keys + "/" + file)
        let unlocked = try boot()
        #expect(unlocked.status == 0 && unlocked.output.contains("unlocked 2/2 drives"), "\(unlocked.output) \(unlocked.stderr)")
    }

    @Test("a crash of sedlockd prints no backtrace (which would show memory around each register)")
    func crashPrintsNoMemory() throws {
        let f = try DaemonFixture(drives: 1)
        try f.startDaemon()
        let daemon = try #require(f.daemon)
        kill(daemon.pid, SIGSEGV)
        #expect(daemon.wait() == 128 + SIGSEGV)
        #expect(!f.logText.contains("Backtracing") && !f.logText.contains("Crashed"), "\(f.logText.suffix(500))")
    }

    @Test("check-config: defaults, unknown keys and bad values refused; SIGHUP and `sedlockd reload` reload, a bad file is kept out (reload exits 78)")
    func configuration() throws {
        let good = try run("sedlockd", ["check-config", "/dev/null"])
        #expect(good.status == 0 && good.output.contains("valid"))
        let f = try DaemonFixture(drives: 1, configuration: "[monitors]\ndrives_interval = 30\n[guards]\nlockout_limit = 2\n")
        for (text, words) in [("[monitors]\ndrive_interval = 5\n", "unknown key monitors.drive_interval"),
                              ("[guards]\nlockout_limit = 0\n", "guards.lockout_limit must be an integer from 1"),
                              ("[control]\nsocket = \"relative\"\n", "absolute path"),
                              ("[nonsense]\n", "unknown table [nonsense]"),
                              ("state_directory = [\n", "line 1"),
                              ("[deadlines]\ncommand_timeout = \"ten\"\n", "deadlines.command_timeout must be a number")] {
            let path = f.scratch + "/bad.toml"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            let checked = try run("sedlockd", ["check-config", path])
            #expect(checked.status == 78 && checked.stderr.contains(words), "\(text): \(checked.stderr)")
            // The file named as serve names it (sedlockd(8)'s example).
            #expect(try run("sedlockd", ["check-config", "--config", path]).status == 78)
        }
        #expect(try run("sedlockd", ["check-config", "--config", f.configuration]).status == 0)
        let missing = try run("sedlockd", ["serve", "--config", f.scratch + "/absent.toml", "--control-socket", f.socket])
        #expect(missing.status == 78 && missing.stderr.contains("no such file"))

        try f.startDaemon()
        let daemon = try #require(f.daemon)
        try Data("[monitors]\ndrives_interval = 5\n".utf8).write(to: URL(fileURLWithPath: f.configuration))
        kill(daemon.pid, SIGHUP)
        #expect(waitFor { f.logText.contains("configuration reloaded") })
        try Data("[monitors]\ndrives_intervl = 5\n".utf8).write(to: URL(fileURLWithPath: f.configuration))
        kill(daemon.pid, SIGHUP)
        #expect(waitFor { f.logText.contains("reload failed, keeping the running configuration") && f.logText.contains("drives_intervl") })
        // `sedlockd reload` (ExecReload=) waits for the daemon's answer: 78 with the file's problem,
        // then 0 once the file is right again, with what changes only on restart.
        let refused = try run("sedlockd", ["reload", "--control-socket", f.socket])
        #expect(refused.status == 78 && refused.stderr.contains("drives_intervl"), "\(refused.status) \(refused.stderr)")
        try Data("[monitors]\ndrives_interval = 5\n[control]\nmax_connections = 9\n".utf8).write(to: URL(fileURLWithPath: f.configuration))
        let reloaded = try run("sedlockd", ["reload", "--control-socket", f.socket])
        #expect(reloaded.status == 0 && reloaded.output.contains("applies on restart only: control.max_connections"),
                "\(reloaded.status) \(reloaded.output) \(reloaded.stderr)")
        #expect(try run("sedlock", ["status"] + f.viaSocket).status == 0)
        #expect(try run("sedlock", ["status"] + f.viaSocket).status == 0)
    }

    @Test("10,000 malformed, oversized and truncated requests and 100 concurrent clients: clear errors, no crash, state unchanged")
    func hostileClients() throws {
        let f = try DaemonFixture(drives: 2, configuration: "[control]\nrequest_timeout = 2\n")
        try f.startDaemon()
        let before = try run("sedlock", ["status", "--json"] + f.direct)
        var random = SeededRandom(seed: 0x5ED1_0CD)
        // Mutations start from a read request, so one that happens to stay valid changes nothing.
        let valid = Array(#"{"version":2,"request":{"guardStatus":{}}}"#.utf8)
        let lock = Array(#"{"version":2,"request":{"lock":{"drives":"all"}}}"#.utf8)
        var sent = 0
        var errors = 0
        while sent < 10_000 {
            // Up to 200 bad lines on one connection; the daemon answers each and keeps reading.
            var batch: [UInt8] = []
            let lines = min(200, 10_000 - sent)
            for _ in 0..<lines {
                var line: [UInt8]
                switch random.next() % 6 {
                case 0: line = (0..<Int(random.next() % 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }.filter { $0 != 0x0A }
                case 1: line = Array(lock.prefix(Int(random.next() % UInt64(lock.count))))
                case 2: line = Array(#"{"version":3,"request":"status"}"#.utf8)
                // Version 1's shape (and drives as an object): malformed, never an unlock.
                case 3: line = Array(#"{"version":2,"request":{"unlock":{"_0":{"drives":{"all":{}},"boot":true}}}}"#.utf8)
                case 4: line = Array(#"{"version":2}"#.utf8)
                default:
                    line = valid
                    line[Int(random.next() % UInt64(line.count))] = UInt8(truncatingIfNeeded: random.next() % 255) &+ 1
                    line = line.map { $0 == 0x0A ? 0x20 : $0 }
                    if line == valid { line = [0x7B] }
                }
                batch += line + [0x0A]
            }
            let replies = try f.raw(batch)
            #expect(replies.count == lines, "answered \(replies.count) of \(lines)")
            errors += replies.filter { $0.contains("\"failure\"") }.count
            sent += lines
        }
        // Most lines are garbage; a mutation can still form a valid request, and those are answered too.
        #expect(errors > 9_000)
        // An oversized line: one clear error, then the connection is closed.
        let huge = try f.raw([UInt8](repeating: 0x41, count: 200_000) + [0x0A])
        #expect(huge.count == 1 && huge[0].contains("longer than"))
        // A request that never ends its line: answered with a timeout error.
        let connection = try StreamSocket.connect(path: f.socket)
        try connection.send(Array(#"{"version":2,"#.utf8), deadline: .after(seconds: 5))
        let stalled = try connection.receiveSome(limit: 4096, deadline: .after(seconds: 10))
        #expect(String(decoding: stalled, as: UTF8.self).contains("no complete request"))

        // 100 clients at once.
        let answered = Mutex(0)
        let socket = f.socket
        DispatchQueue.concurrentPerform(iterations: 100) { _ in
            if let replies = try? DaemonFixture.raw(socket: socket, Array(#"{"version":2,"request":{"guardStatus":{}}}"#.utf8) + [0x0A]),
               replies.count == 1, replies[0].contains("guardState") {
                answered.withLock { $0 += 1 }
            }
        }
        #expect(answered.withLock { $0 } == 100)
        #expect(f.daemon?.isRunning == true)
        let after = try run("sedlock", ["status", "--json"] + f.direct)
        #expect(before.output == after.output)
    }

    @Test("sedlockd killed at random during operator commands loses nothing: the journal finishes the work")
    func killedDuringCommands() throws {
        let f = try DaemonFixture(drives: 3)
        var random = SeededRandom(seed: 0xDEAD_10CC)
        let rounds = 6
        for round in 0..<rounds {
            try f.startDaemon()
            let command = round % 2 == 0 ? ["rekey"] : ["lock", "--all"]
            let client = try SpawnedProcess(Binaries.url("sedlock").path, command + f.viaSocket)
            usleep(UInt32(random.next() % 150_000))
            f.killDaemon()
            client.wait()
        }
        try f.startDaemon()
        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        // The lockout guard counts an attempt before making it, so an attempt cut off by a kill
        // counts as failed: after several kills a drive may be guarded (safe, never near its own
        // TryLimit). An operator's reset then lets the unfinished rekey complete.
        var rekey = try run("sedlock", ["rekey"] + f.viaSocket)
        if rekey.status != 0 {
            let guards = try run("sedlock", ["guard", "status", "--json"] + f.viaSocket)
            let report = try JSONSerialization.jsonObject(with: guards.stdout) as? [String: Any]
            let guarded = (report?["drives"] as? [[String: Any]] ?? []).filter { $0["guarded"] != nil }.compactMap { $0["address"] as? String }
            #expect(!guarded.isEmpty, "\(rekey.stderr) \(rekey.output)")
            for drive in guarded { #expect(try run("sedlock", ["guard", "reset", drive, "--yes"] + f.viaSocket).status == 0) }
            rekey = try run("sedlock", ["rekey"] + f.viaSocket)
        }
        #expect(rekey.status == 0, "\(rekey.stderr) \(rekey.output)\n\(f.logText)")
        let unlock = try run("sedlock", ["unlock", "--all"] + f.viaSocket)
        #expect(unlock.status == 0, "\(unlock.stderr) \(unlock.output)")
        // No drive came near its own lockout: a resumed PIN change costs at most one failure.
        let sim = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", f.array.directory, "--json"]).stdout)
            as? [[String: Any]]
        let failures = try #require(sim).map { $0["totalFailedAuthentications"] as? Int ?? -1 }
        #expect(failures.allSatisfy { (0...(rounds + 1) / 2).contains($0) }, "\(failures)")
        for n in 0..<f.driveCount { #expect(try run("sedsim", ["read", f.array.directory, "\(n)", "--lba", "0"]).status == 0) }
    }
}

extension DaemonTests {
    @Test("sedlockd unlocks a drive that relocked while it runs (power-cycled alone) within a drive interval, and leaves one an operator locked")
    func relockedDriveIsUnlockedAgain() throws {
        let f = try DaemonFixture(drives: 2, configuration: "[monitors]\ndrives_interval = 1\n")
        try f.startDaemon()
        #expect(try run("sedlock", ["lock", f.array.device(1)] + f.viaSocket).status == 0)
        #expect(try run("sedsim", ["power-cycle", f.array.directory, "--drive", "0"]).status == 0)
        #expect(try run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]).status != 0)
        #expect(waitFor(seconds: 10) { (try? run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]))?.status == 0 },
                "the relocked drive was not unlocked again: \(f.logText)")
        #expect(f.logText.contains("unlocking \(f.array.device(0)) again"))
        // The operator's lock stands, interval after interval.
        _ = waitFor(seconds: 3) { false }
        #expect(try run("sedsim", ["read", f.array.directory, "1", "--lba", "0"]).status != 0)
    }
}

extension DaemonTests {
    @Test("sedlockd hears udev: a device event has the drives checked at once (a relocked drive unlocked long before its hour-long interval); a drive outside the array is reported, in status and metrics, and left alone")
    func deviceEventsAndUnmanagedDrives() throws {
        let f = try DaemonFixture(drives: 2, configuration: "[monitors]\ndrives_interval = 3600\n")
        // Drive 1 leaves the array keeping its PINs: in reach, owned, not the array's.
        #expect(try run("sedlock", ["array", "remove", f.array.device(1)] + f.direct).status == 0)
        try f.startDaemon()
        #expect(waitFor(seconds: 10) { f.logText.contains("a drive that is not the array's is in reach: \(f.array.device(1))") },
                "\(f.logText)")
        let status = try run("sedlock", ["status", "--json"] + f.viaSocket)
        let report = try #require(try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any])
        let unmanaged = try #require(report["unmanagedDrives"] as? [[String: Any]], "\(status.output)")
        #expect(unmanaged.map { $0["address"] as? String } == [f.array.device(1)] && unmanaged.first?["owned"] as? Bool == true)
        #expect(try run("sedlock", ["status"] + f.viaSocket).output.contains("not the array's: \(f.array.device(1))"))
        let sim = try #require(try JSONSerialization.jsonObject(with: try run("sedsim", ["status", f.array.directory, "--json"]).stdout)
            as? [[String: Any]])
        #expect(sim.map { $0["totalFailedAuthentications"] as? Int } == [0, 0], "nothing was presented to it")

        try #require(f.logText.contains("udev: listening for block and NVMe device events"), "\(f.logText)")
        #expect(try run("sedsim", ["power-cycle", f.array.directory, "--drive", "0"]).status == 0)
        #expect(try run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]).status != 0)
        try UdevBroadcast.send(action: "change", subsystem: "block", deviceNode: "/dev/sedlock-test-\(UUID().uuidString.prefix(6))")
        #expect(waitFor(seconds: 10) { (try? run("sedsim", ["read", f.array.directory, "0", "--lba", "0"]))?.status == 0 },
                "a device event did not have the drives checked: \(f.logText)")
        #expect(f.logText.contains("device event(s), the last change of /dev/sedlock-test-"), "\(f.logText)")
    }
}

/// A device event as udev broadcasts it once processed (netlink group 2, "libudev" header), for
/// the daemon's sd-device monitor to hear; needs root (CAP_NET_ADMIN) to send.
enum UdevBroadcast {
    static func send(action: String, subsystem: String, deviceNode: String) throws {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 15)  // NETLINK_KOBJECT_UEVENT
        guard fd >= 0 else { throw HarnessError("netlink socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let name = (deviceNode as NSString).lastPathComponent
        let fields = ["ACTION=\(action)", "DEVPATH=/devices/virtual/\(subsystem)/\(name)", "SUBSYSTEM=\(subsystem)",
                      "DEVNAME=\(deviceNode)", "DEVTYPE=disk", "SEQNUM=\(Int.random(in: 1_000_000...9_000_000))"]
        let properties: [UInt8] = fields.flatMap { Array($0.utf8) + [0] }
        var message = Array("libudev".utf8) + [0]
        message += [0xFE, 0xED, 0xCA, 0xFE]  // the magic, in network order
        for field in [UInt32(40), 40, UInt32(properties.count), 0, 0, 0, 0] {  // sizes in host order; no filter hashes
            message += withUnsafeBytes(of: field.littleEndian, Array.init)
        }
        message += properties
        // struct sockaddr_nl: family, padding, port id 0 (the kernel), groups = 2 (udev's).
        var address = [UInt8](repeating: 0, count: 12)
        address.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt16(AF_NETLINK), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: UInt32(2), toByteOffset: 8, as: UInt32.self)
        }
        let sent = message.withUnsafeBytes { bytes in
            address.withUnsafeBytes { raw in
                sendto(fd, bytes.baseAddress, bytes.count, 0, raw.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
            }
        }
        // ECONNREFUSED: no listener other than ours took it; the message is still delivered.
        guard sent == message.count || errno == ECONNREFUSED else {
            throw HarnessError("sending the udev event: \(String(cString: strerror(errno)))")
        }
    }
}
