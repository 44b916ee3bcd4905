import ControlAPI
import Keys
import LockState
import Platform

/// One array change as every multi-drive change runs (setup, array add, rekey — and so RDL
/// enable, rotate and disable — and erase): keys first, then each drive's work in parallel,
/// then the change finished, then one audit entry.
struct ArrayChange {
    /// The report's operation and the audit entry's action ("setup", "rekey", "erase --crypto").
    var operation: String
    /// The audit entry's target (default: the drives' addresses).
    var auditTarget: String?
    /// The generations whose keys are fetched and proven before any drive is touched.
    var generations: Set<Int64>
    /// Whether every one of them must be ready, else the change is refused with this message and
    /// fix and no drive is touched (a journaled change); nil: the work decides per drive.
    var requireKeys: (message: String, fix: String)?
    /// Each drive's work, given the keys.
    var work: ([Int64: KeyReadiness]) throws(ControlError) -> [DriveWork]
    /// What follows the drives' work (a journal finished, reverted drives dropped); gets and
    /// returns the report.
    var finish: (ArrayReport) throws(ControlError) -> ArrayReport = { $0 }
}

extension LockManager {
    /// Runs `change`: keys first, every drive's work through its owner, the finish, the audit.
    func run(_ change: ArrayChange, store: any StateStore) async throws(ControlError) -> ArrayReport {
        let keys = change.generations.isEmpty ? [:] : try loadKeys(generationIDs: change.generations, drives: try drives(store), store: store)
        if let required = change.requireKeys {
            for id in change.generations.sorted() {
                guard let why = keys[id]?.reason ?? (keys[id] == nil ? "no key" : nil) else { continue }
                throw ControlError(.held, "\(required.message): \(why)", fix: required.fix)
            }
        }
        let outcomes = await perform(try change.work(keys), operation: change.operation)
        let report = try change.finish(ArrayReport(operation: change.operation, drives: outcomes))
        audit(store, change.operation, target: change.auditTarget ?? outcomes.map(\.address).joined(separator: " "),
              outcome: report.allSucceeded ? "done"
                  : "unfinished: " + outcomes.filter { !$0.succeeded }.map { "\($0.address) \($0.result.words)" }.joined(separator: ", "))
        return report
    }

    /// A journaled change's drive work: each drive's recorded step, a drive already proven
    /// reported as `done` without being touched, the others as `each` says.
    func journaledWork(_ journal: JournalEntry, store: any StateStore, done: DriveOutcome.Result,
                       _ each: (StoredDrive, JournalDriveStep, Int64) -> DriveWork) throws(ControlError) -> [DriveWork] {
        guard let journalID = journal.id else { throw ControlError(.failed, "the journal entry has no id") }
        let all = Dictionary(try drives(store).compactMap { drive in drive.id.map { ($0, drive) } }) { first, _ in first }
        let steps: [JournalDriveStep]
        do { steps = try store.journalSteps(journalID: journalID) } catch { throw ControlError(error) }
        return steps.compactMap { step in
            guard let drive = all[step.driveID] else { return nil }
            if step.step == .proven { return .decided(DriveOutcome(address: drive.address, result: done, detail: "already done")) }
            return each(drive, step, journalID)
        }
    }

    /// Records a journaled change before any drive is touched: the generation (new, or the
    /// active one an added drive joins), the new drives, every drive's check values under
    /// `material` (the PIN input), and the journal; then keeps a new generation's key in the
    /// keytable and audits the start.
    func beginJournal(_ kind: JournalEntry.Kind, operation: String, target: String, from: Int64?,
                      generation: StoredKeyGeneration, newDrives: [StoredDrive], material: Secret,
                      store: any StateStore, started: String) throws(ControlError) -> JournalEntry {
        let journal: JournalEntry
        do {
            // A drive coming back keeps the check values of the PINs it left with, to be proven by.
            var kept: [String: [StoredDepartedCheckValue]] = [:]
            for drive in newDrives { kept[drive.identity] = try store.departedCheckValues(identity: drive.identity) }
            journal = try store.beginJournaledChange(kind, from: from, generation: generation, newDrives: newDrives,
                                                     at: time.wallTime) { drive, generationID in
                let restored = drive.id.map { id in (kept[drive.identity] ?? []).map { $0.restored(driveID: id) } } ?? []
                return restored.filter { $0.generationID != generationID }
                    + (try VerifiedPINs.checkValues(ak: material, drive: drive, generationID: generationID))
            }
        } catch { throw ControlError(error) }
        if generation.id == nil { keytable.insert(material, keyID: generation.keyID) }
        audit(store, operation, target: target, outcome: started)
        return journal
    }

    /// The state's drive records.
    func drives(_ store: any StateStore) throws(ControlError) -> [StoredDrive] {
        do { return try store.drives() } catch { throw ControlError(error) }
    }
}
