import Foundation
import Testing

/// `sedsim appliance`: a whole appliance under one directory — drives, two simulated key servers,
/// boot unlock and sedlockd as detached processes — and the RDL story told through it, as
/// scripts/demo tells it.
@Suite("Simulated appliance", .serialized)
struct ApplianceTests {
    @Test("create, start, set up on two key servers, enable RDL; distrusted: alert, data available, then locked at reboot with 0 attempts; trusted: unlocked; the state lost: recovered, unlocked with 0 attempts; token destroyed: locked for good; a stolen drive stays locked; stop ends every process",
          arguments: [["--kind", "nvme"], ["--kind", "sas", "--ssc", "enterprise,opal"]])
    func rdlStory(drives kind: [String]) throws {
        let directory = "/tmp/sedlock-app-\(UUID().uuidString.prefix(8))"
        defer {
            _ = try? run("sedsim", ["appliance", "stop", directory])
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: directory + "-thief")
        }
        let created = try run("sedsim", ["appliance", "create", directory, "--drives", "3", "--size", "16M", "--boot-key-wait", "1"] + kind)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.output.contains(kind.contains("sas") ? ": 3 sas enterprise/opal drive(s)" : ": 3 nvme drive(s)"), "\(created.output)")
        let clientName = try #require(created.output.components(separatedBy: "client certificate CN ").last?
            .split(separator: "\n").first.map(String.init))
        #expect(try run("sedsim", ["appliance", "create", directory]).stderr.contains("holds an appliance already"))
        #expect(try run("sedsim", ["appliance", "reboot", directory]).stderr.contains("not running"))

        let started = try run("sedsim", ["appliance", "start", directory])
        #expect(started.status == 0 && started.output.contains("nothing to unlock"), "\(started.output) \(started.stderr)")
        #expect(try run("sedsim", ["appliance", "start", directory]).stderr.contains("runs already"))
        let environment = try run("sedsim", ["appliance", "env", directory]).output
        #expect(environment == "export SEDLOCK_CONTROL_SOCKET=\(directory)/control.sock\n")
        let socket = ["SEDLOCK_CONTROL_SOCKET": "\(directory)/control.sock"]
        func sedlock(_ arguments: [String]) throws -> CommandResult { try run("sedlock", arguments, environment: socket) }
        func reboot() throws -> String {
            let result = try run("sedsim", ["appliance", "reboot", directory])
            #expect(result.status == 0, "\(result.stderr)")
            return result.output
        }
        func readable() throws -> Int {
            try (0..<3).filter { try run("sedsim", ["read", directory + "/drives", "\($0)", "--lba", "64"]).output.hasPrefix("record \($0)") }.count
        }
        func failedAuthentications() throws -> [Int] {
            let status = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", directory + "/drives", "--json"]).stdout) as? [[String: Any]]
            return (status ?? []).map { $0["totalFailedAuthentications"] as? Int ?? -1 }
        }
        func admin(_ arguments: [String]) throws {
            for server in ["ks1", "ks2"] {
                #expect(try run("sedsim", ["kmip", "admin", "--dir", "\(directory)/kmip-\(server)"] + arguments).status == 0)
            }
        }

        // Through sedlockd's socket, found from the environment alone.
        let setup = try sedlock(["setup", "--drives"] + (0..<3).map { "sim:\(directory)/drives/\($0)" } + ["--provider", "kmip"])
        #expect(setup.status == 0, "\(setup.stderr)")
        #expect(try sedlock(["keyserver", "status"]).output.components(separatedBy: " OK ").count == 3)
        for n in 0..<3 {
            #expect(try run("sedsim", ["write", directory + "/drives", "\(n)", "--lba", "64"], stdin: Data("record \(n)".utf8)).status == 0)
        }
        #expect(try sedlock(["rdl", "enable", "--kmip", "ks1", "--yes"]).status == 0)
        #expect(try reboot().contains("unlocked 3/3 drives"))
        #expect(try readable() == 3)

        // Distrusted everywhere: the monitor raises the alert, the data stays available until a restart.
        try admin(["--distrust", clientName])
        #expect(waitFor { (try? sedlock(["faults"]))?.output.contains("RdlTokenUnavailable") == true })
        #expect(try readable() == 3)
        let before = try failedAuthentications()
        let locked = try reboot()
        #expect(locked.contains("no keys: 0/3") && locked.contains("no authentication attempted"), "\(locked)")
        #expect(try readable() == 0)
        #expect(try failedAuthentications() == before)

        try admin(["--trust", clientName])
        #expect(try reboot().contains("unlocked 3/3 drives"))
        #expect(try readable() == 3)

        // The head replaced: the state is gone; recover takes the array (RDL included) back from
        // the key servers' recovery records, and the unlock opens every drive with no failed attempt.
        let trusted = try failedAuthentications()
        let lost = try run("sedsim", ["appliance", "reboot", directory, "--lose-state"])
        #expect(lost.status == 0 && lost.output.contains("state is lost"), "\(lost.output) \(lost.stderr)")
        #expect(try readable() == 0)
        let recovered = try sedlock(["recover", "--drives"] + (0..<3).map { "sim:\(directory)/drives/\($0)" })
        #expect(recovered.status == 0, "\(recovered.output) \(recovered.stderr)")
        #expect(try sedlock(["unlock", "--all"]).status == 0)
        #expect(try readable() == 3)
        #expect(try failedAuthentications() == trusted)

        // The token destroyed on both servers: locked for good, and status says so.
        let status = try JSONSerialization.jsonObject(with: try sedlock(["rdl", "status", "--json"]).stdout) as? [String: Any]
        for location in status?["tokenLocations"] as? [String] ?? [] {
            let parts = location.split(separator: ":")
            #expect(try run("sedsim", ["kmip", "admin", "--dir", "\(directory)/kmip-\(parts[1])", "--destroy", String(parts[2])]).status == 0)
        }
        let forGood = try reboot()
        #expect(forGood.contains("destroyed on every key server"), "\(forGood)")
        #expect(try sedlock(["rdl", "status"]).output.contains("locked for good"))
        #expect(try readable() == 0)
        #expect(try failedAuthentications() == before)

        // The thief's copy of drive 1: owned, locked, no plaintext anywhere.
        let stolen = try run("sedsim", ["appliance", "steal", directory, "--drive", "1", "--to", directory + "-thief"])
        #expect(stolen.status == 0 && stolen.output.contains("owned, 1 of its 1 locking range(s) locked"), "\(stolen.output) \(stolen.stderr)")
        #expect(try run("sedsim", ["read", directory + "-thief", "0", "--lba", "64"]).status != 0)
        #expect(try run("sedsim", ["appliance", "steal", directory, "--drive", "7", "--to", directory + "-x"]).status != 0)

        let pids = try FileManager.default.contentsOfDirectory(atPath: directory + "/run").filter { $0.hasSuffix(".pid") }
            .compactMap { Int32((try? String(contentsOfFile: "\(directory)/run/\($0)", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") }
        #expect(pids.count == 4)
        let stopped = try run("sedsim", ["appliance", "stop", directory])
        #expect(stopped.output.contains("stopped sedlockd, drives, kmip-ks1, kmip-ks2"), "\(stopped.output)")
        #expect(pids.allSatisfy { kill($0, 0) != 0 || isZombie($0) })
        #expect(try run("sedsim", ["appliance", "stop", directory]).output.contains("nothing"))
    }

    @Test("the token as 2-of-3 shares: one key server distrusting the appliance changes nothing; two lock it at the next boot with 0 attempts; one trusting it again unlocks")
    func tokenThreshold() throws {
        let directory = "/tmp/sedlock-app-\(UUID().uuidString.prefix(8))"
        defer {
            _ = try? run("sedsim", ["appliance", "stop", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let created = try run("sedsim", ["appliance", "create", directory, "--drives", "2", "--size", "16M", "--key-servers", "3",
                                         "--boot-key-wait", "1", "--token-interval", "1"])
        let clientName = try #require(created.output.components(separatedBy: "client certificate CN ").last?
            .split(separator: "\n").first.map(String.init))
        #expect(try run("sedsim", ["appliance", "start", directory]).status == 0)
        let socket = ["SEDLOCK_CONTROL_SOCKET": "\(directory)/control.sock"]
        func sedlock(_ arguments: [String]) throws -> CommandResult { try run("sedlock", arguments, environment: socket) }
        func admin(_ server: String, _ arguments: [String]) throws {
            #expect(try run("sedsim", ["kmip", "admin", "--dir", "\(directory)/kmip-\(server)"] + arguments).status == 0)
        }
        func reboot() throws -> String { try run("sedsim", ["appliance", "reboot", directory]).output }
        #expect(try sedlock(["setup", "--drives", "sim:\(directory)/drives/0", "sim:\(directory)/drives/1", "--provider", "kmip"]).status == 0)
        #expect(try sedlock(["rdl", "enable", "--kmip", "ks1", "--threshold", "4", "--yes"]).stderr.contains("needs 2 to 3 key servers"))
        let enable = try sedlock(["rdl", "enable", "--kmip", "ks1", "--threshold", "2", "--yes"])
        #expect(enable.status == 0, "\(enable.stderr)")
        #expect(try sedlock(["rdl", "status"]).output.contains("any 2 of 3 key servers rebuild the token"))

        try admin("ks1", ["--distrust", clientName])
        #expect(try reboot().contains("unlocked 2/2 drives"))
        #expect(!(try sedlock(["faults"])).output.contains("RdlTokenUnavailable  array  since"))

        try admin("ks2", ["--distrust", clientName])
        #expect(waitFor { (try? sedlock(["faults"]))?.output.contains("1 of the 2 token shares needed are Active") == true })
        let locked = try reboot()
        #expect(locked.contains("no keys: 0/2") && locked.contains("no authentication attempted"), "\(locked)")
        let status = try JSONSerialization.jsonObject(with: try run("sedsim", ["status", directory + "/drives", "--json"]).stdout) as? [[String: Any]]
        #expect((status ?? []).map { $0["totalFailedAuthentications"] as? Int ?? -1 } == [0, 0])

        try admin("ks1", ["--trust", clientName])
        #expect(try reboot().contains("unlocked 2/2 drives"))
    }

    private func isZombie(_ pid: Int32) -> Bool {
        ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: ")").last?.split(separator: " ").first) == "Z"
    }
}
