import ControlAPI
import Foundation
import KMIP
import Keys
import LockState
import Opal
import Platform

extension LockManager {
    /// Unlocks drives in parallel: keys first (fetched and verified before any session opens),
    /// verified PINs only, every attempt under the lockout guard; with `boot`, a boot record and
    /// the boot-loop guard.
    public func unlock(_ request: UnlockRequest) async throws(ControlError) -> ArrayReport {
        try await changeLockState(locked: false, selection: request.drives, boot: request.boot, waitSeconds: request.waitSeconds)
    }

    /// Locks drives in parallel (the operator's "lock the array now").
    public func lock(_ request: LockRequest) async throws(ControlError) -> ArrayReport {
        try await changeLockState(locked: true, selection: request.drives, boot: false, waitSeconds: 0)
    }

    /// One lock or unlock of a set of drives, as its phases see it.
    private struct LockChange {
        let locked: Bool
        let boot: Bool
        var operation: String { locked ? "lock" : "unlock" }
        /// This boot's id and whether the boot-loop guard holds it (boot unlocks only).
        var bootID: String?
        var held = false
        /// An unfinished rekey, during which a drive's Admin1 may hold either generation's PIN.
        var rekey: (journal: JournalEntry, steps: [JournalDriveStep])?
        var all: [StoredDrive] = []
        var drives: [StoredDrive] = []
        var outcomes: [String: DriveOutcome] = [:]
        /// Drives with verified PINs, still to be looked at and attempted.
        var ready: [Candidate] = []

        struct Candidate: Sendable {
            let drive: StoredDrive
            let pins: VerifiedPINs
            let owner: DriveOwner
        }

        mutating func decide(_ drive: StoredDrive, _ result: DriveOutcome.Result, _ detail: String) {
            outcomes[drive.address] = DriveOutcome(address: drive.address, result: result, detail: detail)
        }
    }

    /// Keys first, then look, then attempt: a boot record and the boot-loop guard (boot unlocks),
    /// an unfinished rekey rolled forward, keys fetched and verified, each drive's identity and
    /// lock state read without authenticating, one durable count of every attempt, the attempts
    /// (the identity checked again right before each), their settlement with the audit entry,
    /// faults and the boot's outcome.
    private func changeLockState(locked: Bool, selection: DriveSelection, boot: Bool,
                                 waitSeconds: Double) async throws(ControlError) -> ArrayReport {
        let began = time.uptimeNanoseconds
        let store = try openState(.write)
        var change = LockChange(locked: locked, boot: boot)
        change.all = try drives(store)
        // A machine not set up yet boots without a failed unit: nothing is managed, nothing to unlock.
        if boot && change.all.isEmpty && selection == .all {
            return ArrayReport(operation: change.operation, drives: [], note: "no array is set up")
        }
        change.drives = try select(selection, from: change.all)
        if boot { try startBoot(&change, store: store) }
        try await rollForwardRekey(&change, selection: selection, store: store)
        let traffic = KMIPTrafficMeter()
        // The wait bounds everything the keys take; no wait means one fetch within the command timeout.
        let keysDeadline = Deadline.after(seconds: waitSeconds > 0 ? waitSeconds : configuration.commandTimeout, time: time)
        try planAttempts(&change, store: store, deadline: keysDeadline, traffic: traffic)
        await lookBeforeSpending(&change)
        try await attempt(&change, store: store)
        return finish(change, store: store, traffic: traffic, began: began)
    }

    /// The boot record of this boot, and whether the boot-loop guard holds it.
    private func startBoot(_ change: inout LockChange, store: StateDatabase) throws(ControlError) {
        guard let id = BootIdentity.read(configuration.bootIDPath) else {
            throw ControlError(.failed, "cannot read this boot's id from \(configuration.bootIDPath)")
        }
        change.bootID = id
        do {
            change.held = try BootLoopGuard(store: store, limit: configuration.bootLoopLimit).holds(before: id)
            if try store.recentBoots(limit: configuration.bootLoopLimit + 1).first(where: { $0.bootID == id }) == nil {
                try store.recordBoot(BootRecord(bootID: id, startedAt: time.wallTime, outcome: .started))
            }
        } catch { throw ControlError(error) }
    }

