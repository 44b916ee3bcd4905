import ControlAPI
import Keys
import LockState
import Opal

/// One drive's part of a journaled rekey: SID, then Admin1, then User1 move to the new
/// generation's PINs (User1's set by Admin1 on Opal, by itself on Enterprise), then a fresh session proves them. Once the authorizer is authenticated and
/// before each PIN change is sent, the journal records that it goes; a rerun after a crash at
/// that very step tries the new PIN first and the old one first otherwise, so two crashes in a
/// row still cost at most one failed authentication.
struct DriveRekeyRun: Sendable {
    let journaled: JournaledRun
    let startStep: JournalDriveStep.Step
    /// An earlier run sent the start step's PIN change and did not learn its outcome.
    let startPINChangeSent: Bool
    let old: VerifiedPINs
    let new: VerifiedPINs
    let resuming: Bool

    typealias Stop = JournaledRun.Stop

    func run(_ opal: OpalDrive) -> DriveOutcome {
        journaled.run(from: startStep, done: .rekeyed) { (step, attempts) throws(Stop) in
            try advance(from: step, opal, attempts: &attempts)
        }
    }

    private func advance(from step: JournalDriveStep.Step, _ opal: OpalDrive,
                         attempts: inout Int) throws(Stop) -> JournalDriveStep.Step {
        switch step {
        case .pending, .unknown:
            _ = try journaled.firstAccepted(&attempts, candidates(old: old.sid, new: new.sid, at: step)) { (pin) throws(OpalError) in
                try opal.setPIN(of: .sid, newPIN: new.sid, authorizer: .sid, authorizerPIN: pin) { () throws(OpalError) in
                    try journaled.pinChangeGoes(at: step)
                }
            }
            return .sidSet
        case .sidSet:
            _ = try journaled.firstAccepted(&attempts, candidates(old: old.admin1, new: new.admin1, at: step)) { (pin) throws(OpalError) in
                try opal.setPIN(of: .admin(1), newPIN: new.admin1, authorizer: .admin(1), authorizerPIN: pin) { () throws(OpalError) in
                    try journaled.pinChangeGoes(at: step)
                }
            }
            return .admin1Set
        case .admin1Set:
            guard opal.userChangesOwnPIN else {
                try journaled.attempt(&attempts) { () throws(OpalError) in
                    try opal.setPIN(of: .user(1), newPIN: new.user1, authorizer: .admin(1), authorizerPIN: new.admin1)
                }
                return .pinsSet
            }
            // User1 authorizes its own change (Enterprise's EraseMaster): journaled as SID's and Admin1's are.
            _ = try journaled.firstAccepted(&attempts, candidates(old: old.user1, new: new.user1, at: step)) { (pin) throws(OpalError) in
                try opal.setPIN(of: .user(1), newPIN: new.user1, authorizer: .user(1), authorizerPIN: pin) { () throws(OpalError) in
                    try journaled.pinChangeGoes(at: step)
                }
            }
            return .pinsSet
        case .pinsSet:
            try journaled.attempt(&attempts) { () throws(OpalError) in try opal.verifyPIN(.sid, pin: new.sid) }
            try journaled.attempt(&attempts) { () throws(OpalError) in try opal.verifyPIN(.admin(1), pin: new.admin1) }
            return .proven
        case .proven:
            return .proven
        case .owned, .activated:
            throw .outcome(.failed, "the rekey journal holds a setup step (\(step.rawValue)); the state is inconsistent")
        }
    }

    /// The PINs an authority whose change this step makes may hold, likeliest first: the new one
    /// then the old one when an earlier run sent this very change; else the old one (the change
    /// never left), then the new one for a journal an older sedlock wrote, which did not record
    /// the sending.
    private func candidates(old: Secret, new: Secret, at step: JournalDriveStep.Step) -> [Secret] {
        // A rekey recovered on a new host: each change may have been made; drives that moved
        // all the way are the likelier, so the new PIN first (at most one refusal per drive).
        if startStep == .unknown { return [new, old] }
        guard step == startStep, resuming else { return [old] }  // reached in this run: not sent yet
        return startPINChangeSent ? [new, old] : [old, new]
    }
}
