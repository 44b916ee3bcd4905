import Foundation
import TCGStorage
import Testing

/// One way a simulated drive can appear as a device node, and the transport sedlock must pick for it.
struct DeviceNodeCase: CustomTestStringConvertible, Sendable {
    var createOptions: [String]
    var node: String
    var interface: String
    var transport: String
    var testDescription: String { "\(node) (\(createOptions.joined(separator: " "))) via \(transport)" }
}

/// The preload library in front of `sedsim serve`: sedlock's real SCSI, ATA and NVMe transports,
/// and tools nobody here wrote, against simulated drives.
@Suite("Simulated drives behind device nodes", .serialized)
struct DeviceNodeTests {
    let pin = "correct horse battery staple"
    let payload = Data("ledger 2026, quarter four\n".utf8)

    static let cases: [DeviceNodeCase] = [
        DeviceNodeCase(createOptions: ["--kind", "sas"], node: "/dev/sg150", interface: "sas", transport: "scsi"),
        DeviceNodeCase(createOptions: ["--kind", "sata"], node: "/dev/sdsim150", interface: "sata", transport: "scsi"),
        DeviceNodeCase(createOptions: ["--kind", "sata", "--sat-layer", "pass-through-only"], node: "/dev/sg151",
                       interface: "sata", transport: "ata16"),
        DeviceNodeCase(createOptions: ["--kind", "sata", "--sat-layer", "ata12-only"], node: "/dev/sg152",
                       interface: "sata", transport: "ata12"),
        DeviceNodeCase(createOptions: ["--kind", "nvme"], node: "/dev/nvme150", interface: "nvme", transport: "nvme"),
        DeviceNodeCase(createOptions: ["--kind", "nvme", "--block-size", "4096"], node: "/dev/nvme151n1",
                       interface: "nvme", transport: "nvme"),
    ]

