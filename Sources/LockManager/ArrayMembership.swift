import ControlAPI
import Foundation
import Keys
import LockState
import Opal
import Platform

extension LockManager {
    /// Adds a drive to a set-up array: it joins the active key generation through the same
    /// journaled steps as setup (so a crash is finished by `sedlock setup`).
    public func arrayAdd(_ request: ArrayAddRequest, adoptionPassword: Secret? = nil) async throws(ControlError) -> ArrayReport {
        let store = try openState(.write)
        let drives: [StoredDrive]
        let generations: [StoredKeyGeneration]
        do {
            if let busy = try store.pendingJournals().first {
                throw ControlError(.badRequest, "a \(busy.kind.rawValue) is unfinished", fix: "finish it first (`sedlock \(busy.kind.rawValue)`)")
            }
            drives = try store.drives()
            generations = try store.generations()
        } catch {
            throw ControlError(error)
        }
        guard let active = generations.first(where: { $0.state == .active }), let activeID = active.id else {
            throw ControlError(.badRequest, "the array is not set up", fix: "run `sedlock setup` first")
        }
        guard !drives.contains(where: { $0.address == request.address }) else {
            throw ControlError(.badRequest, "\(request.address) is already a drive of the array")
        }
        try Self.validate(request.adoption, password: adoptionPassword)
        let newDrives = try await newDriveRecords([request.address], adoption: request.adoption,
                                                  allowUnencrypted: request.allowUnencrypted == true, existing: drives, store: store)
        // Keys first: the active key must be in hand and proven before the drive is touched.
        let keys = try loadKeys(generationIDs: [activeID], drives: drives, store: store)
        guard case .ready(let ak)? = keys[activeID] else {
            throw ControlError(.held, "the array's key is not available, so the drive was not touched: \(keys[activeID]?.reason ?? "no key")",
                               fix: "check `sedlock keyserver status` (or the key file), then add it again")
        }
        if request.dryRun == true {
            return try plan("array add", newDrives, joining: "key \(active.keyID)", store: store,
                            note: "dry run: the array's key was fetched and proven; nothing was changed and nothing presented to the drive")
        }
        let journal = try beginJournal(.setup, operation: "array add", target: request.address, from: nil, generation: active,
                                       newDrives: newDrives, material: ak, store: store, started: "started")
        let provider = KeyProviderKind(rawValue: active.provider) ?? .local
        return try await runSetup(journal, store: store,
                                  request: SetupRequest(drives: [request.address], provider: provider, adoption: request.adoption),
                                  adoptionPassword: adoptionPassword, resuming: false)
    }

    /// Takes a drive out of the array. With `revert`, first returns it to factory state as SID
    /// (its data is gone); without, it keeps the PINs of its key generation.
    public func arrayRemove(address: String, revert: Bool, dryRun: Bool = false) async throws(ControlError) -> ArrayReport {
        let store = try openState(.write)
        let drive: StoredDrive
        do {
            if let busy = try store.pendingJournals().first {
                throw ControlError(.badRequest, "a \(busy.kind.rawValue) is unfinished", fix: "finish it first (`sedlock \(busy.kind.rawValue)`)")
            }
            guard let found = try store.drive(address: address) else {
                throw ControlError(.badRequest, "\(address) is not a drive of the array")
            }
            drive = found
        } catch {
            throw ControlError(error)
        }
        if dryRun {
            if revert {
                let plan = try eraseDryRun([drive], method: .revert, store: store)
                return ArrayReport(operation: "array remove --revert --dry-run", drives: plan.drives, note: plan.note)
            }
            let keyID = (try? store.generations())?.first { $0.id == drive.generationID }?.keyID ?? "none"
            return ArrayReport(operation: "array remove --dry-run", drives: [
                DriveOutcome(address: address, result: .wouldChange,
                             detail: "would leave the array keeping its PINs from key \(keyID) (its check values kept, for `sedlock array add` to take it back)"),
            ], note: "dry run: nothing was changed and nothing presented to a drive")
        }
        if revert {
            let report = try await erase(EraseRequest(drives: [address], method: .revert), psid: nil)
            return ArrayReport(operation: "array remove", drives: report.drives, note: report.note)
        }
        do { try store.removeDrive(address: address, keepingPINs: true, at: time.wallTime) } catch { throw ControlError(error) }
        let keyID = (try? store.generations())?.first { $0.id == drive.generationID }?.keyID ?? "none"
        audit(store, "array remove", target: address, outcome: "removed, PINs kept (key \(keyID))")
        return ArrayReport(operation: "array remove", drives: [
            DriveOutcome(address: address, result: .removed,
                         detail: "the drive keeps its PINs from key \(keyID); `sedlock array add` takes it back with them while that key is kept"),
        ])
    }

