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

    private func changeLockState(locked: Bool, selection: DriveSelection, boot: Bool,
                                 waitSeconds: Double) async throws(ControlError) -> ArrayReport {
        let operation = locked ? "lock" : "unlock"
        let began = time.uptimeNanoseconds
        let store = try openState(.write)
        var all: [StoredDrive]
        do { all = try store.drives() } catch { throw Self.stateFailure(error) }
        // A machine not set up yet boots without a failed unit: nothing is managed, nothing to unlock.
        if boot && all.isEmpty && selection == .all {
            return ArrayReport(operation: operation, drives: [], note: "no array is set up")
        }
        var drives = try select(selection, from: all)

        var bootID: String?
        var held = false
        if boot {
            guard let id = BootIdentity.read(configuration.bootIDPath) else {
                throw ControlError(.failed, "cannot read this boot's id from \(configuration.bootIDPath)")
            }
            bootID = id
            do {
                held = try BootLoopGuard(store: store, limit: configuration.bootLoopLimit).holds(before: id)
                if try store.recentBoots(limit: configuration.bootLoopLimit + 1).first(where: { $0.bootID == id }) == nil {
                    try store.recordBoot(BootRecord(bootID: id, startedAt: time.wallTime, outcome: .started))
                }
            } catch { throw Self.stateFailure(error) }
        }

        // An unfinished rekey is rolled forward first (not in a held boot); drives it cannot finish
        // are unlocked with the PIN their Admin1 holds now.
        var rekey: (journal: JournalEntry, steps: [JournalDriveStep])?
        do {
            if let journal = try store.pendingJournals().first(where: { $0.kind == .rekey }), let journalID = journal.id {
                if !held { _ = try? await runRekey(journal, store: store, resuming: true) }
                if try store.pendingJournals().contains(where: { $0.id == journalID }) {
                    rekey = (journal, try store.journalSteps(journalID: journalID))
                }
                all = try store.drives()
                drives = try select(selection, from: all)
            }
        } catch let error as ControlError { throw error } catch let error as StateError { throw Self.stateFailure(error) } catch {
            throw ControlError(.failed, "\(error)")
        }

        // Keys first: nothing below touches a drive until its key is in hand and proven.
        let deadline = Deadline.after(seconds: waitSeconds, time: time)
        let generationIDs = Set(drives.compactMap { admin1Generation(of: $0, rekey: rekey) })
        let traffic = KMIPTrafficMeter()
        let keys: [Int64: KeyReadiness]
        do {
            keys = try KMIPTraffic.$meter.withValue(traffic) {
                try loadKeys(generationIDs: generationIDs, drives: all, store: store, deadline: deadline)
            }
        } catch let error as ControlError { throw error } catch { throw ControlError(.failed, "\(error)") }
        let lockout = lockoutGuard(store)
        var outcomes: [String: DriveOutcome] = [:]
        var ready: [(drive: StoredDrive, pins: VerifiedPINs, owner: DriveOwner)] = []
        for drive in drives {
            let fail = { (result: DriveOutcome.Result, detail: String) in
                outcomes[drive.address] = DriveOutcome(address: drive.address, result: result, detail: detail)
            }
            guard let generationID = admin1Generation(of: drive, rekey: rekey) else {
                fail(.failed, "setup has not finished on this drive")
                continue
            }
            if let reason = drive.guardReason { fail(.guarded, reason); continue }
            if held {
                // After K failed boots: no attempt with anything unverified, and none at all on a
                // drive that has refused sedlock before; only clean drives with verified keys go on.
                let loop = "the last \(configuration.bootLoopLimit) boots failed to unlock"
                if drive.failedAuthentications > 0 {
                    fail(.held, "\(loop) and this drive refused \(drive.failedAuthentications) attempt(s): no attempt until an operator unlocks it")
                    continue
                }
                guard case .ready? = keys[generationID] else {
                    fail(.held, "\(loop) and no verified key arrived within the wait: no attempt")
                    continue
                }
            }
            switch keys[generationID] {
            case .ready(let ak)?:
                do {
                    let pins = try verifiedPINs.pins(ak: ak, drive: drive, generationID: generationID, store: store)
                    ready.append((drive, pins, try owner(for: drive.address)))
                } catch let error as ControlError {
                    fail(.failed, error.description)
                } catch {
                    fail(.keyMismatch, "\(error)")
                }
            case .mismatch(let why)?: fail(.keyMismatch, why)
            case .unavailable(let why)?: fail(.keyUnavailable, why)
            case nil: fail(.keyUnavailable, "no key loaded")
            }
        }

        // Look before spending: identity and current lock state, without authenticating.
        let looked: [(Int, DriveOutcome?)] = await withTaskGroup(of: (Int, DriveOutcome?).self) { group in
            for (n, item) in ready.enumerated() {
                group.addTask { (n, await Self.look(locked: locked, drive: item.drive, owner: item.owner)) }
            }
            var out: [(Int, DriveOutcome?)] = []
            for await result in group { out.append(result) }
            return out
        }
        var toAttempt: [(drive: StoredDrive, pins: VerifiedPINs, owner: DriveOwner)] = []
        for (n, early) in looked.sorted(by: { $0.0 < $1.0 }) {
            if let early { outcomes[early.address] = early } else { toAttempt.append(ready[n]) }
        }

        // Every attempt is counted durably before it is made: one transaction for the whole batch.
        let fresh: [StoredDrive]
        let admissions: [Int64: LockoutGuard.Admission]
        do {
            fresh = try store.drives()
            admissions = try lockout.admit(toAttempt.compactMap { item in fresh.first { $0.id == item.drive.id } })
        } catch { throw Self.stateFailure(error) }
        let attempted: [(Int64, LockoutGuard.Admission, String, OpalError?)] = await withTaskGroup(
            of: (Int64, LockoutGuard.Admission, String, OpalError?).self) { group in
            for item in toAttempt {
                guard let id = item.drive.id, let admission = admissions[id] else { continue }
                guard case .admitted = admission else {
                    group.addTask { (id, admission, item.drive.address, nil) }
                    continue
                }
                let pins = item.pins
                group.addTask {
                    do {
                        try await item.owner.withDrive { (opal) throws(OpalError) in
                            try opal.setLocked(locked, range: 0, as: .admin(1), pin: pins.admin1)
                        }
                        return (id, admission, item.drive.address, nil)
                    } catch let error as OpalError {
                        return (id, admission, item.drive.address, error)
                    } catch {
                        return (id, admission, item.drive.address,
                                OpalError(.invalidState, device: item.drive.address, operation: operation, "\(error)"))
                    }
                }
            }
            var out: [(Int64, LockoutGuard.Admission, String, OpalError?)] = []
            for await result in group { out.append(result) }
            return out
        }
        for (_, admission, address, error) in attempted {
            switch admission {
            case .guarded(let reason):
                outcomes[address] = DriveOutcome(address: address, result: .guarded, detail: reason)
            case .admitted:
                if let error {
                    outcomes[address] = DriveOutcome(address: address, result: JournaledRun.result(of: error),
                                                     detail: error.description, attempts: 1)
                } else {
                    outcomes[address] = DriveOutcome(address: address, result: locked ? .locked : .unlocked, attempts: 1)
                }
            }
        }
        let ordered = drives.compactMap { outcomes[$0.address] }
        // The attempts' settlement and the audit entry share one transaction (one fsync).
        let allDone = !ordered.isEmpty && ordered.allSatisfy(\.succeeded)
        let audited = auditEntry(boot ? "unlock --boot" : operation, target: drives.map(\.address).joined(separator: " "),
                                 outcome: allDone ? "done" : ordered.map { "\($0.address) \($0.result.rawValue)" }.joined(separator: ", "))
        do { try lockout.settle(attempted.map { (id: $0.0, admission: $0.1, error: $0.3) }, audit: audited) } catch {
            throw Self.stateFailure(error)
        }
        recordFaults(store, ordered.filter { $0.result == .keyMismatch }.map {
            fault("KeyMismatch", "error", $0.address,
                  action: "the key found does not match the drive's check values: restore the right key (`sedlock keys restore --all`)",
                  detail: $0.detail)
        }, scope: ["KeyMismatch"], objects: Set(ordered.filter { $0.result != .keyUnavailable }.map(\.address)))
        var note = ""
        if held {
            note = "boot-loop guard: the last \(configuration.bootLoopLimit) boots failed to unlock; only drives with verified keys "
                + "and no failed authentication on record were tried"
        }
        var report = ArrayReport(operation: operation, drives: ordered, note: note)
        if traffic.roundTrips > 0 {
            report.keyServerRoundTrips = traffic.roundTrips
            report.keyServerConnections = traffic.connectionsOpened
        }
        if let bootID {
            let outcome: BootRecord.Outcome = report.allSucceeded ? .unlocked
                : ordered.contains(where: { $0.result == .held }) ? .held : report.noneSucceeded ? .failed : .partial
            let detail = ordered.filter { !$0.succeeded }.map { "\($0.address): \($0.result.rawValue)" }.joined(separator: "; ")
            let seconds = Double(time.uptimeNanoseconds - began) / 1e9
            try? store.recordBoot(BootRecord(bootID: bootID, startedAt: time.wallTime, outcome: outcome, detail: detail, durationSeconds: seconds))
        } else if !locked, report.allSucceeded, let id = BootIdentity.read(configuration.bootIDPath),
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
            var out: [StoredDrive] = []
            for address in addresses {
                guard let drive = all.first(where: { $0.address == address }) else {
                    throw ControlError(.badRequest, "\(address) is not a drive of the array", fix: "see `sedlock status`")
                }
                out.append(drive)
            }
            return out
        }
    }
}