    @Test("discover, take ownership, configure, lock, power-cycle, unlock, erase, PSID revert through the node",
          arguments: cases)
    func fullFlow(_ c: DeviceNodeCase) throws {
        let array = try ServedArray(drives: 1, extra: c.createOptions)
        let env = array.preloadEnvironment([c.node])
        var outputs: [String] = []
        @discardableResult
        func step(_ tool: String, _ args: [String], stdin: Data? = nil, expect status: Int32 = 0,
                  preload: Bool = true) throws -> CommandResult {
            let r = try run(tool, args, stdin: stdin, environment: preload ? env : [:])
            outputs.append(r.output + r.stderr)
            #expect(r.status == status, "\(tool) \(args.joined(separator: " ")): \(r.stderr)")
            return r
        }
        let status = try #require(try JSONSerialization.jsonObject(with: step("sedsim", ["status", array.directory, "--json"],
                                                                              preload: false).stdout) as? [[String: Any]])
        let serial = try #require(status.first?["serial"] as? String)
        let psid = try #require(status.first?["psid"] as? String)

        let discovered = try #require(try JSONSerialization.jsonObject(
            with: step("sedlock", ["drive", "discover", c.node, "--json"]).stdout) as? [String: Any])
        #expect(discovered["interface"] as? String == c.interface)
        #expect(discovered["transport"] as? String == c.transport)
        #expect(discovered["serial"] as? String == serial)

        try step("sedlock", ["drive", "take-ownership", c.node, "--new-pin-file", "-"], stdin: Data(pin.utf8))
        let pinPath = try pinFile(pin)
        defer { try? FileManager.default.removeItem(atPath: pinPath) }
        try step("sedlock", ["drive", "setup-range", c.node, "--range", "0", "--lock-on-reset", "power-cycle", "--pin-file", pinPath])
        try step("sedsim", ["write", array.directory, "0", "--lba", "8"], stdin: payload, preload: false)

        try step("sedlock", ["drive", "lock", c.node, "--pin-file", pinPath])
        let locked = try step("sedsim", ["read", array.directory, "0", "--lba", "8"], expect: 1, preload: false)
        #expect(locked.stderr.contains("data protect"))
        try step("sedlock", ["drive", "unlock", c.node, "--pin-file", pinPath])
        try step("sedsim", ["power-cycle", array.directory], preload: false)
        try step("sedsim", ["read", array.directory, "0", "--lba", "8"], expect: 1, preload: false)
        try step("sedlock", ["drive", "unlock", c.node, "--pin-file", pinPath])
        let readable = try step("sedsim", ["read", array.directory, "0", "--lba", "8"], preload: false)
        #expect(readable.stdout.prefix(payload.count) == payload)

        try step("sedlock", ["drive", "erase", c.node, "--range", "0", "--pin-file", pinPath, "--yes"])
        let erased = try step("sedsim", ["read", array.directory, "0", "--lba", "8"], preload: false)
        #expect(erased.stdout.prefix(payload.count) != payload, "data survived a crypto-erase")

        try step("sedlock", ["drive", "revert", c.node, "--psid-file", "-", "--yes"], stdin: Data((psid + "\n").utf8))
        let after = try step("sedsim", ["status", array.directory], preload: false)
        #expect(after.output.contains("owned: no") && after.output.contains("Manufactured-Inactive"))
        for text in outputs { #expect(!text.contains(pin), "a PIN leaked into output") }
    }

    @Test("a drive the simulator does not serve fails to open as a missing device does")
    func unservedDrive() throws {
        let array = try ServedArray(drives: 1, extra: ["--kind", "sas"])
        let env = array.preloadEnvironment(["/dev/sg160"])
        array.stop()
        let r = try run("sedlock", ["drive", "discover", "/dev/sg160"], environment: env)
        #expect(r.status == 12, "\(r.stderr)")  // a transport failure
        #expect(r.stderr.contains("/dev/sg160") && r.stderr.contains("No such device or address"))
    }

    @Test("sedsim devices names the nodes; drive list probes them beside the simulated drives")
    func listNodes() throws {
        let array = try ServedArray(drives: 2, extra: ["--kind", "sata"])
        try ownAndLock(array)
        // The environment exactly as an operator gets it: eval "$(sedsim devices DIR --shell)".
        let shell = try run("sedsim", ["devices", array.directory, "--shell"])
        var env: [String: String] = [:]
        for line in shell.output.split(separator: "\n") where line.hasPrefix("export ") {
            let assignment = line.dropFirst("export ".count)
            guard let eq = assignment.firstIndex(of: "=") else { continue }
            env[String(assignment[..<eq])] = String(assignment[assignment.index(after: eq)...]).trimmingCharacters(in: CharacterSet(charactersIn: "'"))
        }
        #expect(env["SEDSIM_DEVICES"] == "/dev/sg200=\(array.directory)/0,/dev/sg201=\(array.directory)/1")
        #expect(FileManager.default.fileExists(atPath: env["LD_PRELOAD"] ?? "/nonexistent"))
        let r = try run("sedlock", ["drive", "list", "--sim", array.directory, "--json"], environment: env)
        #expect(r.status == 0, "\(r.stderr)")
        let entries = try JSONSerialization.jsonObject(with: r.stdout) as? [[String: Any]] ?? []
        let byDevice = Dictionary(entries.compactMap { e in (e["device"] as? String).map { ($0, e) } }) { a, _ in a }
        #expect(byDevice["/dev/sg200"]?["locked"] as? Bool == true && byDevice["/dev/sg200"]?["owned"] as? Bool == true)
        #expect(byDevice["/dev/sg201"]?["opal"] as? Bool == true && byDevice["/dev/sg201"]?["locked"] as? Bool == false)
        #expect(byDevice["/dev/sg200"]?["bus"] as? String == "sata (preload)")
        #expect(byDevice["sim:\(array.directory)/0"]?["locked"] as? Bool == true)
    }

    @Test("dd reads and writes the media through block nodes; a locked range is an I/O error",
          arguments: [("sas", "/dev/sdsim195"), ("nvme", "/dev/nvme195n1")])
    func mediaThroughBlockNodes(kind: String, node: String) throws {
        let dd = try #require(Binaries.systemTool("dd"))
        let array = try ServedArray(drives: 1, extra: ["--kind", kind, "--block-size", kind == "nvme" ? "4096" : "512"])
        let env = array.preloadEnvironment([node])
        // An unaligned write: the preload reads the partial blocks first, as the page cache would.
        let write = try run(dd, ["of=\(node)", "bs=1", "seek=1000", "conv=notrunc"], stdin: payload, environment: env)
        #expect(write.status == 0, "\(write.stderr)")
        func readBack() throws -> CommandResult {
            try run(dd, ["if=\(node)", "bs=1", "skip=1000", "count=\(payload.count)"], environment: env)
        }
        #expect(try readBack().stdout == payload)

        try ownAndLock(array)
        let locked = try readBack()
        #expect(locked.status != 0 && locked.stderr.contains("Input/output error"), "\(locked.stderr)")
        let pinPath = try pinFile(pin)
        defer { try? FileManager.default.removeItem(atPath: pinPath) }
        #expect(try run("sedlock", ["drive", "unlock", node, "--pin-file", pinPath], environment: env).status == 0)
        #expect(try readBack().stdout == payload)
    }

    @Test("readv/writev/preadv/pwritev and the v2 forms move real data on block nodes; mmap fails saying why; an existing node or a bad entry is refused with its reason")
    func vectorIOAndRefusals() throws {
        let array = try ServedArray(drives: 1, extra: ["--kind", "nvme", "--block-size", "512"])
        let node = "/dev/nvme196n1"
        let env = array.preloadEnvironment([node])
        let script = """
            import os, mmap
            fd = os.open("\(node)", os.O_RDWR)
            assert os.pwritev(fd, [b"A" * 512, b"B" * 1024], 4096) == 1536
            bufs = [bytearray(1024), bytearray(512)]
            assert os.preadv(fd, bufs, 4096) == 1536
            assert bytes(bufs[0]) == b"A" * 512 + b"B" * 512 and bytes(bufs[1]) == b"B" * 512
            os.lseek(fd, 8192, os.SEEK_SET)
            assert os.writev(fd, [b"C" * 256, b"D" * 256]) == 512
            os.lseek(fd, 8192, os.SEEK_SET)
            back = bytearray(512)
            assert os.readv(fd, [back]) == 512 and bytes(back) == b"C" * 256 + b"D" * 256
            assert os.pwritev(fd, [b"E" * 512], 12288, os.RWF_DSYNC) == 512
            again = bytearray(512)
            assert os.preadv(fd, [again], 12288, 0) == 512 and bytes(again) == b"E" * 512
            try:
                mmap.mmap(fd, 4096)
                print("mapped")
            except OSError as e:
                print("mmap errno", e.errno)
            """
        let python = try #require(Binaries.systemTool("python3"))
        let run1 = try run(python, ["-c", script], environment: env)
        #expect(run1.status == 0 && run1.output == "mmap errno 19\n", "\(run1.output) \(run1.stderr)")
        #expect(run1.stderr.contains("mmap of \(node) is not supported"))
        // The data really is on the drive: the simulator reads it back.
        #expect(try run("sedsim", ["read", array.directory, "0", "--lba", "16"]).stdout.prefix(256) == Data(repeating: UInt8(ascii: "C"), count: 256))

        // /dev/null exists: mapping it would send every program's writes to the drive.
        var refused = env
        refused["SEDSIM_DEVICES"] = "/dev/null=\(array.directory)/0,/dev/sg197=\(array.directory),/dev/sg198=/tmp/\(String(repeating: "x", count: 120))/0"
        let plain = try run(python, ["-c", "import os; fd = os.open('/dev/null', os.O_WRONLY); print(os.write(fd, b'x' * 10))"], environment: refused)
        #expect(plain.output == "10\n")
        #expect(plain.stderr.contains("'/dev/null=\(array.directory)/0': that path exists on this machine"), "\(plain.stderr)")
        #expect(plain.stderr.contains("the drive number must be 0 to 65535"))
        #expect(plain.stderr.contains("longer than a Unix socket allows"))
    }

    @Test("/dev listings, scandir(3), glob(3) and stat show the nodes as the kernel would (sedutil-cli --scan lists /dev, openSeaChest scans with scandir)")
    func devListing() throws {
        let array = try ServedArray(drives: 1, extra: ["--kind", "nvme"])
        let env = array.preloadEnvironment(["/dev/sg190", "/dev/nvme190", "/dev/nvme191n1", "/dev/sdsim190"])
        let ls = try #require(Binaries.systemTool("ls"))
        let listing = try run(ls, ["-l", "/dev"], environment: env)
        #expect(listing.status == 0, "\(listing.stderr)")
        let lines = listing.output.split(separator: "\n").map(String.init)
        func line(_ name: String) -> String? { lines.first { $0.hasSuffix(" \(name)") } }
        #expect(line("sg190")?.hasPrefix("crw") == true && line("sg190")?.contains(" 21, ") == true, "sg: char major 21")
        #expect(line("nvme190")?.hasPrefix("crw") == true, "NVMe controller: char")
        #expect(line("nvme191n1")?.hasPrefix("brw") == true && line("nvme191n1")?.contains(" 259, ") == true, "namespace: block 259")
        #expect(line("sdsim190")?.hasPrefix("brw") == true && line("sdsim190")?.contains(" 8, ") == true, "SCSI disk: block 8")
        // Without the preload library the same paths do not exist.
        #expect(try run(ls, ["/dev/sg190"]).status != 0)

        // scandir(3) and scandirat(3) (glibc reads those through its own opendir, as
        // openSeaChest's --scan does): the mapped nodes are there, through the caller's filter.
        let script = """
            import ctypes, os
            class Dirent(ctypes.Structure):
                _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64), ("d_reclen", ctypes.c_ushort),
                            ("d_type", ctypes.c_ubyte), ("d_name", ctypes.c_char * 256)]
            libc = ctypes.CDLL(None)
            FILTER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Dirent))
            keep_sg = FILTER(lambda e: 1 if e.contents.d_name.startswith(b"sg") else 0)
            def names(call, *args):
                entries = ctypes.POINTER(ctypes.POINTER(Dirent))()
                n = call(*args[:-1], ctypes.byref(entries), args[-1], None)
                return sorted(entries[i].contents.d_name.decode() for i in range(n))
            everything = names(libc.scandir, b"/dev", None)
            only_sg = names(libc.scandir, b"/dev", keep_sg)
            fd = os.open("/", os.O_RDONLY)
            relative = names(libc.scandirat, fd, b"dev", None)
            print(" ".join(n for n in ["sg190", "nvme190", "nvme191n1", "sdsim190"] if n in everything),
                  "|", " ".join(n for n in only_sg if n.endswith("190")), "|", "sdsim190" in relative)
            """
        let scanned = try run("/usr/bin/python3", ["-c", script], environment: env)
        #expect(scanned.output.trimmingCharacters(in: .whitespacesAndNewlines) == "sg190 nvme190 nvme191n1 sdsim190 | sg190 | True",
                "\(scanned.output) \(scanned.stderr)")

        // glob(3) too (it reads /dev through glibc's own opendir): patterns, GLOB_NOCHECK, sorting.
        let globScript = """
            import ctypes
            class Glob(ctypes.Structure):
                _fields_ = [("pathc", ctypes.c_size_t), ("pathv", ctypes.POINTER(ctypes.c_char_p)), ("offs", ctypes.c_size_t),
                            ("flags", ctypes.c_int)] + [("f%d" % i, ctypes.c_void_p) for i in range(5)]
            libc = ctypes.CDLL(None)
            def matches(pattern, flags=0):
                g = Glob()
                status = libc.glob(pattern.encode(), flags, None, ctypes.byref(g))
                found = [g.pathv[i].decode() for i in range(g.pathc)]
                libc.globfree(ctypes.byref(g))
                return status, found
            GLOB_NOCHECK = 16
            print(matches("/dev/nvme19*"), matches("/dev/sg19?"), matches("/dev/nosuch*", GLOB_NOCHECK), matches("/dev/nosuch*"))
            """
        let globbed = try run("/usr/bin/python3", ["-c", globScript], environment: env)
        #expect(globbed.output.trimmingCharacters(in: .whitespacesAndNewlines)
                == "(0, ['/dev/nvme190', '/dev/nvme191n1']) (0, ['/dev/sg190']) (0, ['/dev/nosuch*']) (3, [])",
                "\(globbed.output) \(globbed.stderr)")
    }

    @Test("without privilege, opening a device names the capability to grant",
          .enabled(if: Binaries.systemTool("setpriv") != nil))
    func unprivileged() throws {
        let node = "/tmp/sedlock-node-\(UUID().uuidString.prefix(8))"
        FileManager.default.createFile(atPath: node, contents: Data(), attributes: [.posixPermissions: 0o600])
        defer { try? FileManager.default.removeItem(atPath: node) }
        let setpriv = try #require(Binaries.systemTool("setpriv"))
        let r = try run(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", Binaries.url("sedlock").path,
                                  "drive", "discover", "/dev/../\(node)"])
        #expect(r.status == 12, "\(r.stderr)")
        #expect(r.stderr.contains("Permission denied") && r.stderr.contains("CAP_SYS_RAWIO"), "\(r.stderr)")
    }

    /// Takes ownership of drive 0 and locks its global range (so discovery shows a changed state).
    private func ownAndLock(_ array: ServedArray) throws {
        #expect(try run("sedlock", ["drive", "take-ownership", array.device(0), "--new-pin-file", "-"], stdin: Data(pin.utf8)).status == 0)
        let pinPath = try pinFile(pin)
        defer { try? FileManager.default.removeItem(atPath: pinPath) }
        #expect(try run("sedlock", ["drive", "setup-range", array.device(0), "--range", "0", "--pin-file", pinPath]).status == 0)
        #expect(try run("sedlock", ["drive", "lock", array.device(0), "--pin-file", pinPath]).status == 0)
    }

    /// Checks Level 0 Discovery bytes a tool received against what `sedsim status` reports.
    private func expectDiscovery(_ bytes: [UInt8], matches array: ServedArray, drive: Int) throws {
        let discovery = try Level0Discovery.decode(bytes)
        let status = try #require(try JSONSerialization.jsonObject(
            with: run("sedsim", ["status", array.directory, "--drive", "\(drive)", "--json"]).stdout) as? [[String: Any]])
        let report = try #require(status.first)
        let ranges = report["ranges"] as? [[String: Any]] ?? []
        let anyLocked = ranges.contains { ($0["readLocked"] as? Bool == true && $0["readLockEnabled"] as? Bool == true)
            || ($0["writeLocked"] as? Bool == true && $0["writeLockEnabled"] as? Bool == true) }
        #expect(discovery.opal != nil)
        #expect(discovery.blockSID?.sidValueState == report["owned"] as? Bool)
        #expect(discovery.locking?.lockingEnabled == (report["lockingSP"] as? String == "Manufactured"))
        #expect(discovery.locking?.locked == anyLocked)
    }

    private func status(_ array: ServedArray, drive: Int) throws -> [String: Any] {
        let status = try JSONSerialization.jsonObject(
            with: run("sedsim", ["status", array.directory, "--drive", "\(drive)", "--json"]).stdout) as? [[String: Any]]
        return try #require(status?.first)
    }

    @Test("sg3_utils' sg_modes, sg_logs and sg_opcodes read the mode pages, log pages and command list a SAS drive answers; on SATA, libata's share")
    func sg3UtilsPages() throws {
        let tools = try ["sg_modes", "sg_logs", "sg_opcodes"].map { try #require(Binaries.systemTool($0), "sg3-utils is installed by scripts/setup") }
        let sas = try ServedArray(drives: 1, extra: ["--kind", "sas"])
        let env = sas.preloadEnvironment(["/dev/sg180"])
        let modes = try run(tools[0], ["-a", "/dev/sg180"], environment: env)
        #expect(modes.status == 0 && ["Read-Write error recovery", "Caching", "Control", "Informational exceptions control"]
            .allSatisfy(modes.output.contains), "\(modes.output) \(modes.stderr)")
        let logs = try run(tools[1], ["-a", "/dev/sg180"], environment: env)
        #expect(logs.status == 0 && logs.output.contains("Current temperature = 35 C") && logs.output.contains("Self-test results page"),
                "\(logs.output) \(logs.stderr)")
        let opcodes = try run(tools[2], ["/dev/sg180"], environment: env)
        #expect(opcodes.status == 0 && opcodes.output.contains("Security protocol in") && opcodes.output.contains("Log sense"),
                "\(opcodes.output) \(opcodes.stderr)")
        let sata = try ServedArray(drives: 1, extra: ["--kind", "sata"])
        let sataEnv = sata.preloadEnvironment(["/dev/sg181"])
        let sataModes = try run(tools[0], ["-p", "ca", "/dev/sg181"], environment: sataEnv)
        #expect(sataModes.status == 0 && sataModes.output.contains("Caching"), "\(sataModes.output) \(sataModes.stderr)")
        // libata has no LOG SENSE: the log pages are an unknown command there, as on a Linux host.
        let sataLogs = try run(tools[1], ["/dev/sg181"], environment: sataEnv)
        #expect(sataLogs.status != 0, "\(sataLogs.output)")
    }

    @Test("sg3_utils (sg_inq, sg_raw, sg_sat_identify) read identity and Level 0 Discovery from SAS and SATA nodes",
          arguments: ["sas", "sata"])
    func sg3Utils(kind: String) throws {
        let sgInq = try #require(Binaries.systemTool("sg_inq"), "sg3-utils is installed by scripts/setup")
        let sgRaw = try #require(Binaries.systemTool("sg_raw"))
        let sgSatIdentify = try #require(Binaries.systemTool("sg_sat_identify"))
        let array = try ServedArray(drives: 2, extra: ["--kind", kind])
        try ownAndLock(array)
        let nodes = ["/dev/sg170", "/dev/sg171"]
        let env = array.preloadEnvironment(nodes)
        for (n, node) in nodes.enumerated() {
            let report = try status(array, drive: n)
            let serial = try #require(report["serial"] as? String)
            let inquiry = try run(sgInq, [node], environment: env)
            #expect(inquiry.status == 0, "\(inquiry.stderr)")
            #expect(inquiry.output.contains("Vendor identification: \(kind == "sata" ? "ATA" : "SEDSIM")"))
            #expect(inquiry.output.contains("Unit serial number: \(serial)"))

            // Level 0 Discovery with SECURITY PROTOCOL IN, protocol 1, ComID 1, 2048 bytes.
            let out = "/tmp/sedlock-l0-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: out) }
            let raw = try run(sgRaw, ["-r", "2048", "-o", out, node, "a2", "01", "00", "01", "00", "00", "00", "00", "08", "00", "00", "00"],
                              environment: env)
            #expect(raw.status == 0, "\(raw.stderr)")
            try expectDiscovery(Array(try Data(contentsOf: URL(fileURLWithPath: out))), matches: array, drive: n)

            let identify = try run(sgSatIdentify, ["-i", node], environment: env)
            if kind == "sata" {
                // The WWN from IDENTIFY DEVICE words 108-111 is the drive's.
                #expect(identify.status == 0 && identify.output.contains((report["wwn"] as? String ?? "?")), "\(identify.output) \(identify.stderr)")
                // TRUSTED RECEIVE in ATA PASS-THROUGH(16): the same discovery through the ATA route.
                let ata = try run(sgRaw, ["-r", "512", "-o", out, node, "85", "08", "0e", "00", "01", "00", "01", "00", "00", "00", "01",
                                          "00", "00", "40", "5c", "00"], environment: env)
                #expect(ata.status == 0, "\(ata.stderr)")
                try expectDiscovery(Array(try Data(contentsOf: URL(fileURLWithPath: out))), matches: array, drive: n)
            } else {
                // A SAS drive refuses ATA pass-through, as SAS devices do.
                #expect(identify.status != 0 && identify.stderr.contains("Illegal request"), "\(identify.stderr)")
            }
        }
        // Media through the node: the locked drive answers READ(10) with DATA PROTECT, the other reads.
        let lockedRead = try run(sgRaw, ["-r", "512", nodes[0], "28", "00", "00", "00", "00", "08", "00", "00", "01", "00"], environment: env)
        #expect(lockedRead.status != 0 && lockedRead.stderr.contains("Data Protect"), "\(lockedRead.stderr)")
        let openRead = try run(sgRaw, ["-r", "512", nodes[1], "28", "00", "00", "00", "00", "08", "00", "00", "01", "00"], environment: env)
        #expect(openRead.status == 0, "\(openRead.stderr)")
    }

    @Test("nvme-cli (id-ctrl, security-recv, read) reads identity and Level 0 Discovery from NVMe nodes")
    func nvmeCLI() throws {
        let nvme = try #require(Binaries.systemTool("nvme"), "nvme-cli is installed by scripts/setup")
        let array = try ServedArray(drives: 2, extra: ["--kind", "nvme"])
        try ownAndLock(array)
        let nodes = ["/dev/nvme170n1", "/dev/nvme171"]
        let env = array.preloadEnvironment(nodes)
        for (n, node) in nodes.enumerated() {
            let report = try status(array, drive: n)
            let identify = try run(nvme, ["id-ctrl", node, "-o", "json"], environment: env)
            #expect(identify.status == 0, "\(identify.stderr)")
            let controller = try JSONSerialization.jsonObject(with: identify.stdout) as? [String: Any]
            #expect((controller?["sn"] as? String)?.trimmingCharacters(in: .whitespaces) == report["serial"] as? String)
            #expect((controller?["mn"] as? String)?.trimmingCharacters(in: .whitespaces) == report["model"] as? String)
            #expect(((controller?["oacs"] as? Int) ?? 0) & 1 == 1, "Security Send/Receive supported")

            let received = try run(nvme, ["security-recv", node, "--secp=1", "--spsp=1", "--size=2048", "--al=2048", "-b"],
                                   environment: env)
            #expect(received.status == 0, "\(received.stderr)")
            // nvme-cli 2.x prints its success line before the raw bytes on standard output.
            let bytes = Array(received.stdout)
            let start = (bytes.firstIndex(of: 0x0A) ?? -1) + 1
            try expectDiscovery(Array(bytes[start...]), matches: array, drive: n)
        }
        // I/O through the namespace node: the locked drive answers Access Denied.
        let out = "/tmp/sedlock-nvme-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let locked = try run(nvme, ["read", nodes[0], "-s", "8", "-c", "0", "-z", "512", "-d", out], environment: env)
        #expect(locked.status != 0 && locked.stderr.contains("Access Denied"), "\(locked.stderr)")
    }
}
