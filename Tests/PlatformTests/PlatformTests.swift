import Foundation
import Platform
import Testing

private func temporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("platform-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    return path
}

@Suite("Platform: time, deadlines, atomic files, locks")
struct PlatformTests {
    @Test("a deadline on a manual time source passes only when the source advances")
    func manualDeadline() {
        let time = ManualTime()
        let deadline = Deadline.after(seconds: 2, time: time)
        #expect(!deadline.hasPassed && deadline.remainingMilliseconds == 2000)
        time.sleep(nanoseconds: 1_999_999_999)
        #expect(!deadline.hasPassed && deadline.remainingMilliseconds == 1)
        time.advance(nanoseconds: 1)
        #expect(deadline.hasPassed && deadline.remainingMilliseconds == 0)
        #expect(Deadline.after(seconds: -5, time: time).hasPassed)
        #expect(Deadline.after(seconds: .nan, time: time).hasPassed)
        #expect(!Deadline.after(seconds: .infinity, time: time).hasPassed)
        #expect(Deadline.after(seconds: 1, time: time).earlier(Deadline.after(seconds: 3, time: time)).remainingSeconds == 1)
    }

    @Test("the system time source is monotonic and sleeps")
    func systemTime() {
        let time = SystemTime()
        let before = time.uptimeNanoseconds
        time.sleep(nanoseconds: 2_000_000)
        #expect(time.uptimeNanoseconds - before >= 2_000_000)
    }

    @Test("an atomic write replaces the file whole, with the asked mode whatever the umask")
    func atomicWrite() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state"
        try AtomicFile.write(Array("old".utf8), to: path)
        let previous = umask(0)
        defer { umask(previous) }
        var seenBeforeCommit: String?
        try AtomicFile.write(Array("new".utf8), to: path, mode: 0o600) {
            // A crash here (the simulator's fault injection exits at this point) leaves the old content.
            seenBeforeCommit = try? String(contentsOfFile: path, encoding: .utf8)
        }
        #expect(seenBeforeCommit == "old")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["state"])
        #expect(throws: SystemError.self) { try AtomicFile.write([1], to: dir + "/missing/state") }
    }

    @Test("createNew never overwrites")
    func createNew() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try AtomicFile.createNew(Array("key".utf8), at: dir + "/k", mode: 0o600)
        #expect { try AtomicFile.createNew(Array("other".utf8), at: dir + "/k", mode: 0o600) } throws: {
            ($0 as? SystemError)?.errno == EEXIST
        }
        #expect(try String(contentsOfFile: dir + "/k", encoding: .utf8) == "key")
    }

    @Test("a second holder of a file lock is told who holds it; release frees it")
    func fileLock() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var first: FileLock? = try FileLock(path: dir + "/lock")
        #expect(first != nil)
        #expect { try FileLock(path: dir + "/lock") } throws: {
            guard case .busy(_, let holder)? = $0 as? FileLock.Failure else { return false }
            return holder == getpid()
        }
        first = nil
        let second = try FileLock(path: dir + "/lock")
        #expect(second.path == dir + "/lock")
        #expect { try FileLock(path: dir + "/no/such/lock") } throws: {
            guard case .system(let error)? = $0 as? FileLock.Failure else { return false }
            return error.errno == ENOENT
        }
    }

    @Test("an actor on a queue executor runs off the cooperative pool, one job at a time")
    func queueExecutor() async {
        actor Counter {
            let executor = QueueExecutor(label: "test.counter")
            nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
            var value = 0
            func add() -> Int {
                dispatchPrecondition(condition: .onQueue(executor.queue))
                value += 1
                return value
            }
        }
        let counter = Counter()
        let results = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<100 { group.addTask { await counter.add() } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.sorted() == Array(1...100))
    }
}