    /// Erases drives: crypto-erase of the global range (the drive stays in the array), or a
    /// revert as SID or with the PSID (the drive leaves the array in factory state). Keys first,
    /// verified PINs only, every attempt under the lockout guard.
    public func erase(_ request: EraseRequest, psid: Secret?) async throws(ControlError) -> ArrayReport {
        guard !request.drives.isEmpty else { throw ControlError(.badRequest, "name the drives to erase") }
        if request.method == .psid {
            guard request.drives.count == 1, psid != nil else {
                throw ControlError(.badRequest, "a PSID revert takes one drive and the PSID printed on its label")
            }
        }
        let store = try openState(.write)
        let drives = try select(.some(request.drives), from: try self.drives(store))
        let lockout = lockoutGuard(store)
        let method = request.method
        if request.dryRun == true { return try eraseDryRun(drives, method: method, store: store) }
        let change = ArrayChange(
            operation: method == .release ? "release --keep-data" : "erase --\(method.rawValue)",
            auditTarget: request.drives.joined(separator: " "),
            generations: method == .psid ? [] : Set(drives.compactMap(\.generationID)),
            work: { (keys) throws(ControlError) in
                drives.map { drive in
                    var pins: VerifiedPINs?
                    if method != .psid {
                        guard let generationID = drive.generationID, case .ready(let ak)? = keys[generationID] else {
                            return .decided(DriveOutcome(address: drive.address, result: .keyUnavailable, detail: "no verified key for this drive"))
                        }
                        pins = try? VerifiedPINs.verify(ak: ak, drive: drive, generationID: generationID, store: store)
                        if pins == nil {
                            return .decided(DriveOutcome(address: drive.address, result: .keyMismatch, detail: "the key does not match the drive"))
                        }
                    }
                    let verified = pins
                    return .run(drive) { opal in
                        Self.erase(drive, method: method, pins: verified, psid: psid, opal: opal, lockout: lockout)
                    }
                }
            },
            finish: { report in
                // A reverted or released drive is in factory state: it is no longer part of the array.
                for outcome in report.drives where outcome.result == .reverted || outcome.result == .released {
                    try? store.removeDrive(address: outcome.address, keepingPINs: false, at: self.time.wallTime)
                }
                return ArrayReport(operation: method == .release ? "release" : "erase", drives: report.drives,
                                   note: method == .release && report.drives.contains { $0.result == .released }
                                       ? "released drives are unowned and unlocked: their data is readable by anyone who has them" : "")
            })
        return try await run(change, store: store)
    }

    /// What an erase would do to each drive: its key fetched and its PINs proven (a PSID is not
    /// tried: that would spend one of its tries); nothing presented to a drive.
    private func eraseDryRun(_ drives: [StoredDrive], method: EraseRequest.Method, store: any StateStore) throws(ControlError) -> ArrayReport {
        let keys = method == .psid ? [:] : try loadKeys(generationIDs: Set(drives.compactMap(\.generationID)), drives: drives, store: store)
        let what = switch method {
        case .crypto: "would get a new media key for its global range: its data gone for good, the drive kept in the array"
        case .revert: "would be reverted as SID to factory state: all its data gone, the drive out of the array"
        case .psid: "would be reverted with the PSID to factory state: all its data gone, the drive out of the array (the PSID itself is not tried)"
        case .release: "would be returned to an unowned state with its data, readable by anyone who has it, and leave the array"
        }
        let outcomes = drives.map { drive in
            guard method != .psid else { return DriveOutcome(address: drive.address, result: .wouldChange, detail: what) }
            guard let generationID = drive.generationID, case .ready(let ak)? = keys[generationID] else {
                return DriveOutcome(address: drive.address, result: .keyUnavailable, detail: "no verified key for this drive")
            }
            guard (try? VerifiedPINs.verify(ak: ak, drive: drive, generationID: generationID, store: store)) != nil else {
                return DriveOutcome(address: drive.address, result: .keyMismatch, detail: "the key does not match the drive")
            }
            return DriveOutcome(address: drive.address, result: .wouldChange, detail: what)
        }
        return ArrayReport(operation: (method == .release ? "release" : "erase --\(method.rawValue)") + " --dry-run", drives: outcomes,
                           note: "dry run: nothing was changed and nothing presented to a drive")
    }

    /// One drive's erase, under the lockout guard.
    private static func erase(_ drive: StoredDrive, method: EraseRequest.Method, pins: VerifiedPINs?, psid: Secret?,
                              opal: OpalDrive, lockout: LockoutGuard) -> DriveOutcome {
        do throws(LockoutGuard.Failure) {
            switch method {
            case .crypto:
                guard let pins else { return DriveOutcome(address: drive.address, result: .keyMismatch) }
                try lockout.attempt(drive.address) { () throws(OpalError) in
                    try opal.eraseRange(0, adminPIN: pins.admin1, erasePIN: pins.user1)
                }
                return DriveOutcome(address: drive.address, result: .erased, attempts: 1)
            case .revert:
                guard let pins else { return DriveOutcome(address: drive.address, result: .keyMismatch) }
                try lockout.attempt(drive.address) { () throws(OpalError) in try opal.revert(as: .sid, pin: pins.sid) }
                return DriveOutcome(address: drive.address, result: .reverted, attempts: 1)
            case .release:
                guard let pins else { return DriveOutcome(address: drive.address, result: .keyMismatch) }
                try lockout.attempt(drive.address) { () throws(OpalError) in
                    try opal.revertKeepingGlobalRange(sidPIN: pins.sid, adminPIN: pins.admin1)
                }
                return DriveOutcome(address: drive.address, result: .released, detail: "unowned, locking off, data kept", attempts: 1)
            case .psid:
                guard let psid else { return DriveOutcome(address: drive.address, result: .failed, detail: "no PSID") }
                try lockout.attempt(drive.address) { () throws(OpalError) in try opal.revert(as: .psid, pin: psid) }
                return DriveOutcome(address: drive.address, result: .reverted, attempts: 1)
            }
        } catch {
            switch error {
            case .guarded(let reason): return DriveOutcome(address: drive.address, result: .guarded, detail: reason)
            case .drive(let failure):
                return DriveOutcome(address: drive.address, result: JournaledRun.result(of: failure), detail: failure.description, attempts: 1)
            case .state(let state): return DriveOutcome(address: drive.address, result: .failed, detail: state.description)
            }
        }
    }
}