    /// An unfinished rekey is rolled forward first (not in a held boot); drives it cannot finish
    /// are unlocked with the PIN their Admin1 holds now.
    private func rollForwardRekey(_ change: inout LockChange, selection: DriveSelection, store: StateDatabase) async throws(ControlError) {
        let pending: [JournalEntry]
        do { pending = try store.pendingJournals() } catch { throw ControlError(error) }
        guard let journal = pending.first(where: { $0.kind == .rekey }), let journalID = journal.id else { return }
        if !change.held { _ = try? await runRekey(journal, store: store, resuming: true) }
        do {
            if try store.pendingJournals().contains(where: { $0.id == journalID }) {
                change.rekey = (journal, try store.journalSteps(journalID: journalID))
            }
        } catch { throw ControlError(error) }
        change.all = try drives(store)
        change.drives = try select(selection, from: change.all)
    }

    /// Keys first: nothing touches a drive until its key is in hand and proven. Decides every
    /// drive that cannot be attempted (unfinished setup, guarded, held, no or wrong key).
    private func planAttempts(_ change: inout LockChange, store: StateDatabase, deadline: Deadline,
                              traffic: KMIPTrafficMeter) throws(ControlError) {
        let generationIDs = Set(change.drives.compactMap { admin1Generation(of: $0, rekey: change.rekey) })
        let all = change.all
        let keys: [Int64: KeyReadiness]
        do {
            keys = try KMIPTraffic.$meter.withValue(traffic) {
                try loadKeys(generationIDs: generationIDs, drives: all, store: store, deadline: deadline)
            }
        } catch { throw ControlError(error) }
        for drive in change.drives {
            guard let generationID = admin1Generation(of: drive, rekey: change.rekey) else {
                change.decide(drive, .failed, "setup has not finished on this drive")
                continue
            }
            if let reason = drive.guardReason { change.decide(drive, .guarded, reason); continue }
            if change.rekey?.steps.first(where: { $0.driveID == drive.id })?.step == .unknown {
                // Recovered mid-rekey: which Admin1 PIN it holds is not known, and guessing costs tries.
                change.decide(drive, .held, "a recovered rekey has not reached this drive yet: `sedlock rekey` finishes it, then unlock")
                continue
            }
            if change.held {
                // After K failed boots: no attempt with anything unverified, and none at all on a
                // drive that has refused sedlock before; only clean drives with verified keys go on.
                let loop = "the last \(configuration.bootLoopLimit) boots failed to unlock"
                if drive.failedAuthentications > 0 {
                    change.decide(drive, .held, "\(loop) and this drive refused \(drive.failedAuthentications) attempt(s): no attempt until an operator unlocks it")
                    continue
                }
                guard case .ready? = keys[generationID] else {
                    change.decide(drive, .held, "\(loop) and no verified key arrived within the wait: no attempt")
                    continue
                }
            }
            switch keys[generationID] {
            case .ready(let ak)?:
                do {
                    let pins = try self.keys.verifiedPINs.pins(ak: ak, drive: drive, generationID: generationID, store: store)
                    change.ready.append(.init(drive: drive, pins: pins, owner: try owner(for: drive.address)))
                } catch let error as ControlError {
                    change.decide(drive, .failed, error.description)
                } catch {
                    change.decide(drive, .keyMismatch, "\(error)")
                }
            case .mismatch(let why)?: change.decide(drive, .keyMismatch, why)
            case .unavailable(let why)?, .refused(let why)?: change.decide(drive, .keyUnavailable, why)
            case nil: change.decide(drive, .keyUnavailable, "no key loaded")
            }
        }
    }

    /// Look before spending: identity and current lock state, without authenticating; a drive
    /// already in the asked state, or another drive at its address, is decided here.
    private func lookBeforeSpending(_ change: inout LockChange) async {
        let locked = change.locked
        let ready = change.ready
        let looked: [(Int, DriveOutcome?)] = await withTaskGroup(of: (Int, DriveOutcome?).self) { group in
            for (n, item) in ready.enumerated() {
                group.addTask { (n, await Self.look(locked: locked, drive: item.drive, owner: item.owner)) }
            }
            var out: [(Int, DriveOutcome?)] = []
            for await result in group { out.append(result) }
            return out
        }
        change.ready = []
        for (n, early) in looked.sorted(by: { $0.0 < $1.0 }) {
            if let early { change.outcomes[early.address] = early } else { change.ready.append(ready[n]) }
        }
    }

