import ControlAPI
import Keys
import LockState
import Opal

/// One drive's part of a journaled rekey: SID, then Admin1, then User1 move to the new
/// generation's PINs, then a fresh session proves them. Each authority's change authenticates
/// with the PIN it most likely holds (the old one, or after a crash at that very step the new
/// one), so a crash anywhere costs at most one failed authentication.
struct DriveRekeyRun: Sendable {
    let journaled: JournaledRun
    let startStep: JournalDriveStep.Step
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
        case .pending:
            _ = try journaled.firstAccepted(&attempts, resuming ? [old.sid, new.sid] : [old.sid]) { (pin) throws(OpalError) in
                try opal.setPIN(of: .sid, newPIN: new.sid, authorizer: .sid, authorizerPIN: pin)
            }
            return .sidSet
        case .sidSet:
            _ = try journaled.firstAccepted(&attempts, resuming ? [old.admin1, new.admin1] : [old.admin1]) { (pin) throws(OpalError) in
                try opal.setPIN(of: .admin(1), newPIN: new.admin1, authorizer: .admin(1), authorizerPIN: pin)
            }
            return .admin1Set
        case .admin1Set:
            try journaled.attempt(&attempts) { () throws(OpalError) in
                try opal.setPIN(of: .user(1), newPIN: new.user1, authorizer: .admin(1), authorizerPIN: new.admin1)
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
}
