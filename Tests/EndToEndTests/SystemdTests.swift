import Foundation
import Platform
import TestSupport
import Testing

/// The project's units run by a real systemd 252 (PID 1 of its own namespaces): ordering of the
/// boot unlock, readiness, socket activation, reload, the watchdog, the journal.
@Suite("Units under a real systemd", .serialized,
       .enabled(if: SystemdNamespace.available, "needs root with CAP_SYS_ADMIN (unshare of PID and mount namespaces) and systemd 252"))
struct SystemdTests {
    static let drives = (0..<12).map { "sim:/run/sedsim-array/\($0)" }
    static let state = ["--direct", "--state-dir", "/var/lib/sedlock"]

    @Test("every unit verifies clean; sedlockd.service's exposure is at most 2.5")
    func unitsVerify() throws {
        let ns = try SystemdNamespace(drives: 1)
        try ns.boot()
        let units = ["sedlockd.service", "sedlockd.socket", "sedlock-unlock.service", "sedlock-unlock-network.service"]
        let verify = try ns.inside(["systemd-analyze", "verify"] + units.map { "/run/systemd/system.control/" + $0 })
        #expect(verify.status == 0 && verify.output.isEmpty && verify.stderr.isEmpty, "\(verify.output)\(verify.stderr)")
        let security = try ns.inside(["systemd-analyze", "security", "--offline=true", "/run/systemd/system.control/sedlockd.service"])
        let score = security.output.split(separator: "\n").last { $0.contains("Overall exposure level") }
            .flatMap { $0.split(separator: ":").last?.split(separator: " ").first }.flatMap { Double($0) }
        #expect(score != nil && score! <= 2.5, "\(security.output.suffix(400))")
    }

    @Test("boot with a local key: the unlock unit runs before what needs the drives and ends active, unlocked 12/12")
    func bootUnlockLocal() throws {
        let ns = try SystemdNamespace(drives: 12)
        try ns.boot()
        let setup = try ns.inside(["sedlock", "setup", "--drives"] + Self.drives + ["--key-tag", "boot-test"] + Self.state)
        #expect(setup.status == 0, "\(setup.stderr)")
        #expect(try ns.inside(["/bin/sh", "-c", "echo quarterly | sedsim write /run/sedsim-array 0 --lba 2048"]).status == 0)
        #expect(try ns.inside(["sedsim", "power-cycle", "/run/sedsim-array"]).status == 0)
        #expect(try ns.inside(["sedsim", "read", "/run/sedsim-array", "0", "--lba", "2048"]).status != 0)

        let start = try ns.inside(["systemctl", "start", "sedlock-boot-test.target"])
        #expect(start.status == 0, "\(start.stderr)")
        let unlock = try ns.show("sedlock-unlock.service", ["ActiveState", "StatusText", "ExecMainStatus", "ExecMainExitTimestampMonotonic"])
        #expect(unlock["ActiveState"] == "active" && unlock["ExecMainStatus"] == "0", "\(unlock) \(ns.console.suffix(2000))")
        #expect(unlock["StatusText"] == "unlocked 12/12 drives", "\(unlock)")
        let network = try ns.show("sedlock-unlock-network.service", ["ActiveState", "StatusText", "TimeoutStartUSec"])
        #expect(network["ActiveState"] == "active" && network["StatusText"]?.hasPrefix("nothing to do") == true, "\(network)")
        // No start timeout that a daemon-reload could enforce on a boot waiting for keys: sedlockd bounds it.
        let localTimeout = try ns.show("sedlock-unlock.service", ["TimeoutStartUSec"])["TimeoutStartUSec"]
        #expect(network["TimeoutStartUSec"] == "infinity" && localTimeout == "infinity", "\(network) \(localTimeout ?? "")")
        let consumer = try ns.show("drives-consumer.service", ["ActiveState", "ExecMainStartTimestampMonotonic"])
        #expect(consumer["ActiveState"] == "active", "\(consumer)")
        let unlockEnd = UInt64(unlock["ExecMainExitTimestampMonotonic"] ?? "") ?? .max
        let consumerStart = UInt64(consumer["ExecMainStartTimestampMonotonic"] ?? "") ?? 0
        #expect(unlockEnd <= consumerStart, "the consumer started at \(consumerStart) µs, before the unlock ended at \(unlockEnd) µs")
    }

