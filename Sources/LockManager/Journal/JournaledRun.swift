import ControlAPI
import Keys
import LockState
import Opal
import Platform

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

    private func record(_ step: JournalDriveStep.Step, pinChangeSent: Bool = false) throws(Stop) {
        guard let driveID = drive.id else { throw .outcome(.failed, "drive without id") }
        do {
            try store.setJournalStep(JournalDriveStep(journalID: journalID, driveID: driveID, step: step, updatedAt: time.wallTime,
                                                      pinChangeSent: pinChangeSent))
        } catch {
            throw .outcome(.failed, "cannot record progress: \(error)")
        }
    }

    /// Records, durably, that `step`'s PIN change is about to go to the drive (its authorizer
    /// authenticated): a rerun after a crash then tries the PIN it sets first. A failure to
    /// record sends nothing.
    func pinChangeGoes(at step: JournalDriveStep.Step) throws(OpalError) {
        do throws(Stop) { try record(step, pinChangeSent: true) } catch {
            guard case .outcome(_, let why) = error else { return }
            throw OpalError(.invalidState, device: drive.address, operation: "record a PIN change", why)
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