    /// What became of one admitted drive.
    private struct Attempted: Sendable {
        let id: Int64
        let admission: LockoutGuard.Admission
        let address: String
        /// The drive's refusal, or nil when the attempt worked.
        var error: OpalError?
        /// Another drive was found at the address right before the attempt: nothing was presented.
        var otherDrive: DriveOutcome?
    }

    /// Every attempt is counted durably before it is made, in one transaction for the whole batch;
    /// right before each, the drive's identity is checked again (no PIN ever reaches another
    /// drive); the settlement and the audit entry share one transaction.
    private func attempt(_ change: inout LockChange, store: StateDatabase) async throws(ControlError) {
        let lockout = lockoutGuard(store)
        let toAttempt = change.ready
        let admissions: [Int64: LockoutGuard.Admission]
        do {
            let fresh = Dictionary(try store.drives().compactMap { drive in drive.id.map { ($0, drive) } }) { first, _ in first }
            admissions = try lockout.admit(toAttempt.compactMap { item in item.drive.id.flatMap { fresh[$0] } })
        } catch { throw ControlError(error) }
        let locked = change.locked
        let operation = change.operation
        let attempted: [Attempted] = await withTaskGroup(of: Attempted.self) { group in
            for item in toAttempt {
                guard let id = item.drive.id, let admission = admissions[id] else { continue }
                let blank = Attempted(id: id, admission: admission, address: item.drive.address)
                guard case .admitted = admission else {
                    group.addTask { blank }
                    continue
                }
                let pins = item.pins
                group.addTask {
                    var result = blank
                    do {
                        result.otherDrive = try await item.owner.withDrive { (opal) throws(OpalError) -> DriveOutcome? in
                            if let other = DriveWork.otherDrive(opal, expected: item.drive) { return other }
                            try opal.setLocked(locked, range: 0, as: .admin(1), pin: pins.admin1)
                            return nil
                        }
                    } catch let error as OpalError {
                        result.error = error
                    } catch {
                        result.error = OpalError(.invalidState, device: item.drive.address, operation: operation, "\(error)")
                    }
                    return result
                }
            }
            var out: [Attempted] = []
            for await result in group { out.append(result) }
            return out
        }
        for result in attempted {
            switch result.admission {
            case .guarded(let reason):
                change.outcomes[result.address] = DriveOutcome(address: result.address, result: .guarded, detail: reason)
            case .admitted:
                if let other = result.otherDrive {
                    change.outcomes[result.address] = other
                } else if let error = result.error {
                    change.outcomes[result.address] = DriveOutcome(address: result.address, result: JournaledRun.result(of: error),
                                                                   detail: error.description, attempts: 1)
                } else {
                    change.outcomes[result.address] = DriveOutcome(address: result.address, result: locked ? .locked : .unlocked, attempts: 1)
                }
            }
        }
        let ordered = change.drives.compactMap { change.outcomes[$0.address] }
        let allDone = !ordered.isEmpty && ordered.allSatisfy(\.succeeded)
        let audited = auditEntry(change.boot ? "unlock --boot" : operation, target: change.drives.map(\.address).joined(separator: " "),
                                 outcome: allDone ? "done" : ordered.map { "\($0.address) \($0.result.words)" }.joined(separator: ", "))
        // Locked now on purpose, or unlocked: what sedlockd's drive monitor tells a relocked drive by.
        let reached: DriveOutcome.Result = locked ? .locked : .unlocked
        let marked = change.drives.filter { change.outcomes[$0.address]?.result == reached }.compactMap(\.id)
        do {
            try lockout.settle(attempted.map { (id: $0.id, admission: $0.admission, error: $0.error) },
                               notAttempted: Set(attempted.filter { $0.otherDrive != nil }.map(\.id)), audit: audited,
                               lockedOnPurpose: (locked, marked))
        } catch { throw ControlError(error) }
    }

