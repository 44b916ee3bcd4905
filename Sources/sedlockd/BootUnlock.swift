import ArgumentParser
import ControlAPI
import ControlSocket
import Foundation
import Keys
import LockManager
import Logging
import Platform
import SecurityTransport
import SimulatorTransport
import Systemd

/// The boot service's unlock (sedlock-unlock.service): keys first, with a bounded wait during
/// which systemd is asked for more time; verify; unlock every drive in parallel; record the boot;
/// then make the unlocked disks' partitions appear. Its exit status and STATUS= say unlocked,
/// partial, held or no keys.
struct BootUnlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot-unlock",
        abstract: "Unlock the array at boot (the oneshot unit's job); exit 0 unlocked, 14 partial, 15 held or no keys.")
    @OptionGroup var options: DaemonOptions
    @Option(help: "Seconds to wait for keys that can be verified (default: deadlines.boot_key_wait).") var wait: Double?
    @Option(help: "Unlock only an array whose key is kept here: local (sedlock-unlock.service) or kmip (sedlock-unlock-network.service: every key that needs the network, on key servers or sealed by clevis for tang); default: either.")
    var keys: KeyProviderKind?

    func validate() throws {
        if let wait, !(0...86_400).contains(wait) { throw ValidationError("--wait must be between 0 and 86400 seconds") }
    }

    func run() async throws {
        await exiting {
            disableCoreDumps()
            let configuration = try options.load()
            bootstrapLogging(identifier: "sedlock-unlock")
            let logger = Logger(label: "sedlock-unlock")
            let serviceManager = ServiceManager()
            let manager = LockManager(configuration: configuration.managerConfiguration(bootIDPath: options.bootIdFile),
                                      factory: .withSimulator)
            let waitSeconds = wait ?? configuration.bootKeyWait
            if let keys, let elsewhere = try Self.keptElsewhere(manager, than: keys) {
                serviceManager.status(elsewhere)
                print(elsewhere)
                return
            }
            serviceManager.status("fetching keys (waiting up to \(Int(waitSeconds)) s)")
            // Ask systemd for time in steps while the unlock runs: the key wait is bounded by
            // waitSeconds, each drive command by the command timeout.
            let extender = Task {
                while !Task.isCancelled {
                    serviceManager.extendTimeout(seconds: 20)
                    try? await Task.sleep(for: .seconds(10))
                }
            }
            let executor = BlockingExecutor(threads: 4, name: "boot-unlock")
            var response = await Task(executorPreference: executor) {
                await LockManager.$requester.withValue("boot unlock") {
                    await manager.respond(to: .unlock(UnlockRequest(drives: .all, boot: true, waitSeconds: waitSeconds)))
                }
            }.value
            manager.releaseState()
            // Run again while sedlockd holds the state (`systemctl restart` of this unit): the
            // daemon does the unlock, with the same guards, rather than this unit failing "busy".
            if case .failure(let error) = response, error.code == .busy,
               let pid = Self.daemonHolding(manager.configuration.stateDirectory.writerLockPath) {
                logger.notice("sedlockd (PID \(pid)) holds the state: the boot unlock is handed to it")
                let request = ControlRequest.unlock(UnlockRequest(drives: .all, boot: true, waitSeconds: waitSeconds))
                do {
                    response = try ControlClient(path: configuration.controlSocket)
                        .send(request, timeout: waitSeconds + configuration.commandTimeout * 4 + 30)
                } catch {
                    response = .failure(ControlError(error))
                }
            }
            extender.cancel()
            DaemonEvents(logger: logger).answered(.unlock(UnlockRequest(drives: .all, boot: true)), response, requester: "boot")

            let verdict = BootVerdict(response)
            if case .array(let report) = response {
                let rescan = DiskRescan(logger: logger)
                for drive in report.drives where drive.result == .unlocked { rescan.reveal(drive.address) }
            }
            serviceManager.status(verdict.status)
            print(verdict.status)
            // The summary itself, at the level its outcome deserves: a held boot leaves data unreadable.
            let outcome = verdict.exitStatus == 0 ? "unlocked" : verdict.exitStatus == 14 ? "partial" : verdict.exitStatus == 15 ? "held" : "failed"
            let summary: Logger.Metadata = ["MESSAGE_ID": "\(MessageID.bootSummary)", "RESULT": "\(outcome)"]
            switch verdict.exitStatus {
            case 0: logger.notice("boot unlock: \(verdict.status)", metadata: summary)
            case 14, 15: logger.warning("boot unlock: \(verdict.status)", metadata: summary)
            default: logger.error("boot unlock: \(verdict.status)", metadata: summary)
            }
            if verdict.exitStatus != 0 { throw DaemonFailure(verdict.status, status: verdict.exitStatus) }
        }
    }
}

