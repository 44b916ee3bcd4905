import Foundation
import GRDB
@testable import LockState
import Testing

@Suite("State schema migrations")
struct MigrationTests {
    @Test("v7 rebuilds journalDrive for the 'unknown' step and keeps every row of an unfinished rekey written at v6")
    func unknownStepMigration() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("migrate-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = StateDirectory(path: root)
        // A state as sedlock wrote it at v6: a generation, a drive, a rekey journal midway.
        let (journalID, driveID) = try {
            let queue = try DatabaseQueue(path: directory.databasePath)
            try Schema.migrator.migrate(queue, upTo: "v6 locked on purpose")
            return try queue.write { db -> (Int64, Int64) in
                var old = StoredKeyGeneration(keyID: UUID().uuidString.lowercased(), tag: "t", state: .active, provider: "local",
                                              locations: [], createdAt: Date(), tokenID: nil)
                try old.insert(db)
                var new = StoredKeyGeneration(keyID: UUID().uuidString.lowercased(), tag: "t", state: .pending, provider: "local",
                                              locations: [], createdAt: Date(), tokenID: nil)
                try new.insert(db)
                var drive = StoredDrive(address: "sim:/a/0", identity: "wwn:5000", bus: "simulated", model: "m", serial: "s", addedAt: Date())
                drive.generationID = old.id
                try drive.insert(db)
                var journal = JournalEntry(kind: .rekey, fromGenerationID: old.id, toGenerationID: new.id ?? 0, startedAt: Date())
                try journal.insert(db)
                let ids = (journal.id ?? 0, drive.id ?? 0)
                try JournalDriveStep(journalID: ids.0, driveID: ids.1, step: .sidSet, updatedAt: Date(), pinChangeSent: true).insert(db)
                return ids
            }
        }()
        chmod(directory.databasePath, 0o600)

        let state = try StateDatabase(directory: directory, access: .write)
        defer { state.close() }
        let steps = try state.journalSteps(journalID: journalID)
        #expect(steps.count == 1 && steps.first?.step == .sidSet && steps.first?.pinChangeSent == true, "\(steps)")
        var unknown = try #require(steps.first)
        unknown.step = .unknown
        try state.setJournalStep(unknown)
        #expect(try state.journalSteps(journalID: journalID).first?.step == .unknown)
        // The foreign keys still hold: removing the drive removes its step.
        try state.removeDrive(address: "sim:/a/0", keepingPINs: true, at: Date())
        #expect(try state.journalSteps(journalID: journalID).isEmpty && driveID > 0)
    }
}

@Suite("State durability")
struct DurabilityTests {
    @Test("the writer commits with synchronous = FULL (GRDB's pool would leave WAL at NORMAL: not durable on power loss)")
    func writerIsFullySynchronous() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("durable-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let created = try StateDatabase(directory: StateDirectory(path: root), access: .write)
        #expect(try created.writerSynchronousMode() == 2)
        created.close()
        let reopened = try StateDatabase(directory: StateDirectory(path: root), access: .write)
        defer { reopened.close() }
        #expect(try reopened.writerSynchronousMode() == 2)
    }
}
