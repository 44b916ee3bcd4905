import ControlAPI
import Keys
import LockState
import Opal

/// One drive's part of an array operation: an outcome decided without touching the drive, or
/// the work to do on it.
enum DriveWork: Sendable {
    case decided(DriveOutcome)
    case run(StoredDrive, @Sendable (OpalDrive) -> DriveOutcome)

    /// The outcome for a drive whose identity is no longer the one its PINs were made for (a
    /// drive swapped at that address), or nil when it is the right drive. No PIN is ever
    /// presented to another drive.
    static func otherDrive(_ opal: OpalDrive, expected drive: StoredDrive) -> DriveOutcome? {
        guard DrivePIN.driveIdentity(wwn: opal.identity.wwn, serial: opal.identity.serialNumber) != drive.identity else { return nil }
        return DriveOutcome(address: drive.address, result: .failed,
                            detail: "a different drive is at this address now; nothing was presented to it")
    }
}

extension LockManager {
    /// Runs every drive's work in parallel, each through the drive's owner. A drive that cannot
    /// be opened gets its failure as outcome; one whose identity is no longer the one its PINs
    /// were made for gets "a different drive" and its work never runs, so no PIN is ever
    /// presented to another drive. Outcomes come back in address order.
    /// With `operation`, each outcome goes to `LockManager.progress` as it comes.
    func perform(_ work: [DriveWork], operation: String? = nil) async -> [DriveOutcome] {
        let progress = operation.flatMap { _ in Self.progress }
        return await withTaskGroup(of: DriveOutcome.self) { group in
            for item in work {
                switch item {
                case .decided(let outcome):
                    group.addTask { outcome }
                case .run(let drive, let body):
                    let owner: DriveOwner
                    do throws(ControlError) { owner = try self.owner(for: drive.address) } catch {
                        group.addTask { DriveOutcome(address: drive.address, result: .failed, detail: error.description) }
                        continue
                    }
                    group.addTask {
                        do {
                            return try await owner.withDrive { (opal) throws(OpalError) -> DriveOutcome in
                                DriveWork.otherDrive(opal, expected: drive) ?? body(opal)
                            }
                        } catch let error as OpalError {
                            return DriveOutcome(address: drive.address, result: JournaledRun.result(of: error), detail: error.description)
                        } catch {
                            return DriveOutcome(address: drive.address, result: .failed, detail: "\(error)")
                        }
                    }
                }
            }
            var out: [DriveOutcome] = []
            for await outcome in group {
                out.append(outcome)
                if let progress, let operation {
                    progress.report(DriveProgress(operation: operation, drive: outcome, done: out.count, total: work.count))
                }
            }
            return out.sorted { $0.address < $1.address }
        }
    }
}