extension BootUnlock {
    /// The PID of the sedlockd that holds the state's writer lock, or nil (free, or another program).
    static func daemonHolding(_ lockPath: String) -> Int32? {
        do {
            let probe = try FileLock(path: lockPath, wait: 0)
            probe.release()
            return nil
        } catch {
            // sedlockd serving (not another boot unlock, which is sedlockd too: that one's socket
            // may be one whose daemon waits for this unit, and asking it would wait for itself).
            guard case .busy(_, let holder?) = error,
                  let name = try? String(contentsOfFile: "/proc/\(holder)/comm", encoding: .utf8),
                  name.trimmingCharacters(in: .whitespacesAndNewlines) == "sedlockd",
                  let arguments = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(holder)/cmdline")),
                  !arguments.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == "boot-unlock" }) else { return nil }
            return holder
        }
    }

    /// Why this unit has nothing to do, or nil when the array is its to unlock: the local unit takes
    /// arrays whose keys are all on this machine; the network unit every array that needs the
    /// network (a KMIP-held AK, an RDL token, or a key clevis sealed — tang's servers).
    static func keptElsewhere(_ manager: LockManager, than provider: KeyProviderKind) throws -> String? {
        let needed: Set<KeyProviderKind>
        do { needed = try manager.keySourcesNeeded() } catch {
            throw DaemonFailure("cannot read the state: \(error.description)", status: 1)
        }
        guard !needed.isEmpty else { return nil }
        switch provider {
        case .local where needed.contains(.kmip) || needed.contains(.clevis):
            return "nothing to do: the array's keys need the network (sedlock-unlock-network.service unlocks it)"
        case .kmip where !needed.contains(.kmip) && !needed.contains(.clevis), .clevis where !needed.contains(.kmip) && !needed.contains(.clevis):
            return "nothing to do: the array's key is kept on this machine (sedlock-unlock.service unlocks it)"
        default:
            return nil
        }
    }
}

/// What a boot unlock came to, in the words STATUS= and the exit status use.
struct BootVerdict {
    let status: String
    let exitStatus: Int32

    init(_ response: ControlResponse) {
        guard case .array(let report) = response else {
            if case .failure(let error) = response {
                status = "failed: \(error.description)"
                exitStatus = error.code == .held ? 15 : error.code == .busy ? 16 : 1
            } else {
                status = "failed: unexpected answer"
                exitStatus = 1
            }
            return
        }
        let total = report.drives.count
        let unlocked = report.drives.filter { $0.result == .unlocked }.count
        let keyless: Set<DriveOutcome.Result> = [.keyUnavailable, .keyMismatch]
        let holds: Set<DriveOutcome.Result> = [.held, .guarded]
        // Why nothing was tried: the report's note, else what the first drive without a key says
        // (the RDL token refused, a key server unreachable …).
        let reason = report.note.isEmpty ? report.drives.first(where: { keyless.contains($0.result) })?.detail ?? "" : report.note
        let note = reason.isEmpty ? "" : ": \(reason)"
        if total > 0 && unlocked == total {
            // What the keys cost on the network, for the operator planning key servers.
            let keys = report.keyServerRoundTrips.map {
                " (keys in \($0) KMIP round trip\($0 == 1 ? "" : "s") over \(report.keyServerConnections ?? 0) connection\(report.keyServerConnections == 1 ? "" : "s"))"
            } ?? ""
            status = "unlocked \(unlocked)/\(total) drives\(keys)"
            exitStatus = 0
        } else if unlocked > 0 {
            let others = Dictionary(grouping: report.drives.filter { $0.result != .unlocked }, by: \.result)
                .map { "\($0.value.count) \($0.key.words)" }.sorted().joined(separator: ", ")
            status = "partial: unlocked \(unlocked)/\(total) drives (\(others))"
            exitStatus = 14
        } else if total > 0 && report.drives.allSatisfy({ keyless.contains($0.result) }) {
            status = "no keys: 0/\(total) drives unlocked, no authentication attempted\(note)"
            exitStatus = 15
        } else if total > 0 && report.drives.allSatisfy({ holds.union(keyless).contains($0.result) }) {
            status = "held: 0/\(total) drives unlocked, no authentication attempted\(note)"
            exitStatus = 15
        } else {
            status = total == 0 ? "nothing to unlock: no drives under management" : "failed: 0/\(total) drives unlocked\(note)"
            exitStatus = total == 0 ? 0 : 1
        }
    }
}

/// Makes an unlocked disk's partitions and filesystems appear: the kernel re-reads its
/// partition table (it read a locked disk at boot and found none), then udev is told the disk
/// changed so that by-uuid links and mounts follow.
struct DiskRescan {
    let logger: Logger

    func reveal(_ address: String) {
        guard address.hasPrefix("/") else { return }  // sim: drives have no kernel disk
        if Self.preloadMapped(address) {
            logger.info("\(address) is a simulated node (LD_PRELOAD): would re-read its partition table and run `udevadm trigger --action=change`",
                        metadata: ["DRIVE": "\(address)"])
            return
        }
        let disks = DiskNames.of(address).sorted().map { "/dev/" + $0 }
        for disk in disks {
            do { try PartitionTable.reread(path: disk) } catch {
                logger.warning("\(disk): \(error.description)", metadata: ["DRIVE": "\(address)"])
            }
        }
        guard !disks.isEmpty else { return }
        do {
            let udevadm = try SpawnedProcess("/usr/bin/udevadm", ["trigger", "--action=change"] + disks)
            let status = udevadm.wait()
            if status != 0 { logger.warning("udevadm trigger for \(disks.joined(separator: " ")) exited \(status)") }
        } catch {
            logger.warning("cannot run udevadm: \(error)")
        }
    }

    /// True when the sedsim preload library shows this path (SEDSIM_DEVICES=PATH=DIR/N,…).
    static func preloadMapped(_ path: String) -> Bool {
        guard let mapping = ProcessInfo.processInfo.environment["SEDSIM_DEVICES"] else { return false }
        return mapping.split(separator: ",").contains { $0.split(separator: "=").first.map(String.init) == path }
    }
}
extension KeyProviderKind: ExpressibleByArgument {}
