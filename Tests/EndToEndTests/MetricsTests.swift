import Foundation
import Platform
import TestSupport
import Testing

/// sedlockd's Prometheus metrics, scraped over its loopback endpoint and read from its textfile,
/// parsed by prometheus_client (a real Prometheus text parser), while a fault is raised and cleared.
@Suite("Metrics", .serialized)
struct MetricsTests {
    /// Samples as prometheus_client parses them: "name{label=value,…}" → value.
    static func parse(_ text: String) throws -> [String: Double] {
        let script = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            for family in text_string_to_metric_families(sys.stdin.read()):
                for s in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                    print(f"{s.name}{{{labels}}} {s.value!r}")
            """
        let parsed = try ProcessRunner.run(packageRoot.appendingPathComponent(".venv/bin/python").path, ["-c", script],
                                           stdin: Data(text.utf8))
        guard parsed.status == 0 else { throw HarnessError("prometheus_client refused the text: \(parsed.stderr)\n\(text)") }
        var samples: [String: Double] = [:]
        for line in parsed.output.split(separator: "\n") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    static func scrape(_ port: Int) -> String? {
        let curl = try? ProcessRunner.run("/usr/bin/python3", ["-c", "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:\(port)/metrics', timeout=5).read().decode())"])
        return curl?.status == 0 ? curl?.output : nil
    }

    @Test("drives by state, generations, key server up and round trip, boot duration; a key server fault raised then cleared shows in both the endpoint and the textfile; no key identifier appears")
    func scrapeWhileFaultsChange() throws {
        let f = try RDLFixture(drives: 2)
        // A boot unlock first, so that its duration is on record.
        #expect(try run("sedsim", ["power-cycle", f.array.directory]).status == 0)
        try f.newBoot()
        #expect(try run("sedlock", ["unlock", "--all", "--boot"] + f.state).status == 0)
        let port = 20_000 + Int.random(in: 0..<10_000)
        let file = f.scratch + "/sedlock.prom"
        let (daemon, socket) = try f.startDaemon("""
            [monitors]
            drives_interval = 1
            key_servers_interval = 1
            [metrics]
            listen = "127.0.0.1:\(port)"

            """, extra: ["--metrics-file", file])
        defer { daemon.stop() }
        #expect(try run("sedlockd", ["check-config", f.scratch + "/sedlockd.toml"]).output.contains("endpoint http://127.0.0.1:\(port)/metrics"))

        var samples: [String: Double] = [:]
        #expect(waitFor(seconds: 15) {
            samples = (Self.scrape(port).flatMap { try? Self.parse($0) }) ?? [:]
            return samples["sedlock_key_server_up{server=ks1}"] == 1 && samples["sedlock_drives{state=unlocked}"] == 2
        }, "\(samples)")
        #expect(samples["sedlock_drives{state=locked}"] == 0 && samples["sedlock_drives{state=guarded}"] == 0)
        #expect(samples["sedlock_key_generations{state=active}"] == 1)
        #expect((samples["sedlock_key_server_round_trip_seconds{server=ks1}"] ?? 0) > 0)
        #expect((samples["sedlock_boot_unlock_duration_seconds{}"] ?? 0) > 0 && samples["sedlock_boot_unlock_outcome{outcome=unlocked}"] == 1)
        #expect(samples["sedlock_rekey_in_progress{}"] == 0 && samples["sedlock_faults_open{}"] == 0)
        #expect(samples["sedlock_unmanaged_drives{}"] == 0, "every drive of the simulated array is the array's")
        #expect(samples["sedlock_unencrypted_drives{}"] == 0, "every drive of the array encrypts")

        // The key server refuses connections: KmipServerFault, server down; then back.
        #expect(try f.admin(["--refuse", "on"]))
        #expect(waitFor(seconds: 15) {
            samples = (Self.scrape(port).flatMap { try? Self.parse($0) }) ?? [:]
            return samples["sedlock_faults{name=KmipServerFault,severity=critical}"] == 1
        }, "\(samples)")
        #expect(samples["sedlock_key_server_up{server=ks1}"] == 0 && samples["sedlock_faults_raised_total{name=KmipServerFault}"] == 1)
        #expect(try f.admin(["--refuse", "off"]))
        #expect(waitFor(seconds: 15) {
            samples = (Self.scrape(port).flatMap { try? Self.parse($0) }) ?? [:]
            return samples["sedlock_key_server_up{server=ks1}"] == 1 && samples["sedlock_faults{name=KmipServerFault,severity=critical}"] == nil
        }, "\(samples)")
        #expect(samples["sedlock_faults_open{}"] == 0 && samples["sedlock_faults_raised_total{name=KmipServerFault}"] == 1)

        // The textfile: the same metrics, world-readable, replaced whole.
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let fromFile = try Self.parse(text)
        #expect(fromFile["sedlock_drives{state=unlocked}"] == 2 && fromFile["sedlock_key_server_up{server=ks1}"] == 1)
        var info = stat()
        #expect(stat(file, &info) == 0 && info.st_mode & 0o777 == 0o644)
        // Nothing that names a key: no generation's key ID, no token.
        let keys = try run("sedlock", ["keys", "list", "--json", "--control-socket", socket])
        let ids = ((try JSONSerialization.jsonObject(with: keys.stdout) as? [String: Any])?["keys"] as? [[String: Any]] ?? [])
            .compactMap { $0["keyID"] as? String }
        #expect(!ids.isEmpty)
        for id in ids { #expect(!text.contains(id) && !(Self.scrape(port) ?? "").contains(id)) }
        // Anything but /metrics is not served.
        let other = try ProcessRunner.run("/usr/bin/python3", ["-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:\(port)/state', timeout=5)"])
        #expect(other.status != 0 && other.stderr.contains("404"))
    }

    @Test("with the endpoint up: held connections, malformed and endless requests cost a scrape nothing; SIGTERM ends sedlockd promptly; a second daemon on the same port exits 1 saying why")
    func endpointLifecycle() throws {
        let directory = "/tmp/sedlock-metrics-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = 20_000 + Int.random(in: 0..<10_000)
        try Data("[metrics]\nlisten = \"127.0.0.1:\(port)\"\n".utf8).write(to: URL(fileURLWithPath: directory + "/c.toml"))
        func daemon(_ n: Int) throws -> SpawnedProcess {
            try SpawnedProcess(Binaries.url("sedlockd").path, ["serve", "--config", directory + "/c.toml", "--state-dir", directory + "/state\(n)",
                                                               "--control-socket", directory + "/c\(n).sock"])
        }
        let first = try daemon(1)
        defer { first.stop() }
        #expect(waitFor { Self.scrape(port) != nil })
        // Hostile local clients: 20 connections held open (10 of them a request line cut short),
        // a malformed request, an endless head, a POST; a scrape beside them is answered at once.
        let hostile = """
        import socket, sys, time
        port = int(sys.argv[1])
        def ask(data):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                out += chunk
            s.close()
            return out.split(b"\\r\\n", 1)[0].decode()
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
        for s in held[:10]: s.sendall(b"GET /metr")
        print(ask(b"GARBAGE\\r\\n\\r\\n"))
        head = b"GET /metrics HTTP/1.1\\r\\nX-Filler: "
        print(ask(head + b"a" * (8192 - len(head))))
        print(ask(b"POST /metrics HTTP/1.1\\r\\n\\r\\n"))
        start = time.monotonic()
        print(ask(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"), time.monotonic() - start < 2)
        """
        let answers = try ProcessRunner.run("/usr/bin/python3", ["-c", hostile, "\(port)"], timeout: 30)
        #expect(answers.output.split(separator: "\n") == ["HTTP/1.1 400 Bad Request", "HTTP/1.1 431 Request Header Fields Too Large",
                                                          "HTTP/1.1 405 Method Not Allowed", "HTTP/1.1 200 OK True"],
                "\(answers.output) \(answers.stderr)")
        let second = try run("sedlockd", ["serve", "--config", directory + "/c.toml", "--state-dir", directory + "/state2",
                                          "--control-socket", directory + "/c2.sock"], timeout: 20)
        #expect(second.status == 1 && second.stderr.contains("cannot serve metrics on 127.0.0.1:\(port)"), "\(second.stderr)")
        first.signal(SIGTERM)
        let start = Date()
        #expect(waitFor(seconds: 10) { !first.isRunning })
        #expect(Date().timeIntervalSince(start) < 3)
        #expect(first.terminationStatus == 0)
    }

    @Test("[metrics] listen takes loopback addresses only")
    func loopbackOnly() throws {
        let directory = "/tmp/sedlock-metrics-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (listen, valid) in [("127.0.0.1:9840", true), ("[::1]:9840", true), ("localhost:9840", true),
                                ("0.0.0.0:9840", false), ("192.0.2.1:9840", false), ("127.0.0.1", false), ("127.0.0.1:0", false)] {
            try Data("[metrics]\nlisten = \"\(listen)\"\n".utf8).write(to: URL(fileURLWithPath: directory + "/c.toml"))
            let check = try run("sedlockd", ["check-config", directory + "/c.toml"])
            #expect((check.status == 0) == valid, "\(listen): \(check.output) \(check.stderr)")
            if !valid { #expect(check.status == 78 && check.stderr.contains("loopback"), "\(listen)") }
        }
    }
}
