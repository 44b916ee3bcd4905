import ControlAPI
import Foundation
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
        let store = try openState(.write)
        let all: [StoredDrive]
        do { all = try store.drives() } catch { throw Self.stateFailure(error) }
        let drives = try select(selection, from: all)

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

        // Keys first: nothing below touches a drive until its key is in hand and proven.
        let deadline = Deadline.after(seconds: waitSeconds, time: time)
        let generationIDs = Set(drives.compactMap(\.generationID))
        let keys = try loadKeys(generationIDs: generationIDs, drives: all, store: store, deadline: deadline)
        let lockout = lockoutGuard(store)
        let outcomes: [DriveOutcome] = await withTaskGroup(of: DriveOutcome.self) { group in
            for drive in drives {
                if held {
                    group.addTask {
                        DriveOutcome(address: drive.address, result: .held,
                                     detail: "the last \(self.configuration.bootLoopLimit) boots failed to unlock; this boot makes no attempt")
                    }
                    continue
                }
                guard let generationID = drive.generationID else {
                    group.addTask { DriveOutcome(address: drive.address, result: .failed, detail: "setup has not finished on this drive") }
                    continue
                }
                if let reason = drive.guardReason {
                    group.addTask { DriveOutcome(address: drive.address, result: .guarded, detail: reason) }
                    continue
                }
                let pins: VerifiedPINs
                switch keys[generationID] {
                case .ready(let ak)?:
                    do { pins = try VerifiedPINs.verify(ak: ak, drive: drive, generationID: generationID, store: store) } catch {
                        group.addTask { DriveOutcome(address: drive.address, result: .keyMismatch, detail: "\(error)") }
                        continue
                    }
                case .mismatch(let why)?:
                    group.addTask { DriveOutcome(address: drive.address, result: .keyMismatch, detail: why) }
                    continue
                case .unavailable(let why)?:
                    group.addTask { DriveOutcome(address: drive.address, result: .keyUnavailable, detail: why) }
                    continue
                case nil:
                    group.addTask { DriveOutcome(address: drive.address, result: .keyUnavailable, detail: "no key loaded") }
                    continue
                }
                let owner: DriveOwner
                do throws(ControlError) { owner = try self.owner(for: drive.address) } catch {
                    group.addTask { DriveOutcome(address: drive.address, result: .failed, detail: error.description) }
                    continue
                }
                group.addTask {
                    await Self.setLocked(locked, drive: drive, pins: pins, owner: owner, lockout: lockout)
                }
            }
            var out: [DriveOutcome] = []
            for await outcome in group { out.append(outcome) }
            return out.sorted { $0.address < $1.address }
        }
        var note = ""
        if held { note = "boot-loop guard: held, no authentication attempted" }
        let report = ArrayReport(operation: operation, drives: outcomes, note: note)
        if let bootID {
            let outcome: BootRecord.Outcome = held ? .held : report.allSucceeded ? .unlocked : report.noneSucceeded ? .failed : .partial
            let detail = outcomes.filter { !$0.succeeded }.map { "\($0.address): \($0.result.rawValue)" }.joined(separator: "; ")
            try? store.recordBoot(BootRecord(bootID: bootID, startedAt: time.wallTime, outcome: outcome, detail: detail))
        } else if !locked, report.allSucceeded, let id = BootIdentity.read(configuration.bootIDPath),
                  (try? store.recentBoots(limit: 1).first?.bootID) == id {
            // An operator's unlock that succeeds ends a hold: this boot counts as unlocked.
            try? store.recordBoot(BootRecord(bootID: id, startedAt: time.wallTime, outcome: .unlocked, detail: "by \(configuration.actor)"))
        }
        audit(store, boot ? "unlock --boot" : operation, target: drives.map(\.address).joined(separator: " "),
              outcome: report.allSucceeded ? "done" : outcomes.map { "\($0.address) \($0.result.rawValue)" }.joined(separator: ", "))
        return report
    }

    private static func setLocked(_ locked: Bool, drive: StoredDrive, pins: VerifiedPINs, owner: DriveOwner,
                                  lockout: LockoutGuard) async -> DriveOutcome {
        do {
            return try await owner.withDrive { (opal) throws(OpalError) -> DriveOutcome in
                // Never present a PIN to a drive other than the one it was made for.
                guard DrivePIN.driveIdentity(wwn: opal.identity.wwn, serial: opal.identity.serialNumber) == drive.identity else {
                    return DriveOutcome(address: drive.address, result: .failed,
                                        detail: "a different drive is at this address now; nothing was presented to it")
                }
                let done: DriveOutcome.Result = locked ? .locked : .unlocked
                // Already in the asked state (Level 0 Discovery, no authentication): nothing to spend.
                if let isLocked = try OpalDrive.readDiscovery(opal.transport).locking?.locked, isLocked == locked {
                    return DriveOutcome(address: drive.address, result: done, detail: "already \(done.rawValue)")
                }
                do throws(LockoutGuard.Failure) {
                    try lockout.attempt(drive.address) { () throws(OpalError) in
                        try opal.setLocked(locked, range: 0, as: .admin(1), pin: pins.admin1)
                    }
                    return DriveOutcome(address: drive.address, result: done, attempts: 1)
                } catch {
                    switch error {
                    case .guarded(let reason): return DriveOutcome(address: drive.address, result: .guarded, detail: reason)
                    case .drive(let failure):
                        return DriveOutcome(address: drive.address, result: DriveSetupRun.result(of: failure),
                                            detail: failure.description, attempts: 1)
                    case .state(let state): return DriveOutcome(address: drive.address, result: .failed, detail: state.description)
                    }
                }
            }
        } catch let error as OpalError {
            return DriveOutcome(address: drive.address, result: DriveSetupRun.result(of: error), detail: error.description)
        } catch {
            return DriveOutcome(address: drive.address, result: .failed, detail: "\(error)")
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