    /// Faults, the note of a held boot, the key servers' traffic, and the boot's outcome.
    private func finish(_ change: LockChange, store: StateDatabase, traffic: KMIPTrafficMeter, began: UInt64) -> ArrayReport {
        // Which key each drive's PINs came from: an identifier for the journal, never the key.
        let keyIDs = Dictionary(((try? store.generations()) ?? []).compactMap { g in g.id.map { ($0, g.keyID) } }) { first, _ in first }
        let ordered = change.drives.compactMap { drive -> DriveOutcome? in
            guard var outcome = change.outcomes[drive.address] else { return nil }
            outcome.keyID = admin1Generation(of: drive, rekey: change.rekey).flatMap { keyIDs[$0] }
            return outcome
        }
        recordFaults(store, ordered.filter { $0.result == .keyMismatch }.map {
            fault("KeyMismatch", "error", $0.address,
                  action: "the key found does not match the drive's check values: restore the right key (`sedlock keys restore --all`)",
                  detail: $0.detail)
        }, scope: ["KeyMismatch"], objects: Set(ordered.filter { $0.result != .keyUnavailable }.map(\.address)))
        var note = ""
        if change.held {
            note = "boot-loop guard: the last \(configuration.bootLoopLimit) boots failed to unlock; only drives with verified keys "
                + "and no failed authentication on record were tried"
        }
        var report = ArrayReport(operation: change.operation, drives: ordered, note: note)
        if traffic.roundTrips > 0 {
            report.keyServerRoundTrips = traffic.roundTrips
            report.keyServerConnections = traffic.connectionsOpened
        }
        if let bootID = change.bootID {
            let outcome: BootRecord.Outcome = report.allSucceeded ? .unlocked
                : ordered.contains(where: { $0.result == .held }) ? .held : report.noneSucceeded ? .failed : .partial
            let detail = ordered.filter { !$0.succeeded }.map { "\($0.address): \($0.result.words)" }.joined(separator: "; ")
            let seconds = Double(time.uptimeNanoseconds - began) / 1e9
            try? store.recordBoot(BootRecord(bootID: bootID, startedAt: time.wallTime, outcome: outcome, detail: detail, durationSeconds: seconds))
        } else if !change.locked, report.allSucceeded, let id = BootIdentity.read(configuration.bootIDPath),
                  (try? store.recentBoots(limit: 1).first?.bootID) == id {
            // An operator's unlock that succeeds ends a hold: this boot counts as unlocked.
            try? store.recordBoot(BootRecord(bootID: id, startedAt: time.wallTime, outcome: .unlocked, detail: "by \(Self.requester ?? configuration.actor)"))
        }
        return report
    }

    /// What can be known about a drive without authenticating: is it the drive the PINs were made
    /// for, and is it already in the asked state? nil: it needs an attempt.
    private static func look(locked: Bool, drive: StoredDrive, owner: DriveOwner) async -> DriveOutcome? {
        do {
            return try await owner.withDrive { (opal) throws(OpalError) -> DriveOutcome? in
                if let other = DriveWork.otherDrive(opal, expected: drive) { return other }
                if let isLocked = try OpalDrive.readDiscovery(opal.transport).locking?.locked, isLocked == locked {
                    let done: DriveOutcome.Result = locked ? .locked : .unlocked
                    return DriveOutcome(address: drive.address, result: done, detail: "already \(done.rawValue)")
                }
                return nil
            }
        } catch {
            return DriveOutcome(address: drive.address, result: JournaledRun.result(of: error), detail: error.description)
        }
    }

    func select(_ selection: DriveSelection, from all: [StoredDrive]) throws(ControlError) -> [StoredDrive] {
        switch selection {
        case .all:
            guard !all.isEmpty else { throw ControlError(.badRequest, "the array has no drives", fix: "run `sedlock setup` first") }
            return all
        case .some(let addresses):
            let byAddress = Dictionary(all.map { ($0.address, $0) }) { first, _ in first }
            var out: [StoredDrive] = []
            for address in addresses {
                guard let drive = byAddress[address] else {
                    throw ControlError(.badRequest, "\(address) is not a drive of the array", fix: "see `sedlock status`")
                }
                out.append(drive)
            }
            return out
        }
    }
}
