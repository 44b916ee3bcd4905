import Foundation
import GRDB
import Platform

/// The lock manager's state in one SQLite database: WAL, synchronous = FULL, foreign keys on,
/// versioned migrations. One writer at a time (an exclusive lock on the state directory, naming
/// its holder); readers never wait for it. A corrupt database, one from a newer schema, or one
/// that cannot be read is a clear error and is never rewritten.
public final class StateDatabase: StateStore {
    public enum Access: Sendable { case read, write }

    public let directory: StateDirectory
    public let access: Access
    private let pool: DatabasePool
    private let writerLock: FileLock?
    /// The database file this handle opened (device and inode), to notice it deleted or replaced.
    private let opened: (device: UInt64, inode: UInt64)?

    /// Opens the state in `directory`. Writing creates the directory and database on first use.
    public init(directory: StateDirectory, access: Access) throws(StateError) {
        self.directory = directory
        self.access = access
        let path = directory.databasePath
        switch access {
        case .write:
            try directory.prepare()
            do { writerLock = try FileLock(path: directory.writerLockPath, wait: 2) } catch {
                switch error {
                case .busy(_, let holder):
                    throw StateError(.busy, "the state in \(directory.path) is busy (held by \(holder.map { "PID \($0)" } ?? "another process"))",
                                     fix: "wait for that command to finish, or stop it")
                case .system(let cause):
                    throw StateError(.unreadable, "cannot lock \(directory.path): \(cause)")
                }
            }
        case .read:
            writerLock = nil
            if FileManager.default.fileExists(atPath: directory.path) { try directory.verify(forWriting: false) }
            guard FileManager.default.fileExists(atPath: path) else {
                throw StateError(.unreadable, "there is no sedlock state in \(directory.path) yet",
                                 fix: "run `sedlock setup` first, or point --state-dir at the state")
            }
        }
        // An existing database is examined through a read-only connection first, so that a corrupt
        // one, or one from a newer schema, is refused without a single byte written to it.
        let migrator = Schema.migrator
        var complete = false
        if FileManager.default.fileExists(atPath: path) {
            complete = try Self.examine(path, migrator: migrator)
        } else if access == .write {
            // A new database is made whole beside its place and renamed into it, so that a crash
            // while it is made leaves no file: one that exists always holds a sedlock schema,
            // and an empty one is never taken for a state to start over.
            try Self.create(path, migrator: migrator, directory: directory)
            complete = true
        }
        var configuration = Configuration()
        configuration.readonly = access == .read
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            if access == .write {
                // GRDB puts a pool's writer in WAL mode with synchronous = NORMAL after
                // prepareDatabase has run: commits would then survive a crash but not a power
                // loss. Each commit (a lockout count above all) must be on disk before the
                // attempt it admits, so FULL again, now that the pool is set up.
                try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            }
            var info = stat()
            opened = stat(path, &info) == 0 ? (UInt64(info.st_dev), UInt64(info.st_ino)) : nil
            if !complete {
                guard access == .write else {
                    throw StateError(.unreadable, "the state database \(path) is older than this sedlock",
                                     fix: "run any changing command (or sedlockd) once to bring it up to date")
                }
                try migrator.migrate(pool)
            }
        } catch let error as StateError {
            throw error
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    /// A new, fully migrated database at `path`, made under a temporary name and renamed in.
    private static func create(_ path: String, migrator: DatabaseMigrator, directory: StateDirectory) throws(StateError) {
        let temporary = directory.path + "/.state.sqlite.new"
        for leftover in [temporary, temporary + "-journal"] { _ = unlink(leftover) }
        do {
            var configuration = Configuration()
            configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            let queue = try DatabaseQueue(path: temporary, configuration: configuration)
            try migrator.migrate(queue)
            try queue.close()
        } catch {
            _ = unlink(temporary)
            throw classify(error, path: temporary)
        }
        try putInPlace(temporary, at: path, what: "the new state database", directory: directory)
    }

    /// Renames a finished temporary (made 0600) onto `path` and makes the rename durable.
    private static func putInPlace(_ temporary: String, at path: String, what: String, directory: StateDirectory) throws(StateError) {
        _ = chmod(temporary, 0o600)
        guard rename(temporary, path) == 0 else {
            let why = errnoText()
            _ = unlink(temporary)
            throw StateError(.unreadable, "cannot put \(what) in place (\(path)): \(why)")
        }
        do { try AtomicFile.syncDirectory(directory.path) } catch {
            throw StateError(.unreadable, "cannot make \(what) durable: \(error)")
        }
    }

    /// Integrity and schema version of an existing database, read-only. Returns whether every
    /// migration this build knows has been applied.
    private static func examine(_ path: String, migrator: DatabaseMigrator) throws(StateError) -> Bool {
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            let (check, superseded, complete, applied) = try queue.read { db in
                (try String.fetchOne(db, sql: "PRAGMA quick_check") ?? "",
                 try migrator.hasBeenSuperseded(db), try migrator.hasCompletedMigrations(db), try migrator.appliedIdentifiers(db))
            }
            try queue.close()
            // A file that holds no sedlock schema at all (empty, truncated to 0 bytes, another
            // program's database) is not an older state to upgrade: writing a new state over it
            // would hide whatever happened to the real one.
            guard !applied.isEmpty else {
                throw StateError(.corrupt, "\(path) exists but holds no sedlock state (it is empty or another program's database)",
                                 fix: "restore the state from its backup (\(path).bak) or move the file away; sedlock will not write over it")
            }
            guard check == "ok" else {
                throw StateError(.corrupt, "the state database \(path) fails its integrity check (\(check.prefix(200)))",
                                 fix: "restore it from a backup; sedlock will not rewrite it")
            }
            guard !superseded else {
                throw StateError(.newerSchema, "the state database \(path) was written by a newer sedlock",
                                 fix: "run that version, or restore a backup made by this one")
            }
            return complete
        } catch let error as StateError {
            throw error
        } catch {
            throw classify(error, path: path)
        }
    }

