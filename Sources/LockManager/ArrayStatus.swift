import ControlAPI
import Foundation
import LockState
import Opal

extension LockManager {
    /// The array at a glance: per drive locked state (Level 0 Discovery, no authentication),
    /// generation, guard counters; key generations; recent boots.
    public func status() async throws(ControlError) -> StatusReport {
        try await status(testingKeyServers: true)
    }

    /// The drive monitor's look: every drive's reachability and locked state, without testing
    /// key servers; raises `DriveUnreachable` for a drive that does not answer, clears it once it
    /// does; raises `ArrayLocked` while a drive is locked that nobody locked on purpose (it
    /// relocked, or the boot was held), clears it once none is.
    public func checkDrives() async throws(ControlError) -> StatusReport {
        let report = try await status(testingKeyServers: false)
        let store = try openState(.write)
        recordFaults(store, report.drives.compactMap { drive in
            drive.error.map {
                fault("DriveUnreachable", "error", drive.address,
                      action: "check the drive's cabling, power and controller; `sedlock status` shows when it answers again",
                      detail: $0)
            }
        }, scope: ["DriveUnreachable"], objects: Set(report.drives.map(\.address)))
        let relocked = report.drives.filter(\.relocked).map(\.address)
        recordFaults(store, relocked.isEmpty ? [] : [
            fault("ArrayLocked", "error", "array",
                  action: "sedlockd unlocks these drives again as soon as their keys are in hand; `sedlock keyserver status` "
                      + "and `sedlock faults` say what is missing, `sedlock unlock --all` tries at once",
                  detail: "\(relocked.count) of \(report.drives.count) drive(s) locked without an operator's lock: "
                      + relocked.prefix(5).joined(separator: ", ") + (relocked.count > 5 ? " …" : "")),
        ], scope: ["ArrayLocked"], objects: ["array"])
        return report
    }

    func status(testingKeyServers: Bool) async throws(ControlError) -> StatusReport {
        // A host not set up yet has no state: that is an answer ("no array"), not an error.
        if !FileManager.default.fileExists(atPath: configuration.stateDirectory.databasePath) {
            return StatusReport(drives: [], generations: [], recentBoots: [])
        }
        let store = try openState(.read)
        let drives: [StoredDrive]
        let generations: [StoredKeyGeneration]
        let boots: [BootRecord]
        let servers: [StoredKeyServer]
        let faults: [StoredFault]
        do {
            drives = try store.drives()
            generations = try store.generations()
            boots = try store.recentBoots(limit: 5)
            servers = try store.keyServers()
            faults = try store.openFaults()
        } catch { throw ControlError(error) }
        // Each drive's lock state and security subsystem class, from Level 0 Discovery.
        typealias Seen = (locked: Bool?, family: String?, encrypts: Bool)
        let locked: [String: Result<Seen, ControlError>] = await withTaskGroup(of: (String, Result<Seen, ControlError>).self) { group in
            for drive in drives {
                let owner: DriveOwner
                do throws(ControlError) { owner = try self.owner(for: drive.address) } catch {
                    group.addTask { (drive.address, .failure(error)) }
                    continue
                }
                group.addTask {
                    do {
                        let state = try await owner.withDrive { (opal) throws(OpalError) -> Seen in
                            (try OpalDrive.readDiscovery(opal.transport).locking?.locked, opal.opal.kind.name, opal.encryptsMedia)
                        }
                        return (drive.address, .success(state))
                    } catch {
                        return (drive.address, .failure(ControlError(error)))
                    }
                }
            }
            var out: [String: Result<Seen, ControlError>] = [:]
            for await (address, result) in group { out[address] = result }
            return out
        }
        let keyIDs = Dictionary(uniqueKeysWithValues: generations.compactMap { g in g.id.map { ($0, g.keyID) } })
        var report = StatusReport(
            drives: drives.map { drive in
                var entry = StatusReport.Drive(address: drive.address, model: drive.model, serial: drive.serial, locked: nil,
                                               generation: drive.generationID.flatMap { keyIDs[$0] },
                                               failedAuthentications: drive.failedAuthentications, tryLimit: drive.tryLimit,
                                               guarded: drive.guardReason, error: nil)
                entry.lockedOnPurpose = drive.lockedOnPurpose
                switch locked[drive.address] {
                case .success(let seen)?:
                    entry.locked = seen.locked
                    entry.family = seen.family
                    entry.mediaEncryption = seen.encrypts
                case .failure(let error)?: entry.error = error.message
                case nil: break
                }
                return entry
            },
            generations: generations.map {
                StatusReport.Generation(keyID: $0.keyID, tag: $0.tag, state: $0.state.rawValue, provider: $0.provider, createdAt: $0.createdAt)
            },
            recentBoots: boots.map {
                StatusReport.RecordedBoot(bootID: $0.bootID, startedAt: $0.startedAt, outcome: $0.outcome.rawValue, detail: $0.detail,
                                          durationSeconds: $0.durationSeconds)
            },
            keyServers: !testingKeyServers ? servers.map(Self.entry)
                : configuration.readsFromMonitors ? servers.map { keys.health.latest(for: Self.entry($0)) } : servers.map(test),
            faults: faults.map(Self.report))
        // sedlockd's drive monitor looks every interval; a one-shot status looks now.
        if !configuration.readsFromMonitors { _ = try? lookForUnmanagedDrives() }
        report.unmanagedDrives = sightings.unmanaged
        report.lastBoot = boots.first.map { StatusReport.Boot(outcome: $0.outcome.rawValue, at: $0.startedAt, durationSeconds: $0.durationSeconds) }
        return report
    }

    /// Lockout counters per drive and the boot-loop guard's verdict for the next boot.
    public func guardStatus(address: String?) throws(ControlError) -> GuardReport {
        let store = try openState(.read)
        return try guardReport(store, address: address)
    }

    /// Clears a drive's guard and its failure count (an operator who has fixed the cause).
    public func guardReset(address: String) throws(ControlError) -> GuardReport {
        let store = try openState(.write)
        do {
            guard let drive = try store.drive(address: address), let id = drive.id else {
                throw ControlError(.badRequest, "\(address) is not a drive of the array")
            }
            try store.resetGuard(driveID: id)
        } catch {
            throw ControlError(error)
        }
        audit(store, "guard reset", target: address, outcome: "done")
        return try guardReport(store, address: address)
    }

    private func guardReport(_ store: StateDatabase, address: String?) throws(ControlError) -> GuardReport {
        do {
            let lockout = lockoutGuard(store)
            let drives = try store.drives().filter { address == nil || $0.address == address }
            if let address, drives.isEmpty { throw ControlError(.badRequest, "\(address) is not a drive of the array") }
            // What the next boot will see: every boot on record, this one included.
            let failures = try BootLoopGuard(store: store, limit: configuration.bootLoopLimit).consecutiveFailures(before: "")
            return GuardReport(drives: drives.map {
                GuardReport.Drive(address: $0.address, failedAuthentications: $0.failedAuthentications,
                                  limit: lockout.effectiveLimit($0), guarded: $0.guardReason)
            }, bootLoopHold: failures >= configuration.bootLoopLimit, consecutiveFailedBoots: failures)
        } catch {
            throw ControlError(error)
        }
    }
}
