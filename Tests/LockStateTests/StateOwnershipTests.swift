import Foundation
import LockState
import Platform
import Testing

/// The state directory decides what root does: another account that owns it, or a file of it,
/// or may write to it, could swap in a database naming its own key server.
@Suite("State directory ownership")
struct StateOwnershipTests {
    private func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("owned-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        return path
    }

    @Test("a state directory or database owned by another account is refused with the owner named; group- or world-writable too")
    func anotherAccountsState() throws {
        try #require(geteuid() == 0, "chown needs root")
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = StateDirectory(path: root)
        _ = try StateDatabase(directory: directory, access: .write)

        #expect(chown(root, 65534, 65534) == 0)
        for access in [StateDatabase.Access.write, .read] {
            #expect { try StateDatabase(directory: directory, access: access) } throws: {
                let error = $0 as? StateError
                return error?.code == .unsafeLocation && error?.message.contains("owned by uid 65534 (nobody)") == true
            }
        }
        #expect(chown(root, 0, 0) == 0)
        #expect(chown(directory.databasePath, 65534, 65534) == 0)
        #expect { try StateDatabase(directory: directory, access: .write) } throws: {
            let error = $0 as? StateError
            return error?.code == .unsafeLocation && error?.message.contains("state.sqlite is owned by uid 65534") == true
        }
        #expect(chown(directory.databasePath, 0, 0) == 0)
        #expect(chmod(directory.databasePath, 0o666) == 0)
        #expect { try StateDatabase(directory: directory, access: .write) } throws: {
            ($0 as? StateError)?.message.contains("can be written by other users (mode 666)") == true
        }
        #expect(chmod(directory.databasePath, 0o600) == 0)
        #expect(chmod(root, 0o770) == 0)
        #expect { try StateDatabase(directory: directory, access: .read) } throws: { ($0 as? StateError)?.code == .unsafeLocation }
        #expect(chmod(root, 0o700) == 0)
        _ = try StateDatabase(directory: directory, access: .write)
    }

    @Test("an empty or foreign state.sqlite is never taken as an older state and written over")
    func emptyDatabaseIsNotReplaced() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = StateDirectory(path: root)
        #expect(FileManager.default.createFile(atPath: directory.databasePath, contents: Data(), attributes: [.posixPermissions: 0o600]))
        #expect { try StateDatabase(directory: directory, access: .write) } throws: {
            let error = $0 as? StateError
            return error?.code == .corrupt && error?.message.contains("holds no sedlock state") == true
        }
        let size = try FileManager.default.attributesOfItem(atPath: directory.databasePath)[.size] as? Int
        #expect(size == 0, "the file was left as it was")
    }

    @Test("an atomic write never blocks on a FIFO (or follows a link) left at its temporary name")
    func atomicWriteOverAFIFO() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(mkfifo(root + "/.metrics.prom.tmp", 0o600) == 0)
        try AtomicFile.write(Array("a 1\n".utf8), to: root + "/metrics.prom", mode: 0o644)
        #expect(try String(contentsOfFile: root + "/metrics.prom", encoding: .utf8) == "a 1\n")
        #expect(symlink("/etc/passwd", root + "/.metrics.prom.tmp") == 0)
        try AtomicFile.write(Array("a 2\n".utf8), to: root + "/metrics.prom", mode: 0o644)
        #expect(try String(contentsOfFile: root + "/metrics.prom", encoding: .utf8) == "a 2\n")
        #expect(FileOwnership.problem(at: root + "/metrics.prom") == nil)
    }

    @Test("a verified backup holds the state; a database deleted or replaced under an open handle is noticed")
    func backupAndLostFile() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = StateDirectory(path: root)
        let state = try StateDatabase(directory: directory, access: .write)
        try state.addDrive(StoredDrive(address: "sim:/tmp/x/0", identity: "wwn:5000c500a", bus: "simulated", model: "M", serial: "S",
                                       addedAt: Date(timeIntervalSince1970: 1_800_000_000)))
        try state.backUp()
        #expect(FileOwnership.problem(at: directory.backupPath, privateToOwner: true) == nil)
        #expect(state.fileProblem() == nil)
        #expect(unlink(directory.databasePath) == 0)
        #expect(state.fileProblem()?.contains("was deleted") == true)
        #expect(try state.drives().count == 1, "the open handle still holds the state")
        #expect(FileManager.default.createFile(atPath: directory.databasePath, contents: Data(), attributes: [.posixPermissions: 0o600]))
        #expect(state.fileProblem()?.contains("was replaced") == true)
        state.close()
        // The backup restores the state.
        #expect(unlink(directory.databasePath) == 0 && rename(directory.backupPath, directory.databasePath) == 0)
        let restored = try StateDatabase(directory: directory, access: .read)
        #expect(try restored.drives().map(\.identity) == ["wwn:5000c500a"])
    }
}