    /// Why the database file is no longer the one this handle opened (deleted, or another file
    /// put in its place), or nil while it is. What this handle holds is then the only full copy.
    public func fileProblem() -> String? {
        guard let opened else { return nil }
        var info = stat()
        guard stat(directory.databasePath, &info) == 0 else {
            return errno == ENOENT ? "\(directory.databasePath) was deleted while sedlockd held it" : "cannot examine \(directory.databasePath): \(errnoText())"
        }
        if UInt64(info.st_dev) != opened.device || UInt64(info.st_ino) != opened.inode {
            return "\(directory.databasePath) was replaced by another file while sedlockd held it"
        }
        return nil
    }

    /// Writes a verified copy of the state as it is now to `state.sqlite.bak` (SQLite's online
    /// backup into a temporary, an integrity check of the copy, then an atomic rename): the
    /// last good state, to restore from if the database is lost or damaged.
    public func backUp() throws(StateError) {
        let backup = directory.backupPath
        let temporary = directory.path + "/.state.sqlite.bak.tmp"
        _ = unlink(temporary)
        do {
            let copy = try DatabaseQueue(path: temporary)
            try pool.backup(to: copy)
            let check = try copy.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") ?? "" }
            try copy.close()
            guard check == "ok" else {
                _ = unlink(temporary)
                throw StateError(.corrupt, "the backup of the state fails its integrity check (\(check.prefix(200)))",
                                 fix: "check the disk holding \(directory.path)")
            }
        } catch let error as StateError { throw error } catch {
            _ = unlink(temporary)
            throw StateError(.unreadable, "cannot back up the state to \(backup): \(error)", fix: "check the space and permissions of \(directory.path)")
        }
        try Self.putInPlace(temporary, at: backup, what: "the backup of the state", directory: directory)
    }

    /// Closes the database and releases the writer lock now, whoever still holds a reference.
    public func close() {
        try? pool.close()
        writerLock?.release()
    }

