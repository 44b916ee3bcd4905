import Foundation
import Platform
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Careless or hostile input to the CLI and the simulator: a clear error naming the cause,
/// bounded in size and time, and nothing changed.
@Suite("Hardening: bad input gets a clear, bounded error", .serialized)
struct HardeningTests {
    @Test("PIN files: a directory, an oversized stdin, a FIFO with no writer, and the exact size limit")
    func pinFiles() throws {
        let array = try ServedArray()
        let dev = array.device()
        let dir = "/tmp/sedlock-pins-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let directory = try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", dir])
        #expect(directory.status == 64 && directory.stderr.contains("is a directory"))

        let missing = try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", dir + "/none"])
        #expect(missing.status == 64 && missing.stderr.contains("No such file or directory"))

        // 2 MB on stdin: refused after reading at most the limit, not all of it.
        let big = try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", "-"], stdin: Data(count: 2 << 20))
        #expect(big.status == 64 && big.stderr.contains("at most 4096 bytes"))

        // A FIFO nobody writes to: no hang.
        let fifo = dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let start = Date()
        let silent = try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", fifo], timeout: 60)
        #expect(silent.status == 64 && Date().timeIntervalSince(start) < 45)

        // Exactly 4,096 bytes is a PIN file (the drive then refuses so long a PIN: it is not a file error).
        let exact = dir + "/exact"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: exact))
        let atLimit = try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", exact])
        #expect(!atLimit.stderr.contains("at most 4096"))
        try Data(repeating: 0x41, count: 4097).write(to: URL(fileURLWithPath: exact))
        #expect(try run("sedlock", ["drive", "take-ownership", dev, "--new-pin-file", exact]).stderr.contains("at most 4096 bytes"))
        #expect(!(try run("sedsim", ["status", array.directory])).output.contains("owned: yes"))
    }

    @Test("options that would be ignored and addresses that would be clamped are refused")
    func refusedCombinations() throws {
        let pin = try pinFile("p")
        defer { try? FileManager.default.removeItem(atPath: pin) }
        let image = try run("sedlock", ["drive", "mbr", "sim:/tmp/x/0", "enable", "--image", pin, "--pin-file", pin])
        #expect(image.status == 64 && image.stderr.contains("only with 'load'"))
        let clamped = try run("sedlock", ["drive", "discover", "sim:/tmp/x/65536"])
        #expect(clamped.status == 64)
        let adminWithoutKeep = try run("sedlock", ["drive", "revert", "sim:/tmp/x/0", "--sid-pin-file", pin, "--admin-pin-file", pin, "--yes"])
        #expect(adminWithoutKeep.status == 64 && adminWithoutKeep.stderr.contains("only with --keep-data"))
    }

    @Test("help for a subcommand that does not exist is refused, not answered with the parent's help",
          arguments: [("sedlock", ["range", "--help"], "'sedlock' has no subcommand 'range'", ["--help"]),
                      ("sedlock", ["help", "drive", "rnage"], "'sedlock drive' has no subcommand 'rnage'", ["help", "drive"]),
                      ("sedlock", ["drive", "rnage", "-h"], "its subcommands are: list, discover", ["drive", "-h"]),
                      ("sedsim", ["appliance", "bogus", "--help"], "'sedsim appliance' has no subcommand 'bogus'", ["appliance", "--help"])])
    func unknownSubcommandHelp(tool: String, arguments: [String], message: String, realHelp: [String]) throws {
        let result = try run(tool, arguments)
        #expect(result.status == 64)
        #expect(result.stderr.contains(message))
        #expect(!result.output.contains("OVERVIEW"))
        // Help for real subcommands is still help.
        let help = try run(tool, realHelp)
        #expect(help.status == 0 && help.output.contains("OVERVIEW"))
    }

    @Test("an array or socket another user owns: the system's reason, not 'not an array' or 'start sedsim serve'")
    func permissionDenied() throws {
        let array = try ServedArray()
        let asNobody = ["-u", "nobody", Binaries.url("sedlock").path, "drive", "discover", array.device()]
        let discover = try ProcessRunner.run("/usr/sbin/runuser", asNobody, timeout: 60)
        #expect(discover.status == 12)
        #expect(discover.stderr.contains("Permission denied") && discover.stderr.contains("only for the user serving the array"))
        #expect(!discover.stderr.contains("start it with"))
        let status = try ProcessRunner.run("/usr/sbin/runuser", ["-u", "nobody", Binaries.url("sedsim").path, "status", array.directory],
                                           timeout: 60)
        #expect(status.status != 0)
        #expect(status.stderr.contains("Permission denied") && !status.stderr.contains("no array.json"))
        let missing = try run("sedsim", ["status", array.directory + "/nothing"])
        #expect(missing.stderr.contains("no array.json in"))
    }

    @Test("sedsim create refuses sizes no drive can hold, and keeps arrays private whatever the umask")
    func simulatorCreate() throws {
        let dir = "/tmp/sedsim-h-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for size in ["99999T", "9223372036854775808", "17T"] {
            let r = try run("sedsim", ["create", dir, "--size", size])
            #expect(r.status != 0 && !r.stderr.isEmpty, "size \(size)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/array.json"))
        }
        let previous = umask(0)
        defer { umask(previous) }
        let array = try ServedArray()
        let mode = { (path: String) in (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1 }
        #expect(mode(array.directory) == 0o700)
        #expect(mode(array.directory + "/drive-0") == 0o700)
        #expect(mode(array.directory + "/sedsim.sock") == 0o600)
    }

    @Test("sedsim serve: frames announced and never sent cost no memory, and running out of descriptors does not stop it")
    func simulatorServerBounds() throws {
        let array = try ServedArray(drives: 1)
        array.stop()
        // Serve with few descriptors, so that the connections below exhaust them (EMFILE).
        let server = try SpawnedProcess("/usr/bin/prlimit", ["--nofile=48:48", Binaries.url("sedsim").path, "serve", array.directory])
        defer { server.stop() }
        let socket = array.directory + "/sedsim.sock"
        #expect(waitFor { ServedArray.canConnect(socket) })
        var held: [StreamSocket] = []
        for _ in 0..<100 {
            guard let connection = try? StreamSocket.connect(path: socket) else { continue }
            // A header announcing a 16 MiB frame, and then nothing.
            try? connection.send([0x01, 0x00, 0x00, 0x00], deadline: .after(seconds: 2))
            held.append(connection)
        }
        usleep(300_000)
        // prlimit execs sedsim in its own process.
        let status = (try? String(contentsOfFile: "/proc/\(server.pid)/status", encoding: .utf8)) ?? ""
        let rssKB = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? -1
        #expect(rssKB > 0 && rssKB < 200_000, "sedsim serve holds \(rssKB) kB with 100 half-sent frames")
        #expect(server.isRunning, "sedsim serve exited when it ran out of descriptors")
        held.removeAll()
        // Once the descriptors are free again, it serves as before.
        #expect(waitFor { (try? run("sedsim", ["status", array.directory, "--json"]))?.status == 0 })
        #expect(try run("sedlock", ["drive", "discover", array.device()]).status == 0)
    }
}
