import ControlAPI
import Foundation
import LockState
import Opal
import SecurityTransport
import Synchronization

/// The SEDs in reach that the array does not manage, as last looked for: each address is probed
/// once (Level 0 Discovery and identity only: no session, nothing a TryLimit counts) and then
/// remembered until it goes away, so a disk is not asked again every drive interval.
final class DriveSightings: Sendable {
    struct Sighting: Sendable {
        /// nil when it is no SED, or is the array's under another name.
        var drive: StatusReport.UnmanagedDrive?
        var identity: String?
    }

    private let seen = Mutex<[String: Sighting]>([:])

    /// Records this look's answers, forgetting what went away or is the array's now (by address
    /// or identity); returns the SEDs not seen before.
    func update(present: Set<String>, managed: Set<String>, identities: Set<String>,
                probed: [String: Sighting]) -> [StatusReport.UnmanagedDrive] {
        seen.withLock { seen in
            seen = seen.filter { address, sighting in
                present.contains(address) && !managed.contains(address) && !(sighting.identity.map(identities.contains) ?? false)
            }
            var new: [StatusReport.UnmanagedDrive] = []
            for (address, sighting) in probed {
                seen[address] = sighting
                if let drive = sighting.drive { new.append(drive) }
            }
            return new.sorted { $0.address < $1.address }
        }
    }

    var known: Set<String> { seen.withLock { Set($0.keys) } }
    var unmanaged: [StatusReport.UnmanagedDrive] {
        seen.withLock { $0.values.compactMap(\.drive).sorted { $0.address < $1.address } }
    }
}

extension LockManager {
    /// Looks for SEDs this host can reach that are not drives of the array: the host's disks
    /// (sysfs, preload nodes) and the other drives of each simulated array the array's drives are
    /// in. A drive met before is not probed again; one the state knows (by address, or by
    /// identity under another node name) is never probed at all or is dropped. Returns the SEDs
    /// seen for the first time, to report; nothing is ever sent to them but discovery.
    @discardableResult
    public func lookForUnmanagedDrives() throws(ControlError) -> [StatusReport.UnmanagedDrive] {
        let drives: [StoredDrive]
        do { drives = try openState(.read).drives() } catch { throw ControlError(error) }
        let managed = Set(drives.map(\.address))
        let identities = Set(drives.map(\.identity))
        let inventory = DriveInventory(factory: factory, commandTimeout: configuration.commandTimeout)
        let skip = managed.union(sightings.known)
        let arrays = Set(drives.compactMap { drive -> String? in
            guard case .simulated(let directory, _)? = try? DeviceAddress.parse(drive.address) else { return nil }
            return directory
        }).sorted()
        let present = Set(inventory.hostAddresses() + arrays.flatMap(inventory.simulatedAddresses))
        var probes = inventory.scanHost(skipping: skip)
        for directory in arrays { probes += inventory.scanSimulatedArray(directory, skipping: skip) }
        var probed: [String: DriveSightings.Sighting] = [:]
        for probe in probes {
            let isSED = probe.error == nil && !(probe.subsystems ?? []).isEmpty
            let ours = probe.identity.map(identities.contains) ?? false
            let drive = isSED && !ours
                ? StatusReport.UnmanagedDrive(address: probe.device, model: probe.model, serial: probe.serial.trimmingCharacters(in: .whitespaces),
                                              subsystems: probe.subsystems ?? [], owned: probe.owned, locked: probe.locked, seenAt: time.wallTime)
                : nil
            probed[probe.device] = DriveSightings.Sighting(drive: drive, identity: probe.identity)
        }
        return sightings.update(present: present, managed: managed, identities: identities, probed: probed)
    }
}
