import Foundation
@testable import LockState
import Platform
import TestSupport
import Testing

private func scratch() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    return path
}

@Suite("Lock manager state (SQLite)")
struct StateDatabaseTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("state is created 0700 whatever the umask; records round-trip; readers work beside the writer")
    func roundTrip() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let previous = umask(0)
        let directory = StateDirectory(path: root + "/state")
        let writer = try StateDatabase(directory: directory, access: .write)
        umask(previous)
        let mode = try FileManager.default.attributesOfItem(atPath: directory.path)[.posixPermissions] as? Int
        #expect(mode == 0o700)

        let generation = try writer.addGeneration(StoredKeyGeneration(
            keyID: "5b0c8f2e-1111-4d6e-9a3b-000000000001", tag: "array-1", state: .active, provider: "kmip",
            locations: ["ks1:17", "ks2:4"], createdAt: now))
        var drive = try writer.addDrive(StoredDrive(address: "sim:/tmp/a/0", identity: "wwn:5000c5001", bus: "simulated",
                                                    model: "SEDSIM", serial: "S1", addedAt: now))
        let driveID = try #require(drive.id)
        let generationID = try #require(generation.id)
        drive.generationID = generationID
        try writer.updateDrive(drive)
        try writer.setCheckValues([StoredCheckValue(driveID: driveID, generationID: generationID, authority: "Admin1",
                                                    value: Data(repeating: 7, count: 16))])

        let reader = try StateDatabase(directory: directory, access: .read)
        #expect(try reader.drives() == [drive])
        #expect(try reader.drive(address: "sim:/tmp/a/0")?.generationID == generationID)
        #expect(try reader.generations().first?.locations == ["ks1:17", "ks2:4"])
        #expect(try reader.checkValue(driveID: driveID, generationID: generationID, authority: "Admin1")?.value.count == 16)
        #expect(try reader.checkValue(driveID: driveID, generationID: generationID, authority: "SID") == nil)
        #expect { try reader.recordBoot(BootRecord(bootID: "x", startedAt: now, outcome: .started)) } throws: {
            ($0 as? StateError)?.code == .invalid
        }
        // The same identity twice is refused by the schema, as a typed error.
        #expect { try writer.addDrive(StoredDrive(address: "sim:/tmp/a/1", identity: "wwn:5000c5001", bus: "simulated",
                                                  model: "SEDSIM", serial: "S1", addedAt: now)) } throws: {
            ($0 as? StateError)?.code == .invalid
        }
    }

    @Test("atomically: every write inside commits together; an error thrown inside (or a constraint broken) leaves none of them")
    func atomicChanges() throws {
        struct Abandoned: Error {}
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let writer = try StateDatabase(directory: StateDirectory(path: root + "/state"), access: .write)
        func generation(_ n: Int) -> StoredKeyGeneration {
            StoredKeyGeneration(keyID: "5b0c8f2e-1111-4d6e-9a3b-00000000000\(n)", tag: "t", state: .retired, provider: "local",
                                locations: [], createdAt: now)
        }
        func drive(_ n: Int, identity: String) -> StoredDrive {
            StoredDrive(address: "sim:/tmp/a/\(n)", identity: identity, bus: "simulated", model: "SEDSIM", serial: "S\(n)", addedAt: now)
        }
        #expect(throws: Abandoned.self) {
            try writer.atomically {
                _ = try writer.addGeneration(generation(1))
                _ = try writer.addDrive(drive(0, identity: "wwn:1"))
                throw Abandoned()
            }
        }
        #expect(try writer.generations().isEmpty && writer.drives().isEmpty)
        // The second drive breaks the unique identity: the first one is not kept either.
        #expect { try writer.atomically {
            _ = try writer.addDrive(drive(0, identity: "wwn:1"))
            _ = try writer.addDrive(drive(1, identity: "wwn:1"))
        } } throws: { ($0 as? StateError)?.code == .invalid }
        #expect(try writer.drives().isEmpty)
        try writer.atomically {
            _ = try writer.addGeneration(generation(2))
            try writer.atomically { _ = try writer.addDrive(drive(2, identity: "wwn:2")) }  // nested: the same transaction
            // Reads inside see the transaction's own writes (a reader connection would not).
            #expect(try writer.drives().map(\.identity) == ["wwn:2"] && writer.generations().count == 1)
        }
        #expect(try writer.generations().count == 1 && writer.drives().count == 1)
    }

    @Test("a second writer is told the holder's PID; readers are not blocked")
    func oneWriter() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = StateDirectory(path: root)
        _ = try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: root)
        let writer = try StateDatabase(directory: directory, access: .write)
        #expect { try StateDatabase(directory: directory, access: .write) } throws: {
            guard let error = $0 as? StateError else { return false }
            return error.code == .busy && error.message.contains("PID \(getpid())")
        }
        _ = try StateDatabase(directory: directory, access: .read)
        _ = writer
    }

    @Test("the lockout counter is durable before the attempt, survives reopening, and resets")
    func lockoutCounter() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = StateDirectory(path: root + "/s")
        var driveID: Int64 = 0
        do {
            let writer = try StateDatabase(directory: directory, access: .write)
            driveID = try #require(try writer.addDrive(StoredDrive(address: "/dev/sdb", identity: "serial:A", bus: "sas",
                                                                   model: "M", serial: "A", addedAt: now)).id)
            #expect(try writer.countAuthenticationAttempt(driveID: driveID) == 1)
            #expect(try writer.countAuthenticationAttempt(driveID: driveID) == 2)
            #expect { try writer.countAuthenticationAttempt(driveID: 999) } throws: { ($0 as? StateError)?.code == .invalid }
        }
        // As after a crash in the middle of the second attempt: both attempts count.
        let again = try StateDatabase(directory: directory, access: .write)
        #expect(try again.drives().first?.failedAuthentications == 2)
        try again.guardDrive(driveID: driveID, reason: "3 consecutive failed authentications")
        #expect(try again.drives().first?.isGuarded == true)
        try again.resetGuard(driveID: driveID)
        #expect(try again.drives().first?.isGuarded == false)
        #expect(try again.drives().first?.failedAuthentications == 0)
        _ = try again.countAuthenticationAttempt(driveID: driveID)
        try again.recordAuthenticationSuccess(driveID: driveID)
        #expect(try again.drives().first?.failedAuthentications == 0)
    }

    @Test("boot records and the audit log come back newest first")
    func bootsAndAudit() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let db = try StateDatabase(directory: StateDirectory(path: root + "/s"), access: .write)
        for (n, outcome) in [BootRecord.Outcome.unlocked, .failed, .failed].enumerated() {
            try db.recordBoot(BootRecord(bootID: "boot-\(n)", startedAt: now.addingTimeInterval(Double(n)), outcome: outcome))
        }
        try db.recordBoot(BootRecord(bootID: "boot-2", startedAt: now.addingTimeInterval(2), outcome: .held, detail: "waiting"))
        #expect(try db.recentBoots(limit: 2).map(\.bootID) == ["boot-2", "boot-1"])
        #expect(try db.recentBoots(limit: 5).map(\.outcome) == [.held, .failed, .unlocked])
        try db.appendAudit(AuditEntry(at: now, actor: "uid 0", action: "lock", target: "all", outcome: "ok"))
        try db.appendAudit(AuditEntry(at: now, actor: "uid 0", action: "unlock", target: "/dev/sdb", outcome: "not authorized"))
        #expect(try db.auditLog(limit: 10).map(\.action) == ["unlock", "lock"])
    }

    @Test("a corrupt database and one from a newer schema are refused and left byte for byte as they were")
    func refusesDamagedOrNewer() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let corrupt = StateDirectory(path: root + "/corrupt")
        try FileManager.default.createDirectory(atPath: corrupt.path, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        // Owner-only whatever the umask: another test in this process may have it at 0 just now.
        #expect(FileManager.default.createFile(atPath: corrupt.databasePath, contents: garbage, attributes: [.posixPermissions: 0o600]))
        for access in [StateDatabase.Access.write, .read] {
            #expect { try StateDatabase(directory: corrupt, access: access) } throws: { ($0 as? StateError)?.code == .corrupt }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: corrupt.databasePath)) == garbage)

        let newer = StateDirectory(path: root + "/newer")
        _ = try StateDatabase(directory: newer, access: .write)
        try ProcessRunner.shell("python3 -c \"import sqlite3; c = sqlite3.connect('\(newer.databasePath)'); "
                                + "c.execute(\\\"INSERT INTO grdb_migrations VALUES ('v99')\\\"); c.commit(); "
                                + "c.execute('PRAGMA wal_checkpoint(TRUNCATE)')\"")
        let before = try Data(contentsOf: URL(fileURLWithPath: newer.databasePath))
        #expect { try StateDatabase(directory: newer, access: .write) } throws: { ($0 as? StateError)?.code == .newerSchema }
        #expect(try Data(contentsOf: URL(fileURLWithPath: newer.databasePath)) == before)

        #expect { try StateDatabase(directory: StateDirectory(path: root + "/none"), access: .read) } throws: {
            ($0 as? StateError)?.code == .unreadable
        }
    }

    @Test("a state directory others can read, or a file, is refused")
    func unsafeDirectory() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root)
        #expect { try StateDirectory(path: root).prepare() } throws: { ($0 as? StateError)?.code == .unsafeLocation }
        FileManager.default.createFile(atPath: root + "/file", contents: Data())
        #expect { try StateDirectory(path: root + "/file").prepare() } throws: { ($0 as? StateError)?.code == .unsafeLocation }
        #expect(StateDirectory.resolve(explicit: nil, environment: ["STATE_DIRECTORY": "/var/lib/sedlock:/x"]).path == "/var/lib/sedlock")
        #expect(StateDirectory.resolve(explicit: nil, environment: [:]).path == StateDirectory.defaultPath)
        #expect(StateDirectory.resolve(explicit: "/srv/s/", environment: ["STATE_DIRECTORY": "/x"]).path == "/srv/s")
    }

    @Test("the disks under the state directory's filesystem are found through partitions and device-mapper")
    func backingDisks() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var info = stat()
        #expect(stat(root, &info) == 0)
        // A fake sysfs in which the scratch filesystem is dm-0 on sda2 and nvme0n1p1.
        let sys = root + "/sys"
        let fm = FileManager.default
        for dir in ["devices/pci/sda/sda2", "devices/pci/nvme0n1/nvme0n1p1", "devices/virtual/block/dm-0/slaves", "dev/block"] {
            try fm.createDirectory(atPath: "\(sys)/\(dir)", withIntermediateDirectories: true)
        }
        fm.createFile(atPath: sys + "/devices/pci/sda/sda2/partition", contents: Data("2".utf8))
        fm.createFile(atPath: sys + "/devices/pci/nvme0n1/nvme0n1p1/partition", contents: Data("1".utf8))
        try fm.createSymbolicLink(atPath: sys + "/devices/virtual/block/dm-0/slaves/sda2", withDestinationPath: "../../../../pci/sda/sda2")
        try fm.createSymbolicLink(atPath: sys + "/devices/virtual/block/dm-0/slaves/nvme0n1p1",
                                  withDestinationPath: "../../../../pci/nvme0n1/nvme0n1p1")
        try fm.createSymbolicLink(atPath: "\(sys)/dev/block/\(DeviceNumber(info.st_dev))",
                                  withDestinationPath: "../../devices/virtual/block/dm-0")
        let directory = StateDirectory(path: root)
        #expect(try directory.backingDisks(sysfs: sys) == ["sda", "nvme0n1"])
        #expect { try directory.requireNotOn(disks: ["sdb", "sda"], sysfs: sys) } throws: {
            ($0 as? StateError)?.code == .unsafeLocation && "\($0)".contains("sda")
        }
        try directory.requireNotOn(disks: ["sdb"], sysfs: sys)
        // No block device behind the filesystem (tmpfs, overlay): nothing to clash with.
        #expect(try directory.backingDisks(sysfs: root + "/empty-sys").isEmpty)
    }
}

@Suite("Dates in the state")
struct StorageDateTests {
    @Test("written as GRDB's UTC text without DateFormatter, read back to the millisecond; other text is refused")
    func roundTrip() throws {
        for seconds in [0.0, 1_800_000_000.123, 951_782_400.5, 4_102_444_799.999] {
            let date = Date(timeIntervalSince1970: seconds)
            let text = StorageDate.text(date)
            #expect(text.count == 23)
            let back = try #require(StorageDate.date(text))
            #expect(abs(back.timeIntervalSince1970 - seconds) < 0.001, "\(text)")
        }
        #expect(StorageDate.text(Date(timeIntervalSince1970: 951_782_400.5)) == "2000-02-29 00:00:00.500")
        #expect(StorageDate.date("2026-11-23 15:07:53")?.timeIntervalSince1970 == 1_795_446_473)
        for bad in ["", "yesterday", "2026-11-23", "2026-11-23 15:07:53.1.2", "2026-xx-23 15:07:53"] {
            #expect(StorageDate.date(bad) == nil, "\(bad)")
        }
    }
}