    static func classify(_ error: any Error, path: String) -> StateError {
        if let db = error as? DatabaseError {
            switch db.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return StateError(.corrupt, "\(path) is not a readable sedlock database (\(db.message ?? "corrupt"))",
                                  fix: "restore it from a backup; sedlock will not rewrite it")
            case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH:
                return StateError(.unreadable, "cannot open \(path) (\(db.message ?? "\(db.resultCode)"))",
                                  fix: geteuid() == 0 ? "check that the state's filesystem is mounted writable and the directory's permissions"
                                                      : "run as root, and check the state directory's permissions")
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                return StateError(.busy, "\(path) is busy", fix: "retry in a moment")
            case .SQLITE_CONSTRAINT:
                return StateError(.invalid, "the change breaks a rule of the state database: \(db.message ?? "")")
            default:
                return StateError(.unreadable, "the state database \(path) failed: \(db.message ?? "\(db.resultCode)")")
            }
        }
        return StateError(.unreadable, "the state database \(path) failed: \(error)")
    }

    private func read<T>(_ body: (Database) throws -> T) throws(StateError) -> T {
        do {
            // Inside `atomically` a reader connection would not see the transaction's own writes.
            if let open = Self.openTransaction, open.owner == ObjectIdentifier(self) { return try body(open.db) }
            return try pool.read(body)
        } catch let error as StateError { throw error } catch {
            throw Self.classify(error, path: directory.databasePath)
        }
    }

    private func write<T>(_ body: (Database) throws -> T) throws(StateError) -> T {
        guard access == .write else {
            throw StateError(.invalid, "the state was opened for reading", fix: "this is a bug: open it for writing")
        }
        do {
            // Inside `atomically`: part of its one transaction.
            if let open = Self.openTransaction, open.owner == ObjectIdentifier(self) { return try body(open.db) }
            return try pool.write(body)
        } catch let error as StateError { throw error } catch {
            throw Self.classify(error, path: directory.databasePath)
        }
    }

    /// The transaction `atomically` holds open on this task, for the writes made inside it.
    private final class OpenTransaction: @unchecked Sendable {
        let db: Database
        let owner: ObjectIdentifier
        init(_ db: Database, owner: ObjectIdentifier) {
            self.db = db
            self.owner = owner
        }
    }
    @TaskLocal private static var openTransaction: OpenTransaction?

    /// Every change `body` makes through this database, committed together or not at all: a
    /// crash in the middle, or an error thrown by `body`, leaves none of them. `body` runs
    /// synchronously on the writer, so it must not wait for anything but the database.
    public func atomically<T>(_ body: () throws -> T) throws -> T {
        guard access == .write else {
            throw StateError(.invalid, "the state was opened for reading", fix: "this is a bug: open it for writing")
        }
        if let open = Self.openTransaction, open.owner == ObjectIdentifier(self) { return try body() }
        do {
            return try pool.write { db in
                try Self.$openTransaction.withValue(OpenTransaction(db, owner: ObjectIdentifier(self))) { try body() }
            }
        } catch let error as DatabaseError {
            throw Self.classify(error, path: directory.databasePath)
        }
    }

    /// The writer's `PRAGMA synchronous` (2: FULL), for tests of durability.
    func writerSynchronousMode() throws(StateError) -> Int? {
        try write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
    }

    // MARK: Drives

    public func drives() throws(StateError) -> [StoredDrive] {
        try read { try StoredDrive.order(Column("id")).fetchAll($0) }
    }

    public func drive(address: String) throws(StateError) -> StoredDrive? {
        try read { try StoredDrive.filter(Column("address") == address).fetchOne($0) }
    }

    @discardableResult
    public func addDrive(_ drive: StoredDrive) throws(StateError) -> StoredDrive {
        try write { db in
            var copy = drive
            try copy.insert(db)
            return copy
        }
    }

    public func updateDrive(_ drive: StoredDrive) throws(StateError) {
        try write { db in try drive.update(db) }
    }

    public func removeDrive(address: String, keepingPINs: Bool, at: Date) throws(StateError) {
        try write { db in
            guard let drive = try StoredDrive.filter(Column("address") == address).fetchOne(db), let driveID = drive.id else {
                throw StateError(.invalid, "\(address) is not a drive of the array")
            }
            try db.execute(sql: "DELETE FROM departedCheckValue WHERE identity = ?", arguments: [drive.identity])
            if keepingPINs, let generationID = drive.generationID {
                let values = try StoredCheckValue.filter(Column("driveID") == driveID && Column("generationID") == generationID).fetchAll(db)
                for value in values {
                    try StoredDepartedCheckValue(identity: drive.identity, generationID: generationID, authority: value.authority,
                                                 value: value.value, removedAt: at).insert(db)
                }
            }
            try db.execute(sql: "DELETE FROM drive WHERE id = ?", arguments: [driveID])
        }
    }

    public func departedCheckValues(identity: String) throws(StateError) -> [StoredDepartedCheckValue] {
        try read { try StoredDepartedCheckValue.filter(Column("identity") == identity).order(Column("authority")).fetchAll($0) }
    }

    public func forgetDeparted(identity: String) throws(StateError) {
        try write { db in try db.execute(sql: "DELETE FROM departedCheckValue WHERE identity = ?", arguments: [identity]) }
    }

    // MARK: Lockout guard

    public func countAuthenticationAttempts(driveIDs: [Int64]) throws(StateError) -> [Int64: Int] {
        try write { db in
            var counts: [Int64: Int] = [:]
            for id in driveIDs {
                try db.execute(sql: "UPDATE drive SET failedAuthentications = failedAuthentications + 1 WHERE id = ?", arguments: [id])
                guard db.changesCount == 1,
                      let count = try Int.fetchOne(db, sql: "SELECT failedAuthentications FROM drive WHERE id = ?", arguments: [id]) else {
                    throw StateError(.invalid, "no drive with id \(id) in the state")
                }
                counts[id] = count
            }
            return counts
        }
    }

    public func settleAuthentications(succeeded: [Int64], guarded: [Int64: String], notAttempted: [Int64],
                                      audit: AuditEntry?, lockedOnPurpose: (Bool, [Int64])?) throws(StateError) {
        guard !succeeded.isEmpty || !guarded.isEmpty || !notAttempted.isEmpty || audit != nil || lockedOnPurpose != nil else { return }
        try write { db in
            if var entry = audit { try entry.insert(db) }
            if let (value, ids) = lockedOnPurpose {
                for id in ids { try db.execute(sql: "UPDATE drive SET lockedOnPurpose = ? WHERE id = ?", arguments: [value, id]) }
            }
            // Counted before the attempt, which was then not made (the drive turned out to be another).
            for id in notAttempted {
                try db.execute(sql: "UPDATE drive SET failedAuthentications = MAX(0, failedAuthentications - 1) WHERE id = ?", arguments: [id])
            }
            for id in succeeded {
                try db.execute(sql: "UPDATE drive SET failedAuthentications = 0 WHERE id = ?", arguments: [id])
            }
            for (id, reason) in guarded {
                try db.execute(sql: "UPDATE drive SET guardReason = ? WHERE id = ?", arguments: [reason, id])
            }
        }
    }

    public func resetGuard(driveID: Int64) throws(StateError) {
        try write { db in
            try db.execute(sql: "UPDATE drive SET guardReason = NULL, failedAuthentications = 0 WHERE id = ?", arguments: [driveID])
        }
    }

    // MARK: Key generations and check values

    @discardableResult
    public func addGeneration(_ generation: StoredKeyGeneration) throws(StateError) -> StoredKeyGeneration {
        try write { db in
            var copy = generation
            try copy.insert(db)
            return copy
        }
    }

    public func generations() throws(StateError) -> [StoredKeyGeneration] {
        try read { try StoredKeyGeneration.order(Column("id")).fetchAll($0) }
    }

    public func setGenerationState(id: Int64, _ state: KeyGenerationState) throws(StateError) {
        try write { db in
            try db.execute(sql: "UPDATE keyGeneration SET state = ? WHERE id = ?", arguments: [state.rawValue, id])
        }
    }

    public func setCheckValues(_ values: [StoredCheckValue]) throws(StateError) {
        try write { db in for value in values { try value.save(db) } }
    }

    public func checkValue(driveID: Int64, generationID: Int64, authority: String) throws(StateError) -> StoredCheckValue? {
        try read { db in
            try StoredCheckValue.filter(Column("driveID") == driveID && Column("generationID") == generationID
                                        && Column("authority") == authority).fetchOne(db)
        }
    }

    // MARK: Key servers

    public static let maximumKeyServers = 4

    public func keyServers() throws(StateError) -> [StoredKeyServer] {
        try read { try StoredKeyServer.order(Column("position")).fetchAll($0) }
    }

    @discardableResult
    public func addKeyServer(name: String, addresses: [String], certificatePath: String, privateKeyPath: String,
                             caPath: String, verifyServerName: Bool, copies: [Int64: [String]] = [:],
                             tokenCopies: [String] = []) throws(StateError) -> StoredKeyServer {
        try write { db in
            let count = try StoredKeyServer.fetchCount(db)
            guard count < Self.maximumKeyServers else {
                throw StateError(.invalid, "\(Self.maximumKeyServers) key servers are configured already",
                                 fix: "remove one first (`sedlock keyserver remove`)")
            }
            guard try StoredKeyServer.filter(Column("name") == name).fetchCount(db) == 0 else {
                throw StateError(.invalid, "a key server named \(name) is configured already")
            }
            var providerID = try Int64.fetchOne(db, sql: "SELECT id FROM keyProvider WHERE kind = 'kmip'")
            if providerID == nil {
                try db.execute(sql: "INSERT INTO keyProvider (kind, name) VALUES ('kmip', 'kmip')")
                providerID = db.lastInsertedRowID
            }
            let position = (try Int.fetchOne(db, sql: "SELECT MAX(position) FROM keyServer") ?? -1) + 1
            var server = StoredKeyServer(providerID: providerID ?? 0, name: name, addresses: addresses, position: position,
                                         certificatePath: certificatePath, privateKeyPath: privateKeyPath, caPath: caPath,
                                         verifyServerName: verifyServerName)
            try server.insert(db)
            for (generationID, locations) in copies where !locations.isEmpty {
                guard var generation = try StoredKeyGeneration.fetchOne(db, key: generationID) else {
                    throw StateError(.invalid, "no key generation \(generationID) to record a copy of")
                }
                generation.locations += locations
                try generation.update(db)
            }
            if !tokenCopies.isEmpty {
                guard var rdl = try StoredRDL.fetchOne(db) else { throw StateError(.invalid, "no RDL settings to record a token copy in") }
                rdl.tokenLocations += tokenCopies
                try rdl.update(db)
            }
            return server
        }
    }

    /// Replaces a configured server's addresses and identity files (its name, position and the
    /// objects it holds stay).
    public func updateKeyServer(_ server: StoredKeyServer) throws(StateError) {
        try write { db in
            guard server.id != nil, try StoredKeyServer.filter(Column("name") == server.name).fetchCount(db) == 1 else {
                throw StateError(.invalid, "no key server named \(server.name)")
            }
            try server.update(db)
        }
    }

    public func removeKeyServer(name: String) throws(StateError) {
        try write { db in
            try db.execute(sql: "DELETE FROM keyServer WHERE name = ?", arguments: [name])
            guard db.changesCount == 1 else { throw StateError(.invalid, "no key server named \(name)") }
        }
    }

    public func keyShareThreshold() throws(StateError) -> Int? {
        try read { try Int.fetchOne($0, sql: "SELECT threshold FROM keyProvider WHERE kind = 'kmip'") }
    }

    public func publishedRecoveryRecord() throws(StateError) -> String? {
        try read { try String.fetchOne($0, sql: "SELECT publishedRecord FROM keyProvider WHERE kind = 'kmip'") }
    }

    public func setPublishedRecoveryRecord(_ content: String?) throws(StateError) {
        try write { db in
            try db.execute(sql: "UPDATE keyProvider SET publishedRecord = ? WHERE kind = 'kmip'", arguments: [content])
        }
    }

    public func setKeyShareThreshold(_ threshold: Int?) throws(StateError) {
        try write { db in
            try db.execute(sql: "UPDATE keyProvider SET threshold = ? WHERE kind = 'kmip'", arguments: [threshold])
            guard db.changesCount == 1 else {
                throw StateError(.invalid, "no kmip key provider", fix: "add a key server first (`sedlock keyserver add`)")
            }
        }
    }

    // MARK: Certificates

    public func recordCertificates(_ certificates: [StoredCertificate], role: String, path: String) throws(StateError) {
        try write { db in
            try db.execute(sql: "DELETE FROM certificate WHERE path = ? AND role = ?", arguments: [path, role])
            for certificate in certificates {
                var copy = certificate
                try copy.insert(db)
            }
        }
    }

    public func certificates() throws(StateError) -> [StoredCertificate] {
        try read { try StoredCertificate.order(Column("id")).fetchAll($0) }
    }

    // MARK: Journal

    public func beginJournaledChange(_ kind: JournalEntry.Kind, from: Int64?, generation: StoredKeyGeneration,
                                     newDrives: [StoredDrive], at: Date,
                                     checkValues: (StoredDrive, Int64) throws -> [StoredCheckValue]) throws(StateError) -> JournalEntry {
        try write { db in
            var generation = generation
            if generation.id == nil { try generation.insert(db) }
            guard let generationID = generation.id else { throw StateError(.invalid, "the new generation has no id") }
            for drive in newDrives {
                var copy = drive
                try copy.insert(db)
            }
            var journal = JournalEntry(kind: kind, fromGenerationID: from, toGenerationID: generationID, startedAt: at)
            try journal.insert(db)
            guard let journalID = journal.id else { throw StateError(.invalid, "the journal entry has no id") }
            let drives = try StoredDrive.fetchAll(db)
            let added = Set(newDrives.map(\.address))
            let inChange = kind == .setup ? drives.filter { added.contains($0.address) } : drives
            for drive in inChange {
                guard let driveID = drive.id else { continue }
                for value in try checkValues(drive, generationID) { try value.save(db) }
                try JournalDriveStep(journalID: journalID, driveID: driveID, step: .pending, updatedAt: at).insert(db)
            }
            return journal
        }
    }

    public func pendingJournals() throws(StateError) -> [JournalEntry] {
        try read { try JournalEntry.filter(Column("state") == JournalEntry.State.pending.rawValue).order(Column("id")).fetchAll($0) }
    }

    public func journalSteps(journalID: Int64) throws(StateError) -> [JournalDriveStep] {
        try read { try JournalDriveStep.filter(Column("journalID") == journalID).order(Column("driveID")).fetchAll($0) }
    }

    public func setJournalStep(_ step: JournalDriveStep) throws(StateError) {
        try write { db in try step.save(db) }
    }

    public func finishJournal(id: Int64, state: JournalEntry.State, at: Date) throws(StateError) {
        try write { db in
            try db.execute(sql: "UPDATE journal SET state = ?, finishedAt = ? WHERE id = ?", arguments: [state.rawValue, StorageDate.text(at), id])
        }
    }

    // MARK: Faults

    @discardableResult
    public func syncFaults(_ current: [StoredFault], scope: Set<String>, objects: Set<String>?,
                           at: Date) throws(StateError) -> [StoredFault] {
        // Most calls change nothing: look first, so they cost no write (and no fsync).
        let current = current
        let needed = try read { db -> Bool in
            let open = try StoredFault.filter(Column("clearedAt") == nil).fetchAll(db)
            let clears = open.contains { fault in
                scope.contains(fault.name) && (objects?.contains(fault.object) ?? true)
                    && !current.contains { $0.name == fault.name && $0.object == fault.object }
            }
            let raises = current.contains { fault in !open.contains { $0.name == fault.name && $0.object == fault.object } }
            // A fault still open whose cause changed (unreachable → lost) keeps its time, takes the new words.
            let changes = current.contains { fault in
                open.contains { $0.name == fault.name && $0.object == fault.object
                    && ($0.detail != fault.detail || $0.severity != fault.severity || $0.action != fault.action) }
            }
            return clears || raises || changes
        }
        if !needed { return try openFaults() }
        return try write { db in
            let open = try StoredFault.filter(Column("clearedAt") == nil).fetchAll(db)
            for var fault in open where scope.contains(fault.name) && (objects?.contains(fault.object) ?? true)
                && !current.contains(where: { $0.name == fault.name && $0.object == fault.object }) {
                fault.clearedAt = at
                try fault.update(db)
            }
            for fault in current {
                if var existing = open.first(where: { $0.name == fault.name && $0.object == fault.object }) {
                    guard existing.detail != fault.detail || existing.severity != fault.severity || existing.action != fault.action else { continue }
                    existing.detail = fault.detail
                    existing.severity = fault.severity
                    existing.action = fault.action
                    try existing.update(db)
                } else {
                    var raised = fault
                    raised.clearedAt = nil
                    try raised.insert(db)
                }
            }
            return try StoredFault.filter(Column("clearedAt") == nil).order(Column("raisedAt"), Column("id")).fetchAll(db)
        }
    }

    public func openFaults() throws(StateError) -> [StoredFault] {
        try read { try StoredFault.filter(Column("clearedAt") == nil).order(Column("raisedAt"), Column("id")).fetchAll($0) }
    }

    public func clearedFaults(limit: Int) throws(StateError) -> [StoredFault] {
        try read { try StoredFault.filter(Column("clearedAt") != nil).order(Column("clearedAt").desc).limit(limit).fetchAll($0) }
    }

    // MARK: Boot records and audit log

    public func recordBoot(_ boot: BootRecord) throws(StateError) {
        try write { db in try boot.save(db) }
    }

    public func recentBoots(limit: Int) throws(StateError) -> [BootRecord] {
        try read { try BootRecord.order(Column("startedAt").desc, Column("rowid").desc).limit(limit).fetchAll($0) }
    }

    public func rdl() throws(StateError) -> StoredRDL? {
        try read { try StoredRDL.fetchOne($0) }
    }

    public func saveRDL(_ rdl: StoredRDL) throws(StateError) {
        try write { db in try rdl.save(db) }
    }

    public func deleteRDL() throws(StateError) {
        try write { db in _ = try StoredRDL.deleteAll(db) }
    }

    public func appendAudit(_ entry: AuditEntry) throws(StateError) {
        try write { db in
            var copy = entry
            try copy.insert(db)
        }
    }

    public func auditLog(limit: Int) throws(StateError) -> [AuditEntry] {
        try read { try AuditEntry.order(Column("id").desc).limit(limit).fetchAll($0) }
    }
}
