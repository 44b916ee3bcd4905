import Foundation

/// What the lock manager reads and writes of its state. `StateDatabase` is the one implementation
/// (SQLite); the protocol keeps the manager's policies testable against it without knowing SQL.
public protocol StateStore: Sendable {
    // Drives
    func drives() throws(StateError) -> [StoredDrive]
    func drive(address: String) throws(StateError) -> StoredDrive?
    @discardableResult func addDrive(_ drive: StoredDrive) throws(StateError) -> StoredDrive
    func updateDrive(_ drive: StoredDrive) throws(StateError)
    /// Forgets a drive (its check values and journal steps go with it). With `keepingPINs`, the
    /// check values of the generation it holds are kept by its identity, so that it can be taken
    /// back (`departedCheckValues`).
    func removeDrive(address: String, keepingPINs: Bool, at: Date) throws(StateError)
    /// The check values kept for a drive that left with its PINs, by its identity (empty: none).
    func departedCheckValues(identity: String) throws(StateError) -> [StoredDepartedCheckValue]
    /// Forgets them, once the drive is back (or reverted).
    func forgetDeparted(identity: String) throws(StateError)

    // Lockout guard
    /// Counts an authentication attempt on each drive as failed, durably, *before* it is made (a
    /// crash during the attempt then counts as a failure), in one transaction (one fsync for a
    /// whole array). Returns each drive's new count of consecutive failures.
    func countAuthenticationAttempts(driveIDs: [Int64]) throws(StateError) -> [Int64: Int]
    /// Settles attempts: successes return to zero, and drives that reached their limit are guarded;
    /// `audit`, when given, is recorded in the same transaction (one fsync for both).
    func settleAuthentications(succeeded: [Int64], guarded: [Int64: String], notAttempted: [Int64],
                               audit: AuditEntry?, lockedOnPurpose: (Bool, [Int64])?) throws(StateError)
    func resetGuard(driveID: Int64) throws(StateError)

    // Key generations and check values
    @discardableResult func addGeneration(_ generation: StoredKeyGeneration) throws(StateError) -> StoredKeyGeneration
    func generations() throws(StateError) -> [StoredKeyGeneration]
    func setGenerationState(id: Int64, _ state: KeyGenerationState) throws(StateError)
    func setCheckValues(_ values: [StoredCheckValue]) throws(StateError)
    func checkValue(driveID: Int64, generationID: Int64, authority: String) throws(StateError) -> StoredCheckValue?

    // Key servers (the kmip provider)
    /// Configured key servers in their order.
    func keyServers() throws(StateError) -> [StoredKeyServer]
    /// Adds a key server to the kmip provider (created on first use); refuses a fifth. In the same
    /// transaction, records where the copies made on it went: `copies` appends to each
    /// generation's locations (by generation id), `tokenCopies` to the RDL token's — so a crash
    /// leaves either the old set of servers or the new one with everything it holds recorded.
    @discardableResult func addKeyServer(name: String, addresses: [String], certificatePath: String, privateKeyPath: String,
                                         caPath: String, verifyServerName: Bool, copies: [Int64: [String]],
                                         tokenCopies: [String]) throws(StateError) -> StoredKeyServer
    func updateKeyServer(_ server: StoredKeyServer) throws(StateError)
    func removeKeyServer(name: String) throws(StateError)
    /// The kmip provider's threshold: k-of-n shares instead of full copies (nil: full copies).
    func keyShareThreshold() throws(StateError) -> Int?
    /// Rapid Data Locking's settings, once `rdl enable` was asked for.
    func rdl() throws(StateError) -> StoredRDL?
    func saveRDL(_ rdl: StoredRDL) throws(StateError)
    func deleteRDL() throws(StateError)
    func setKeyShareThreshold(_ threshold: Int?) throws(StateError)
    /// What was last published as the recovery record on every key server (nil: nothing known
    /// to be there), to compare with the record the state gives now.
    func publishedRecoveryRecord() throws(StateError) -> String?
    func setPublishedRecoveryRecord(_ content: String?) throws(StateError)

    // Certificates
    /// Records the certificates a file holds (a CA bundle may hold several), replacing what was
    /// recorded for that file and role.
    func recordCertificates(_ certificates: [StoredCertificate], role: String, path: String) throws(StateError)
    func certificates() throws(StateError) -> [StoredCertificate]

    // Journal
    /// Records the plan of a journaled change in one transaction — the generation (inserted unless
    /// it has an id: a drive added to the array joins the active one), the drives
    /// a setup adds, every drive's new check values (from `checkValues`), the journal entry and each
    /// drive's pending step — so that a crash leaves all of it or none.
    func beginJournaledChange(_ kind: JournalEntry.Kind, from: Int64?, generation: StoredKeyGeneration, newDrives: [StoredDrive],
                              at: Date, checkValues: (StoredDrive, Int64) throws -> [StoredCheckValue]) throws(StateError) -> JournalEntry
    /// The unfinished journal entries, oldest first.
    func pendingJournals() throws(StateError) -> [JournalEntry]
    func journalSteps(journalID: Int64) throws(StateError) -> [JournalDriveStep]
    func setJournalStep(_ step: JournalDriveStep) throws(StateError)
    func finishJournal(id: Int64, state: JournalEntry.State, at: Date) throws(StateError)

    // Faults
    /// Raises the faults in `current` that are not open yet and clears the open ones of the names
    /// in `scope` (and, when given, about `objects`) that `current` no longer holds (a fault is its
    /// name and object). Returns the
    /// faults open afterwards.
    @discardableResult
    func syncFaults(_ current: [StoredFault], scope: Set<String>, objects: Set<String>?, at: Date) throws(StateError) -> [StoredFault]
    /// Faults open now, oldest first.
    func openFaults() throws(StateError) -> [StoredFault]
    /// Faults cleared most recently first.
    func clearedFaults(limit: Int) throws(StateError) -> [StoredFault]

    // Boot records and audit log
    func recordBoot(_ boot: BootRecord) throws(StateError)
    /// The most recent boots first.
    func recentBoots(limit: Int) throws(StateError) -> [BootRecord]
    func appendAudit(_ entry: AuditEntry) throws(StateError)
    /// The most recent entries first.
    func auditLog(limit: Int) throws(StateError) -> [AuditEntry]
}

extension StateStore {
    /// `countAuthenticationAttempts` for one drive.
    public func countAuthenticationAttempt(driveID: Int64) throws(StateError) -> Int {
        guard let count = try countAuthenticationAttempts(driveIDs: [driveID])[driveID] else {
            throw StateError(.invalid, "no drive with id \(driveID) in the state")
        }
        return count
    }

    /// The attempt succeeded: the consecutive count returns to zero.
    public func recordAuthenticationSuccess(driveID: Int64) throws(StateError) {
        try settleAuthentications(succeeded: [driveID], guarded: [:], notAttempted: [], audit: nil, lockedOnPurpose: nil)
    }

    public func guardDrive(driveID: Int64, reason: String) throws(StateError) {
        try settleAuthentications(succeeded: [], guarded: [driveID: reason], notAttempted: [], audit: nil, lockedOnPurpose: nil)
    }
}
