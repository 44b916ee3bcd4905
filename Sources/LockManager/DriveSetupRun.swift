import ControlAPI
import Foundation
import Keys
import LockState
import Opal
import Platform
import TCGStorage

/// One drive's part of a journaled setup, as a state machine over the journal's steps. Each step
/// is recorded after the drive did it; after a crash the next run resumes from the recorded step
/// and first tries the PIN the drive most likely holds, so recovery costs at most one failed
/// authentication per drive.
struct DriveSetupRun: Sendable {
    let drive: StoredDrive
    let journalID: Int64
    let startStep: JournalDriveStep.Step
    let pins: VerifiedPINs
    /// The drive's current PIN when it is being adopted (proven by the operator's PIN file).
    let adoptionPIN: Secret?
    /// True when an earlier run may have changed the drive without recording it.
    let resuming: Bool
    let store: any StateStore
    let lockout: LockoutGuard
    let time: any TimeSource

    enum Stop: Error {
        case outcome(DriveOutcome.Result, String)
    }

    /// Runs the remaining steps on `opal`; never throws, the outcome says what happened.
    func run(_ opal: OpalDrive) -> DriveOutcome {
        var attempts = 0
        var step = startStep
        do {
            while step != .proven {
                let next = try advance(from: step, opal, attempts: &attempts)
                try record(next)
                step = next
            }
            return DriveOutcome(address: drive.address, result: adoptionPIN == nil ? .setUp : .adopted, attempts: attempts)
        } catch {
            switch error {
            case .outcome(let result, let detail):
                return DriveOutcome(address: drive.address, result: result, detail: "stopped at step \(step.rawValue): \(detail)",
                                    attempts: attempts)
            }
        }
    }

    private func record(_ step: JournalDriveStep.Step) throws(Stop) {
        guard let driveID = drive.id else { throw .outcome(.failed, "drive without id") }
        do { try store.setJournalStep(JournalDriveStep(journalID: journalID, driveID: driveID, step: step, updatedAt: time.wallTime)) } catch {
            throw .outcome(.failed, "cannot record progress: \(error)")
        }
    }

    /// One authenticated operation under the lockout guard.
    private func attempt<R>(_ attempts: inout Int, _ body: () throws(OpalError) -> R) throws(Stop) -> R {
        do {
            attempts += 1
            return try lockout.attempt(drive.address, body)
        } catch {
            switch error {
            case .guarded(let reason): attempts -= 1; throw .outcome(.guarded, reason)
            case .drive(let opal): throw .outcome(Self.result(of: opal), opal.description)
            case .state(let state): throw .outcome(.failed, state.description)
            }
        }
    }

    /// Tries `candidates` in order with `body`; a NOT_AUTHORIZED moves to the next candidate.
    private func firstAccepted(_ attempts: inout Int, _ candidates: [Secret],
                               _ body: (Secret) throws(OpalError) -> Void) throws(Stop) -> Secret {
        var last: Stop?
        for pin in candidates {
            do {
                try attempt(&attempts) { () throws(OpalError) in try body(pin) }
                return pin
            } catch {
                if case .outcome(.notAuthorized, _) = error { last = error; continue }
                throw error
            }
        }
        throw last ?? .outcome(.failed, "no PIN to try")
    }

    static func result(of error: OpalError) -> DriveOutcome.Result {
        switch error.code {
        case .notAuthorized: return .notAuthorized
        case .authorityLockedOut: return .lockedOut
        case .transport, .timedOut: return .unreachable
        default: return .failed
        }
    }

    private func advance(from step: JournalDriveStep.Step, _ opal: OpalDrive,
                         attempts: inout Int) throws(Stop) -> JournalDriveStep.Step {
        switch step {
        case .pending:
            let owned: Bool?
            do { owned = try OpalDrive.readDiscovery(opal.transport).blockSID?.sidValueState } catch {
                throw .outcome(Self.result(of: error), error.description)
            }
            if owned == false {
                try attempt(&attempts) { () throws(OpalError) in try opal.takeOwnership(newSIDPIN: pins.sid) }
                return .owned
            }
            // Owned already: by an earlier run of this setup (resuming), or by the tool being adopted from.
            var candidates: [Secret] = resuming ? [pins.sid] : []
            if let adoptionPIN { candidates.append(adoptionPIN) }
            if owned == nil && !resuming && adoptionPIN == nil {
                // No Block SID feature to tell: the MSID is the only PIN a factory drive can have.
                try attempt(&attempts) { () throws(OpalError) in try opal.takeOwnership(newSIDPIN: pins.sid) }
                return .owned
            }
            guard !candidates.isEmpty else {
                throw .outcome(.failed, "the drive is owned by someone else; adopt it with --adopt-pin-file, or revert it")
            }
            let current = try firstAccepted(&attempts, candidates) { (pin) throws(OpalError) in try opal.verifyPIN(.sid, pin: pin) }
            if !(current == pins.sid) {
                try attempt(&attempts) { () throws(OpalError) in
                    try opal.setPIN(of: .sid, newPIN: pins.sid, authorizer: .sid, authorizerPIN: current)
                }
            }
            return .owned
        case .owned:
            let lifeCycle: LifeCycleState
            do { lifeCycle = try opal.lockingSPLifeCycle() } catch { throw .outcome(Self.result(of: error), error.description) }
            if lifeCycle == .manufacturedInactive {
                try attempt(&attempts) { () throws(OpalError) in try opal.activateLockingSP(sidPIN: pins.sid) }
            }
            return .activated
        case .activated:
            // Admin1 holds the SID PIN right after activation; an adopted drive that was already
            // active holds its old password; after a crash past this step, its new PIN.
            var candidates: [Secret] = resuming ? [pins.admin1, pins.sid] : [pins.sid]
            if let adoptionPIN { candidates.insert(adoptionPIN, at: resuming ? 2 : 0) }
            let current = try firstAccepted(&attempts, candidates) { (pin) throws(OpalError) in
                try opal.verifyPIN(.admin(1), pin: pin)
            }
            if !(current == pins.admin1) {
                try attempt(&attempts) { () throws(OpalError) in
                    try opal.setPIN(of: .admin(1), newPIN: pins.admin1, authorizer: .admin(1), authorizerPIN: current)
                }
            }
            try attempt(&attempts) { () throws(OpalError) in
                try opal.configureRange(0, start: nil, length: nil, readLockEnabled: true, writeLockEnabled: true,
                                        lockOnReset: [.powerCycle], adminPIN: pins.admin1)
            }
            try attempt(&attempts) { () throws(OpalError) in
                try opal.setPIN(of: .user(1), newPIN: pins.user1, authorizer: .admin(1), authorizerPIN: pins.admin1)
            }
            try attempt(&attempts) { () throws(OpalError) in
                try opal.grantRangeControl(range: 0, to: .user(1), adminPIN: pins.admin1)
            }
            return .pinsSet
        case .pinsSet:
            // Prove the new PINs in fresh sessions, and learn the TryLimit the lockout guard keeps clear of.
            try attempt(&attempts) { () throws(OpalError) in try opal.verifyPIN(.sid, pin: pins.sid) }
            let tries = try attempt(&attempts) { () throws(OpalError) in try opal.readTries(as: .admin(1), pin: pins.admin1) }
            if let admin = tries.first(where: { $0.authority == "Admin1" }), admin.tryLimit > 0, var updated = try? store.drive(address: drive.address) {
                updated.tryLimit = Int(clamping: admin.tryLimit)
                try? store.updateDrive(updated)
            }
            return .proven
        case .proven:
            return .proven
        }
    }
}
