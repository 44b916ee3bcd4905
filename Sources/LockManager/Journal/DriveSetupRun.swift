import ControlAPI
import Keys
import LockState
import Opal
import TCGStorage

/// One drive's part of a journaled setup: own, activate, set PINs, prove.
struct DriveSetupRun: Sendable {
    let journaled: JournaledRun
    let startStep: JournalDriveStep.Step
    let pins: VerifiedPINs
    /// The drive's current PINs when it is being adopted: the operator's password for every
    /// authority (sedutil's way), or the PINs of the generation a drive taken back still holds.
    let adoption: VerifiedPINs?
    /// True when an earlier run may have changed the drive without recording it.
    let resuming: Bool

    typealias Stop = JournaledRun.Stop

    func run(_ opal: OpalDrive) -> DriveOutcome {
        var factory = false
        let outcome = journaled.run(from: startStep, done: adoption == nil ? .setUp : .adopted) { (step, attempts) throws(Stop) in
            try advance(from: step, opal, attempts: &attempts, factory: &factory)
        }
        guard factory, outcome.result == .adopted else { return outcome }
        return DriveOutcome(address: outcome.address, result: .setUp,
                            detail: "the drive still held its factory MSID (nothing to adopt): set up", attempts: outcome.attempts)
    }

    private func attempt<R>(_ attempts: inout Int, _ body: () throws(OpalError) -> R) throws(Stop) -> R {
        try journaled.attempt(&attempts, body)
    }

    private func firstAccepted(_ attempts: inout Int, _ candidates: [Secret],
                               _ body: (Secret) throws(OpalError) -> Void) throws(Stop) -> Secret {
        try journaled.firstAccepted(&attempts, candidates, body)
    }

    /// `factory` becomes true when the drive's SID turns out to hold the MSID although it was to
    /// be adopted (a drive without Block SID): its other authorities are not tried with the
    /// adopted password either.
    private func advance(from step: JournalDriveStep.Step, _ opal: OpalDrive,
                         attempts: inout Int, factory: inout Bool) throws(Stop) -> JournalDriveStep.Step {
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
            if let adoption { candidates.append(adoption.sid) }
            if owned == nil && !resuming && adoption == nil {
                // No Block SID feature to tell: the MSID is the only PIN a factory drive can have.
                try attempt(&attempts) { () throws(OpalError) in try opal.takeOwnership(newSIDPIN: pins.sid) }
                return .owned
            }
            var msid: Secret?
            if owned == nil && (resuming || adoption != nil) {
                // No Block SID feature (Enterprise drives have none) to tell an owned drive from
                // a factory one: a run cut off before its ownership change took, or a drive the
                // operator believed owned, still holds the MSID.
                do { msid = try opal.readMSID() } catch { throw .outcome(JournaledRun.result(of: error), error.description) }
                if let msid { candidates.append(msid) }
            }
            guard !candidates.isEmpty else {
                throw .outcome(.failed, "the drive is owned by someone else; adopt it with --adopt-pin-file, or revert it")
            }
            let current = try firstAccepted(&attempts, candidates) { (pin) throws(OpalError) in try opal.verifyPIN(.sid, pin: pin) }
            if let msid, current == msid, !resuming { factory = true }
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
            // Admin1 holds the SID PIN right after Opal's activation (an Enterprise BandMaster0
            // its factory MSID); an adopted drive that was already active holds its old password;
            // after a crash past this step, its new PIN.
            let afterActivation: Secret
            do { afterActivation = try opal.lockingAdminPINAfterActivation(sidPIN: pins.sid) } catch {
                throw .outcome(JournaledRun.result(of: error), error.description)
            }
            var candidates: [Secret] = resuming ? [pins.admin1, afterActivation] : [afterActivation]
            if let adoption, !factory { candidates.insert(adoption.admin1, at: resuming ? 2 : 0) }
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
            try setUser1PIN(opal, attempts: &attempts, factory: factory)
            try attempt(&attempts) { () throws(OpalError) in
                try opal.grantRangeControl(range: 0, to: .user(1), adminPIN: pins.admin1)
            }
            return .pinsSet
        case .pinsSet:
            // Prove the new PINs in fresh sessions, and learn the TryLimit the lockout guard keeps clear of.
            try attempt(&attempts) { () throws(OpalError) in try opal.verifyPIN(.sid, pin: pins.sid) }
            let tries = try attempt(&attempts) { () throws(OpalError) in try opal.readTries(as: .admin(1), pin: pins.admin1) }
            if let admin = tries.first(where: { $0.authority == opal.family.name(of: .admin(1)) }), admin.tryLimit > 0,
               var updated = try? journaled.store.drive(address: journaled.drive.address) {
                updated.tryLimit = Int(clamping: admin.tryLimit)
                try? journaled.store.updateDrive(updated)
            }
            return .proven
        case .proven:
            return .proven
        case .sidSet, .admin1Set, .unknown:
            throw .outcome(.failed, "the setup journal holds a rekey step (\(step.rawValue)); the state is inconsistent")
        }
    }

    /// User1's PIN: Opal's Admin1 sets it (and enables User1); a family whose User1 changes its
    /// own PIN (Enterprise's EraseMaster) authenticates with its factory PIN, or after a crash
    /// past this change with the new one.
    private func setUser1PIN(_ opal: OpalDrive, attempts: inout Int, factory foundFactory: Bool) throws(Stop) {
        guard opal.userChangesOwnPIN else {
            try attempt(&attempts) { () throws(OpalError) in
                try opal.setPIN(of: .user(1), newPIN: pins.user1, authorizer: .admin(1), authorizerPIN: pins.admin1)
            }
            return
        }
        let factory: Secret?
        do { factory = try opal.userPINBeforeSetup() } catch { throw .outcome(JournaledRun.result(of: error), error.description) }
        var candidates: [Secret] = resuming ? [pins.user1] : []
        if let factory { candidates.append(factory) }
        if let adoption, !foundFactory { candidates.insert(adoption.user1, at: resuming ? 1 : 0) }
        let current = try firstAccepted(&attempts, candidates) { (pin) throws(OpalError) in try opal.verifyPIN(.user(1), pin: pin) }
        if !(current == pins.user1) {
            try attempt(&attempts) { () throws(OpalError) in
                try opal.setPIN(of: .user(1), newPIN: pins.user1, authorizer: .user(1), authorizerPIN: current)
            }
        }
    }
}
