import ControlAPI
import ControlSocket
import Foundation
import Logging
import Platform
import Synchronization
import Testing

@Suite("Control socket: connection quotas")
struct ConnectionQuotaTests {
    @Test("root's slots are its own; a reader's share and the reader pool make room by closing the idlest reader, else busy")
    func quota() {
        var quota = ConnectionQuota(limits: .init(privileged: 2, readers: 3, perReader: 2), privilegedUsers: [0, 990])
        // Readers fill their pool: 1000 twice (its share), 1001 once.
        guard case .admitted(let a, []) = quota.admit(uid: 1000, now: 10),
              case .admitted(let b, []) = quota.admit(uid: 1000, now: 20),
              case .admitted(let c, []) = quota.admit(uid: 1001, now: 30) else { Issue.record("readers not admitted"); return }
        // Root and the daemon's own user are admitted whatever the readers hold, up to their own limit.
        guard case .admitted(let r1, []) = quota.admit(uid: 0, now: 40), case .admitted(_, []) = quota.admit(uid: 990, now: 41) else {
            Issue.record("root not admitted"); return
        }
        #expect(quota.admit(uid: 0, now: 42) == .busy("sedlockd serves 2 connections of root at once"))
        quota.release(r1)
        #expect({ if case .admitted = quota.admit(uid: 0, now: 43) { return true } else { return false } }())

        // 1000 a third time: its own idlest connection (a) makes room.
        guard case .admitted(let d, let closed) = quota.admit(uid: 1000, now: 50) else { Issue.record("not admitted"); return }
        #expect(closed == [a])
        // A new reader while the pool is full: the idlest reader of all (b, idle since 20) goes.
        quota.mark(c, idle: true, now: 60)
        guard case .admitted(let e, let closedForNewcomer) = quota.admit(uid: 1002, now: 70) else { Issue.record("not admitted"); return }
        #expect(closedForNewcomer == [b])
        // Every reader with a request in hand: nobody is closed, the newcomer hears busy.
        for id in [c, d, e] { quota.mark(id, idle: false, now: 0) }
        guard case .busy = quota.admit(uid: 1003, now: 80) else { Issue.record("a busy pool admitted a reader"); return }
    }

    @Test("a flood of idle reader connections (another user, again and again) leaves root's requests answered")
    func readerFloodLeavesRootServed() async throws {
        let directory = "/tmp/sedlock-quota-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/control.sock"
        let listener = try StreamSocket.listen(path: path, mode: 0o666)
        var limits = ControlServerLimits()
        limits.requestTimeout = 5
        limits.maximumConnections = 16
        limits.readerConnections = 8
        limits.connectionsPerReader = 8
        let server = ControlServer(listener: listener, policy: AccessPolicy(readerGroup: (name: "nogroup", gid: 65534)), limits: limits,
                                   logger: Logger(label: "test"), executor: BlockingExecutor(threads: 2, name: "quota-handlers")) { _, _, _ in
            .guardState(GuardReport(drives: [], bootLoopHold: false, consecutiveFailedBoots: 0))
        }
        server.start()
        // The flooder: user nobody opens 64 connections, sends nothing, and opens a new one each
        // time one is closed, for 6 seconds.
        let flood = """
        import socket, time
        held, opened, end, ready = [], 0, time.time() + 6, False
        while time.time() < end:
            held = [s for s in held if s.fileno() >= 0]
            while len(held) < 64:
                s = socket.socket(socket.AF_UNIX); s.connect("\(path)"); held.append(s); opened += 1
            if not ready: print("ready", flush=True); ready = True
            for s in list(held):
                s.setblocking(False)
                try:
                    if s.recv(4096) == b"": s.close(); held.remove(s)
                except BlockingIOError: pass
                except OSError: s.close(); held.remove(s)
            time.sleep(0.01)
        print(opened)
        """
        let flooder = Process()
        flooder.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        flooder.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", flood]
        let output = Pipe()
        flooder.standardOutput = output
        try flooder.run()
        // Its first 64 connections are open before root asks anything.
        let ready = output.fileHandleForReading.availableData
        #expect(String(decoding: ready, as: UTF8.self).hasPrefix("ready"))

        // Root, meanwhile: 30 requests, one connection each.
        let answered = Mutex(0)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                for _ in 0..<30 {
                    if case .guardState? = try? ControlClient(path: path).send(.status, timeout: 5) { answered.withLock { $0 += 1 } }
                }
                done.resume()
            }
        }
        flooder.waitUntilExit()
        let opened = Int(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").last.map(String.init) ?? "") ?? 0
        #expect(answered.withLock { $0 } == 30)
        #expect(opened > limits.readerConnections, "the flooder reopened connections that were closed to make room (\(opened))")
        await server.stop()
        #expect(server.connectionCount == 0)
    }
}
