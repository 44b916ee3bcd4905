import ControlAPI
import Foundation
import Keys
import LockState
import Opal
import Platform
import TCGStorage

/// The machinery every journaled per-drive change shares (setup, rekey): run steps until the drive
/// is proven, record each step after the drive did it, and make every authentication under the
/// lockout guard. After a crash the next run resumes from the recorded step and first tries the
/// PIN the drive most likely holds, so recovery costs at most one failed authentication per drive.
struct JournaledRun: Sendable {
    let drive: StoredDrive
    let journalID: Int64
    let store: any StateStore
    let lockout: LockoutGuard
    let time: any TimeSource

    enum Stop: Error {
        case outcome(DriveOutcome.Result, String)
    }

    /// Runs `advance` from `start` until the drive is proven; never throws, the outcome says what happened.
    func run(from start: JournalDriveStep.Step, done: DriveOutcome.Result,
             _ advance: (JournalDriveStep.Step, inout Int) throws(Stop) -> JournalDriveStep.Step) -> DriveOutcome {
        var attempts = 0
        var step = start
        do {
            while step != .proven {
                let next = try advance(step, &attempts)
                try record(next)
                step = next
            }
            return DriveOutcome(address: drive.address, result: done, attempts: attempts)
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
    func attempt<R>(_ attempts: inout Int, _ body: () throws(OpalError) -> R) throws(Stop) -> R {
        do {
            attempts += 1
            return try lockout.attempt(drive.address, body)
        } catch {
            switch error {
            case .guarded(let reason): attempts -= 1; throw .outcome(.guarded, reason)
            case .drive(let opal): throw .outcome(JournaledRun.result(of: opal), opal.description)
            case .state(let state): throw .outcome(.failed, state.description)
            }
        }
    }

    /// Tries `candidates` in order with `body`; a NOT_AUTHORIZED moves to the next candidate.
    func firstAccepted(_ attempts: inout Int, _ candidates: [Secret],
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
}

/// One drive's part of a journaled setup: own, activate, set PINs, prove.
struct DriveSetupRun: Sendable {
    let journaled: JournaledRun
    let startStep: JournalDriveStep.Step
    let pins: VerifiedPINs
    /// The drive's current PIN when it is being adopted (proven by the operator's PIN file).
    let adoptionPIN: Secret?
    /// True when an earlier run may have changed the drive without recording it.
    let resuming: Bool

    typealias Stop = JournaledRun.Stop

    func run(_ opal: OpalDrive) -> DriveOutcome {
        journaled.run(from: startStep, done: adoptionPIN == nil ? .setUp : .adopted) { (step, attempts) throws(Stop) in
            try advance(from: step, opal, attempts: &attempts)
        }
    }

    private func attempt<R>(_ attempts: inout Int, _ body: () throws(OpalError) -> R) throws(Stop) -> R {
        try journaled.attempt(&attempts, body)
    }

    private func firstAccepted(_ attempts: inout Int, _ candidates: [Secret],
                               _ body: (Secret) throws(OpalError) -> Void) throws(Stop) -> Secret {
        try journaled.firstAccepted(&attempts, candidates, body)
    }

    private func advance(from step: JournalDriveStep.Step, _ opal: OpalDrive,
                         attempts: inout Int) throws(Stop) -> JournalDriveStep.Step {
        switch step {
        case .pending:
            let owned: Bool?
            do { owned = try OpalDrive.readDiscovery(opal.transport).blockSID?.sidValueState } catch {
                throw .outcome(JournaledRun.result(of: error), error.description)
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
            do { lifeCycle = try opal.lockingSPLifeCycle() } catch { throw .outcome(JournaledRun.result(of: error), error.description) }
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
            if let admin = tries.first(where: { $0.authority == "Admin1" }), admin.tryLimit > 0,
               var updated = try? journaled.store.drive(address: journaled.drive.address) {
                updated.tryLimit = Int(clamping: admin.tryLimit)
                try? journaled.store.updateDrive(updated)
            }
            return .proven
        case .proven:
            return .proven
        case .sidSet, .admin1Set:
            throw .outcome(.failed, "the setup journal holds a rekey step (\(step.rawValue)); the state is inconsistent")
        }
    }
}
