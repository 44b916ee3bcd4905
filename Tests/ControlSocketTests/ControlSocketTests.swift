import ControlAPI
import ControlSocket
import Foundation
import Logging
import Platform
import Synchronization
import Testing

@Suite("Control socket: framing, access policy, line reader, server")
struct ControlSocketTests {
    @Test("requests and replies round-trip as one line with the version; other versions and garbage are clear errors")
    func framing() throws {
        let requests: [ControlRequest] = [.status, .lock(LockRequest(drives: .all)),
                                          .unlock(UnlockRequest(drives: .some(["sim:/a/0"]), boot: true, waitSeconds: 3)),
                                          .guardStatus(address: nil), .keyServerRemove(names: ["ks1", "ks2"])]
        for request in requests {
            let line = ControlFraming.encode(request: request)
            #expect(line.last == 0x0A && line.dropLast().firstIndex(of: 0x0A) == nil)
            #expect(try ControlFraming.decodeRequest(Array(line.dropLast())) == request)
        }
        let report = FaultReport(open: [FaultReport.Fault(name: "DriveGuarded", severity: "error", object: "sim:/a/0",
                                                          raisedAt: Date(timeIntervalSince1970: 1_800_000_000), clearedAt: nil,
                                                          action: "reset", detail: "3 failures\nsecond line")], recentlyCleared: [])
        let reply = ControlFraming.encode(response: .faults(report))
        #expect(reply.dropLast().firstIndex(of: 0x0A) == nil)
        #expect(try ControlFraming.decodeResponse(Array(reply.dropLast())) == .faults(report))

        #expect(throws: ControlError.self) { try ControlFraming.decodeRequest(Array(#"{"version":3,"request":{"status":{}}}"#.utf8)) }
        do {
            _ = try ControlFraming.decodeRequest(Array(#"{"version":1,"request":{"status":{}}}"#.utf8))
        } catch {
            #expect(error.code == .badRequest && error.message.contains("version 1"))
        }
        for garbage in ["", "{", "[]", #"{"version":"1"}"#, #"{"version":2,"request":{"nonsense":{}}}"#, #"{"version":2,"request":{"status":{},"faults":{}}}"#,
                        #"{"version":2,"request":{"lock":{"drives":"some"}}}"#, "\u{FF}\u{FE}"] {
            #expect(throws: ControlError.self) { try ControlFraming.decodeRequest(Array(garbage.utf8)) }
        }
    }

    @Test("every request and response has a stable wire shape: the case as the only key, its payload as the value, no \"_0\"; each round-trips")
    func wireShapes() throws {
        let requests: [ControlRequest] = [
            .setup(SetupRequest(drives: ["sim:/a/0"], provider: .kmip)), .unlock(UnlockRequest(drives: .all, boot: true)),
            .lock(LockRequest(drives: .some(["sim:/a/0", "sim:/a/1"]))), .status, .guardStatus(address: nil), .guardStatus(address: "sim:/a/0"),
            .guardReset(address: "sim:/a/0"),
            .keyServerAdd(KeyServerAddRequest(addresses: ["127.0.0.1:5696"], certificatePath: "c", privateKeyPath: "k", caPath: "ca")),
            .keyServersAdd([KeyServerAddRequest(addresses: ["h1"], name: "a", certificatePath: "c", privateKeyPath: "k", caPath: "ca")]),
            .keyServerModify(KeyServerModifyRequest(name: "ks1", addresses: ["h2"])), .keyServerRemove(names: ["ks1", "ks2"]),
            .keyServerShow, .keyServerStatus, .keyServerQuery, .keysList, .keysRestore(KeysRestoreRequest(all: true)),
            .keysRetire(keyID: "k1"), .keysDestroy(keyID: "k2"), .recover(RecoverRequest(drives: ["sim:/a/0"])),
            .rekey(RekeyRequest(provider: .local)), .arrayAdd(ArrayAddRequest(address: "sim:/a/2")),
            .arrayRemove(address: "sim:/a/2", revert: true), .erase(EraseRequest(drives: ["sim:/a/2"], method: .crypto)), .faults,
            .rdlTest(server: "ks1"), .rdlEnable(RDLEnableRequest(server: "ks1")), .rdlStatus, .rdlRotate, .rdlDisable, .reload,
        ]
        for request in requests {
            let line = ControlFraming.encode(request: request)
            let text = String(decoding: line, as: UTF8.self)
            #expect(!text.contains("_0") && text.contains(#""request":{""# + request.name + #"":"#), "\(text)")
            #expect(try ControlFraming.decodeRequest(Array(line.dropLast())) == request, "\(text)")
        }
        // What a script writes by hand.
        #expect(try ControlFraming.decodeRequest(Array(#"{"version":2,"request":{"lock":{"drives":"all"}}}"#.utf8)) == .lock(LockRequest(drives: .all)))
        #expect(try ControlFraming.decodeRequest(Array(#"{"version":2,"request":{"unlock":{"drives":["sim:/a/1"]}}}"#.utf8))
                == .unlock(UnlockRequest(drives: .some(["sim:/a/1"]))))
        let responses: [ControlResponse] = [
            .array(ArrayReport(operation: "unlock", drives: [DriveOutcome(address: "sim:/a/0", result: .unlocked, attempts: 1)])),
            .status(StatusReport(drives: [], generations: [], recentBoots: [
                StatusReport.RecordedBoot(bootID: "b1", startedAt: Date(timeIntervalSince1970: 1_800_000_000), outcome: "unlocked",
                                          detail: "", durationSeconds: 0.07)])),
            .guardState(GuardReport(drives: [], bootLoopHold: false, consecutiveFailedBoots: 0)), .keyServers(KeyServerReport(servers: [])),
            .keys(KeysReport(keys: [])), .faults(FaultReport(open: [], recentlyCleared: [])),
            .rdl(RDLReport(state: "off", server: nil, tokenID: nil, since: nil, lockOnLoss: false)),
            .reloaded(ReloadReport(source: "/etc/sedlock/sedlockd.toml", pendingRestart: [])), .failure(ControlError(.busy, "held")),
        ]
        for response in responses {
            let line = ControlFraming.encode(response: response)
            let text = String(decoding: line, as: UTF8.self)
            #expect(!text.contains("_0"), "\(text)")
            #expect(try ControlFraming.decodeResponse(Array(line.dropLast())) == response, "\(text)")
        }
        // A drive's progress ahead of the reply is told apart from the reply.
        let update = DriveProgress(operation: "rekey", drive: DriveOutcome(address: "sim:/a/0", result: .rekeyed, attempts: 5), done: 1, total: 3)
        let progressLine = ControlFraming.encode(progress: update)
        #expect(String(decoding: progressLine, as: UTF8.self).contains(#""progress":{"#))
        #expect(try ControlFraming.decodeIncoming(Array(progressLine.dropLast())) == .progress(update))
        #expect(try ControlFraming.decodeIncoming(Array(ControlFraming.encode(response: responses[0]).dropLast())) == .response(responses[0]))
        #expect(update.summary == "rekey 1/3 drives")
        // A boot record is an object with its date in seconds since 1970.
        let status = String(decoding: ControlFraming.encode(response: responses[1]), as: UTF8.self)
        #expect(status.contains(#""bootID":"b1""#) && status.contains(#""startedAt":1800000000"#), "\(status)")
    }

    @Test("a failure crosses the socket with its kind and reason code; a reply from a sender without reason codes still decodes")
    func failureReasonsCrossTheSocket() throws {
        let failure = ControlError(.notAuthorized, "ks0 refused the client certificate", fix: "renew it", reason: "keyServer.KeyServerAuthFailed")
        let reply = ControlFraming.encode(response: .failure(failure))
        #expect(try ControlFraming.decodeResponse(Array(reply.dropLast())) == .failure(failure))
        let older = try ControlFraming.decodeResponse(Array(#"{"version":2,"response":{"failure":{"code":"busy","message":"held"}}}"#.utf8))
        #expect(older == .failure(ControlError(.busy, "held")))
        // Any module's error keeps its kind and reason; anything else is a plain failure.
        struct Stray: Error {}
        #expect(ControlError(Stray()).code == .failed)
        #expect(ControlError(failure as any Error) == failure)
    }

    @Test("root changes, the reader group reads, anyone else is refused; requests that carry secrets are marked")
    func accessPolicy() {
        let policy = AccessPolicy(readerGroup: (name: "sedlock", gid: 977))
        #expect(policy.access(uid: 0, groups: [0]) == .change)
        #expect(policy.access(uid: 1000, groups: [1000, 977]) == .read)
        #expect(policy.access(uid: 1000, groups: [1000]) == .refused)
        #expect(policy.refusal(of: .status, uid: 1000, groups: [977]) == nil)
        #expect(policy.refusal(of: .lock(LockRequest(drives: .all)), uid: 1000, groups: [977])?.code == .notAuthorized)
        #expect(policy.refusal(of: .status, uid: 1000, groups: [5])?.message.contains("members of group sedlock may read") == true)
        #expect(AccessPolicy(readerGroup: nil).refusal(of: .status, uid: 5, groups: [5])?.message.contains("no reader group") == true)
        #expect(ControlRequest.erase(EraseRequest(drives: ["x"], method: .psid)).needsSecret)
        #expect(ControlRequest.setup(SetupRequest(drives: [], provider: .local, adoption: .init(derivation: "raw"))).needsSecret)
        #expect(!ControlRequest.erase(EraseRequest(drives: ["x"], method: .crypto)).needsSecret)
    }

    @Test("an in-process server answers many clients at once, bounds line length, and stops after requests in flight")
    func server() async throws {
        let path = "/tmp/sedlock-ctl-\(UUID().uuidString.prefix(8)).sock"
        defer { unlink(path) }
        let listener = try StreamSocket.listen(path: path, mode: 0o600)
        var limits = ControlServerLimits()
        limits.requestBytes = 1024
        limits.requestTimeout = 2
        let served = Mutex(0)
        let server = ControlServer(listener: listener, policy: AccessPolicy(readerGroup: nil), limits: limits,
                                   logger: Logger(label: "test"), executor: BlockingExecutor(threads: 2, name: "test-handlers")) { request, peer, _ in
            served.withLock { $0 += 1 }
            #expect(peer.uid == getuid())
            return .guardState(GuardReport(drives: [], bootLoopHold: false, consecutiveFailedBoots: request == .status ? 1 : 2))
        }
        server.start()
        // Clients block in socket calls: they run on threads of their own, as real clients do,
        // never on the cooperative pool that the server's handler needs.
        let answered = Mutex(0)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                DispatchQueue.concurrentPerform(iterations: 20) { _ in
                    let expected = ControlResponse.guardState(GuardReport(drives: [], bootLoopHold: false, consecutiveFailedBoots: 1))
                    if (try? ControlClient(path: path).send(.status, timeout: 120)) == expected { answered.withLock { $0 += 1 } }
                }
                done.resume()
            }
        }
        #expect(answered.withLock { $0 } == 20)
        #expect(served.withLock { $0 } == 20)
        // A line over the limit: one error, then the connection closes.
        let connection = try StreamSocket.connect(path: path)
        try connection.send([UInt8](repeating: 0x41, count: 5000) + [0x0A], deadline: .after(seconds: 5))
        let reply = try LineReader(limit: 65536).nextLine(from: connection, deadline: .after(seconds: 5))
        #expect(String(decoding: reply, as: UTF8.self).contains("longer than 1024 bytes"))
        #expect(throws: LineReader.Failure.self) { try LineReader(limit: 65536).nextLine(from: connection, deadline: .after(seconds: 5)) }
        await server.stop()
        #expect(server.connectionCount == 0)
        #expect(throws: ControlError.self) { try ControlClient(path: path + ".absent") }
    }

    @Test("the line reader splits, keeps partial lines, and stops an endless line at its limit")
    func lineReader() throws {
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        let a = StreamSocket(adopting: pair[0])
        let b = StreamSocket(adopting: pair[1])
        let reader = LineReader(limit: 16)
        try a.send(Array("one\ntwo\nthr".utf8), deadline: .after(seconds: 1))
        #expect(try reader.nextLine(from: b, deadline: .after(seconds: 1)) == Array("one".utf8))
        #expect(try reader.nextLine(from: b, deadline: .after(seconds: 1)) == Array("two".utf8))
        try a.send(Array("ee\n".utf8), deadline: .after(seconds: 1))
        #expect(try reader.nextLine(from: b, deadline: .after(seconds: 1)) == Array("three".utf8))
        try a.send([UInt8](repeating: 0x61, count: 40), deadline: .after(seconds: 1))
        #expect(throws: LineReader.Failure.self) { try reader.nextLine(from: b, deadline: .after(seconds: 1)) }
    }
}