    @Test("boot with the key only in a systemd credential (systemd-creds encrypt --with-key=host, LoadCredentialEncrypted= in a drop-in): the unlock unit opens every drive from $CREDENTIALS_DIRECTORY; nothing else holds the key in clear")
    func bootUnlockFromEncryptedCredential() throws {
        let ns = try SystemdNamespace(drives: 2)
        try ns.dropIn("sedlock-unlock.service", "[Service]\nLoadCredentialEncrypted=sedlock.ak:/var/lib/sedlock-credentials/sedlock.ak.cred\n")
        try ns.boot()
        let drives = Array(Self.drives.prefix(2))
        #expect(try ns.inside(["sedlock", "setup", "--drives"] + drives + ["--key-tag", "credential-test"] + Self.state).status == 0)
        let keyFile = try ns.inside(["/bin/sh", "-c", "ls /var/lib/sedlock/keys/*.ak"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(keyFile.hasSuffix(".ak"), "\(keyFile)")
        let sealed = try ns.inside(["/bin/sh", "-c", "mkdir -m 700 -p /var/lib/sedlock-credentials && systemd-creds encrypt --with-key=host "
                                        + "--name=sedlock.ak \(keyFile) /var/lib/sedlock-credentials/sedlock.ak.cred"])
        #expect(sealed.status == 0, "\(sealed.stderr)")
        // Only the credential can give the key now: the key file is gone.
        #expect(try ns.inside(["rm", keyFile]).status == 0)
        let credential = try ns.inside(["cat", "/var/lib/sedlock-credentials/sedlock.ak.cred"]).output
        #expect(!credential.contains("sedlock-ak v1"), "the credential holds the key file in clear")
        #expect(try ns.inside(["sedsim", "power-cycle", "/run/sedsim-array"]).status == 0)

        _ = try ns.inside(["systemctl", "start", "sedlock-boot-test.target"])
        let unlock = try ns.show("sedlock-unlock.service", ["ActiveState", "StatusText", "ExecMainStatus"])
        #expect(unlock["ActiveState"] == "active" && unlock["StatusText"] == "unlocked 2/2 drives", "\(unlock) \(ns.console.suffix(2000))")
        #expect(try ns.inside(["sedsim", "read", "/run/sedsim-array", "0", "--lba", "0"]).status == 0)
        let sim = try JSONSerialization.jsonObject(with: try ns.inside(["sedsim", "status", "/run/sedsim-array", "--json"]).stdout) as? [[String: Any]]
        #expect(sim?.allSatisfy { $0["totalFailedAuthentications"] as? Int == 0 } == true)
    }

    @Test("boot with the key sealed by clevis for a tang server: the network unit runs clevis inside its sandbox and unlocks every drive; the local unit has nothing to do")
    func bootUnlockWithClevis() throws {
        let tang = try TangServer()
        let ns = try SystemdNamespace(drives: 2)
        try ns.boot()
        let drives = Array(Self.drives.prefix(2))
        let setup = try ns.inside(["sedlock", "setup", "--drives"] + drives + ["--provider", "clevis", "--clevis", tang.clevisConfig] + Self.state)
        #expect(setup.status == 0, "\(setup.stderr)")
        #expect(try ns.inside(["sedsim", "power-cycle", "/run/sedsim-array"]).status == 0)
        _ = try ns.inside(["systemctl", "start", "sedlock-boot-test.target"])
        let unlock = try ns.show("sedlock-unlock-network.service", ["ActiveState", "StatusText"])
        #expect(unlock["ActiveState"] == "active" && unlock["StatusText"] == "unlocked 2/2 drives", "\(unlock) \(ns.console.suffix(2000))")
        #expect(try ns.show("sedlock-unlock.service", ["StatusText"])["StatusText"]?.hasPrefix("nothing to do") == true)
        #expect(try ns.show("drives-consumer.service", ["ActiveState"])["ActiveState"] == "active")
    }

    @Test("boot with the key server broken: held (no keys), exit 15, 0 authentications reach the drives; mended, a restart unlocks")
    func bootHeldWithoutKeyServer() throws {
        let ns = try SystemdNamespace(drives: 12, configuration: "[deadlines]\nboot_key_wait = 2\n", kmip: true)
        try ns.boot()
        let port = try #require(ns.kmipPort)
        let add = try ns.inside(["sedlock", "keyserver", "add", "127.0.0.1:\(port)", "--cert", "/run/sedsim-kmip/client.pem",
                                 "--key", "/run/sedsim-kmip/client.key", "--ca", "/run/sedsim-kmip/client-ca.pem"] + Self.state)
        #expect(add.status == 0, "\(add.stderr)")
        let setup = try ns.inside(["sedlock", "setup", "--provider", "kmip", "--drives"] + Self.drives + Self.state)
        #expect(setup.status == 0, "\(setup.stderr)")
        #expect(try ns.inside(["sedsim", "kmip", "admin", "--dir", "/run/sedsim-kmip", "--refuse", "on"]).status == 0)
        #expect(try ns.inside(["sedsim", "power-cycle", "/run/sedsim-array"]).status == 0)

        _ = try ns.inside(["systemctl", "start", "sedlock-boot-test.target"])
        let unlock = try ns.show("sedlock-unlock-network.service", ["ActiveState", "StatusText", "ExecMainStatus"])
        #expect(unlock["ActiveState"] == "failed" && unlock["ExecMainStatus"] == "15", "\(unlock) \(ns.console.suffix(2000))")
        #expect(unlock["StatusText"]?.hasPrefix("no keys: 0/12 drives unlocked, no authentication attempted") == true, "\(unlock)")
        #expect(try ns.show("sedlock-unlock.service", ["StatusText"])["StatusText"]?.hasPrefix("nothing to do") == true)
        #expect(try ns.show("drives-consumer.service", ["ActiveState"])["ActiveState"] == "failed")
        // The journal has one record per drive, each with no attempt; the drives counted none.
        let journal = try ns.inside(["journalctl", "-o", "json", "--no-pager", "-u", "sedlock-unlock-network.service"])
        let attempts = journal.output.split(separator: "\n").compactMap { line -> String? in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["ATTEMPTS"] as? String
        }
        #expect(attempts.count == 12 && attempts.allSatisfy { $0 == "0" }, "\(attempts)")
        // One summary record, at warning (a held boot leaves the data unreadable), with its MESSAGE_ID.
        let summaries = journal.output.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["MESSAGE_ID"] as? String == "4bd3632033eb46d28a6436b3bbd2a975" }
        #expect(summaries.count == 1 && summaries.first?["PRIORITY"] as? String == "4" && summaries.first?["RESULT"] as? String == "held",
                "\(summaries)")
        let sim = try ns.inside(["sedsim", "status", "/run/sedsim-array", "--json"])
        let drives = try JSONSerialization.jsonObject(with: sim.stdout) as? [[String: Any]]
        #expect(drives?.count == 12 && drives?.allSatisfy { $0["totalFailedAuthentications"] as? Int == 0 } == true)

        #expect(try ns.inside(["sedsim", "kmip", "admin", "--dir", "/run/sedsim-kmip", "--clear"]).status == 0)
        #expect(try ns.inside(["systemctl", "restart", "sedlock-unlock-network.service"]).status == 0)
        let mended = try ns.show("sedlock-unlock-network.service", ["ActiveState", "StatusText"])
        // The AK by its recorded identifier: the version negotiation and one batch.
        #expect(mended["ActiveState"] == "active"
                && mended["StatusText"] == "unlocked 12/12 drives (keys in 2 KMIP round trips over 1 connection)", "\(mended)")
    }

    @Test("sedlockd: socket activation by the first status, READY and STATUS=, the metrics textfile at README's path, reload, journal fields without secrets, watchdog restart of a hung loop")
    func daemonUnderSystemd() throws {
        // The metrics textfile where README puts it: the unit lets sedlockd write there.
        let metricsFile = "/var/lib/prometheus/node-exporter/sedlock.prom"
        let ns = try SystemdNamespace(drives: 12, configuration: "[monitors]\ndrives_interval = 1\n[metrics]\nfile = \"\(metricsFile)\"\n")
        try ns.dropIn("sedlockd.service", "[Service]\nWatchdogSec=4\nEnvironment=SEDLOCKD_TEST_HANG_FILE=/run/sedlockd-hang\n")
        try ns.boot()
        #expect(try ns.inside(["mkdir", "-p", "-m", "0755", "/var/lib/prometheus/node-exporter"]).status == 0)
        #expect(try ns.inside(["sedlock", "setup", "--drives"] + Self.drives + Self.state).status == 0)
        #expect(try ns.inside(["systemctl", "start", "sedlock-daemon-test.target"]).status == 0)
        #expect(try ns.show("sedlockd.socket", ["ActiveState"])["ActiveState"] == "active")
        #expect(try ns.show("sedlockd.service", ["ActiveState"])["ActiveState"] == "inactive")

        // The first client activates the daemon through the socket; it answers once READY.
        let status = try ns.inside(["sedlock", "status"])
        #expect(status.status == 0 && status.output.components(separatedBy: "unlocked").count == 13, "\(status.stderr)")
        #expect(try ns.show("sedlockd.service", ["ActiveState"])["ActiveState"] == "active")
        #expect(waitFor(seconds: 15) {
            (try? ns.show("sedlockd.service", ["StatusText"]))?["StatusText"]?.hasPrefix("12/12 drives unlocked, 0/0 key servers reachable, 0 faults") == true
        }, "\((try? ns.show("sedlockd.service", ["StatusText"])) ?? [:])")

        #expect(waitFor(seconds: 15) { (try? ns.inside(["cat", metricsFile]))?.output.contains("sedlock_drives{state=\"unlocked\"} 12") == true },
                "\((try? ns.inside(["journalctl", "--no-pager", "-n", "20", "-u", "sedlockd.service"]))?.output ?? "")")
        #expect(try ns.inside(["sedlock", "lock", "--all"]).status == 0)
        #expect(try ns.inside(["sedlock", "unlock", "--all"]).status == 0)
        // systemctl reload returns once the daemon has read the file (ExecReload asks it over the
        // socket and waits for its answer): the journal says so at once, no waiting.
        #expect(try ns.inside(["systemctl", "reload", "sedlockd.service"]).status == 0)
        let journalRecords = { () throws -> [[String: Any]] in
            try ns.inside(["journalctl", "-o", "json", "--no-pager", "-u", "sedlockd.service"]).output.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        #expect(try journalRecords().contains { $0["MESSAGE"] as? String == "configuration reloaded" })
        // A configuration that does not validate fails the reload visibly, with the file's problem;
        // the daemon runs on with the one it has.
        let configuration = URL(fileURLWithPath: ns.work + "/etc-upper/sedlock/sedlockd.toml")
        let kept = try Data(contentsOf: configuration)
        try Data("[monitors]\ndrives_intervl = 5\n".utf8).write(to: configuration)
        #expect(try ns.inside(["systemctl", "reload", "sedlockd.service"]).status != 0, "a broken configuration reloaded")
        let refused = try ns.inside(["sedlockd", "reload"])
        #expect(refused.status == 78 && refused.stderr.contains("drives_intervl"), "\(refused.status) \(refused.stderr)")
        #expect(try ns.show("sedlockd.service", ["ActiveState"])["ActiveState"] == "active")
        try kept.write(to: configuration)

        let journal = try ns.inside(["journalctl", "-o", "json", "--no-pager", "-u", "sedlockd.service"])
        let records = try journalRecords()
        let locks = records.filter { $0["MESSAGE_ID"] as? String == "c35e8d150a0a4a0092b58ae23707c67d" }
        let unlocks = records.filter { $0["MESSAGE_ID"] as? String == "808a19a063f143b7b385551051e49612" }
        #expect(locks.count == 12 && unlocks.count == 12, "\(locks.count) lock and \(unlocks.count) unlock records")
        #expect(Set(unlocks.compactMap { $0["DRIVE"] as? String }) == Set(Self.drives))
        #expect(unlocks.allSatisfy { $0["SYSLOG_IDENTIFIER"] as? String == "sedlockd" && $0["PRIORITY"] as? String == "6" })
        // Each names the key its drive's PINs came from (one key for the array), never the key itself.
        let keyIDs = unlocks.compactMap { $0["KEY_ID"] as? String }
        #expect(keyIDs.count == 12 && Set(keyIDs).count == 1, "\(keyIDs)")
        // Canary: the array key, in any encoding, appears nowhere in the journal.
        for secret in try Self.authenticationKeys(in: ns.work + "/state/keys") {
            #expect(!journal.output.contains(secret), "the journal holds the authentication key")
        }

        // A hung work loop stops the watchdog pings: systemd kills and restarts the daemon.
        let before = Int(try ns.show("sedlockd.service", ["NRestarts"])["NRestarts"] ?? "") ?? -1
        #expect(try ns.inside(["touch", "/run/sedlockd-hang"]).status == 0)
        let restarted = waitFor(seconds: 30) {
            (Int((try? ns.show("sedlockd.service", ["NRestarts"]))?["NRestarts"] ?? "") ?? -1) > before
        }
        #expect(restarted, "no restart: \(ns.console.suffix(1500))")
        #expect(try ns.inside(["rm", "/run/sedlockd-hang"]).status == 0)
        #expect(waitFor(seconds: 20) { (try? ns.inside(["sedlock", "status"]))?.status == 0 })
        let pid1Log = try ns.inside(["journalctl", "--no-pager", "-o", "cat", "_PID=1"])
        let recent = try ns.inside(["journalctl", "--no-pager", "-n", "40"]).output
        #expect(pid1Log.output.contains("sedlockd.service: Watchdog timeout"), "\(pid1Log.output.suffix(1500)) \(recent)")
        // sedlockd said why first: its stall record comes before systemd's watchdog timeout.
        let ordered = try ns.inside(["journalctl", "--no-pager", "-o", "json", "-u", "sedlockd.service"]).output.split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let stall = ordered.firstIndex { $0["MESSAGE_ID"] as? String == "06d533a7ba904a97861a0e78fb01b984" }
        let timeout = ordered.firstIndex { ($0["MESSAGE"] as? String)?.contains("Watchdog timeout") == true }
        #expect((stall ?? Int.max) < (timeout ?? -1), "stall record \(String(describing: stall)), timeout \(String(describing: timeout))")
        #expect(ordered.first { ($0["MESSAGE_ID"] as? String) == "06d533a7ba904a97861a0e78fb01b984" }?["PRIORITY"] as? String == "3")
        // libdispatch's manager thread asks for nice -4; the unit's LimitNICE=-4 lets it, with no
        // capability. The limit is the unit's on every host; where PID 1 may raise limits (it
        // needs CAP_SYS_RESOURCE, which this test machine's containers lack) no start complains.
        #expect(try ns.show("sedlockd.service", ["LimitNICE"])["LimitNICE"] == "24")
        let niceLimit = try ns.inside(["sh", "-c", "grep 'Max nice' /proc/$(systemctl show -P MainPID sedlockd.service)/limits"]).output
        if niceLimit.split(whereSeparator: \.isWhitespace).dropFirst(3).first == "24" {
            let complaints = try ns.inside(["journalctl", "--no-pager", "-o", "cat", "--grep", "thread priority"]).output
            #expect(!complaints.contains("Failed to set thread priority"), "\(complaints)")
        }
    }

    /// The AK of every local key file, as base64 and as hex.
    static func authenticationKeys(in directory: String) throws -> [String] {
        var out: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let text = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
            guard let encoded = text.split(whereSeparator: \.isWhitespace).last.map(String.init),
                  let bytes = Data(base64Encoded: encoded) else { continue }
            out += [encoded, bytes.map { String(format: "%02x", $0) }.joined()]
        }
        #expect(!out.isEmpty, "no key file found in \(directory)")
        return out
    }
}
