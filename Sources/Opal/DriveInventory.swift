import Foundation
import Keys
import SecurityTransport

/// What a look at a drive shows without authenticating: identity, and from Level 0 Discovery
/// whether it speaks Opal, is owned, has locking enabled and is locked. A drive that cannot be
/// probed is still listed, with the reason.
public struct DriveProbe: Codable, Sendable, Hashable {
    public var device: String
    public var bus: String
    public var model: String
    public var serial: String
    public var opal: Bool?
    public var owned: Bool?
    public var lockingEnabled: Bool?
    public var locked: Bool?
    /// The security subsystem classes Level 0 Discovery lists ("Opal v2", "Pyrite v2" …); empty:
    /// the drive answers but is no SED.
    public var subsystems: [String]?
    /// How sedlock names the drive in its state (WWN, else serial), to tell a managed drive met
    /// under another node name from a new one.
    public var identity: String?
    public var error: String?

    public init(device: String, bus: String, model: String = "", serial: String = "") {
        self.device = device
        self.bus = bus
        self.model = model
        self.serial = serial
    }

    /// One line for people.
    public var summary: String {
        if let error { return error }
        if opal != true { return subsystems.map { $0.isEmpty ? "no TCG security subsystem" : "not Opal (\($0.joined(separator: ", ")))" } ?? "not Opal" }
        return [owned == true ? "owned" : "factory SID",
                lockingEnabled == true ? "locking enabled" : "locking inactive",
                locked == true ? "LOCKED" : "unlocked"].joined(separator: ", ")
    }
}

/// The drives this host can see: disks from sysfs, nodes the sedsim preload library presents,
/// and any addresses the caller adds (simulated drives), each probed.
public struct DriveInventory: Sendable {
    public let factory: TransportFactory
    public let commandTimeout: Double

    public init(factory: TransportFactory, commandTimeout: Double = 10) {
        self.factory = factory
        self.commandTimeout = commandTimeout
    }

    /// Disks from sysfs (SCSI/SAS, SATA, NVMe) and preload-mapped nodes, probed; those named in
    /// `skipping` are left out before anything is sent to them.
    public func scanHost(scanner: DeviceScanner = DeviceScanner(),
                         environment: [String: String] = ProcessInfo.processInfo.environment,
                         skipping: Set<String> = []) -> [DriveProbe] {
        var found = scanner.scan().filter { !skipping.contains($0.path) }.map { disk in
            var entry = DriveProbe(device: disk.path, bus: disk.bus.rawValue, model: disk.model, serial: disk.serial)
            if disk.bus == .other {
                entry.error = "no TCG security transport (\(disk.driver ?? "unknown driver"))"
            } else {
                probe(&entry, address: .device(path: disk.path))
            }
            return entry
        }
        for node in DeviceScanner.preloadMappedNodes(environment: environment) where !skipping.contains(node) {
            var entry = DriveProbe(device: node, bus: "preload")
            probe(&entry, address: .device(path: node))
            found.append(entry)
        }
        return found
    }

    /// The disks and preload nodes `scanHost` would probe, with nothing sent to any of them.
    public func hostAddresses(scanner: DeviceScanner = DeviceScanner(),
                              environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        scanner.scan().map(\.path) + DeviceScanner.preloadMappedNodes(environment: environment)
    }

    /// The drives of the simulated array in `arrayDirectory`; empty when this program has no
    /// simulator transport or the array does not answer.
    public func simulatedAddresses(_ arrayDirectory: String) -> [String] {
        guard let count = factory.simulatedDriveCount?(arrayDirectory, commandTimeout) else { return [] }
        return (0..<count).map { DeviceAddress.simulated(arrayDirectory: arrayDirectory, drive: $0).description }
    }

    /// Every drive of the simulated array in `arrayDirectory` but those named in `skipping`, probed.
    public func scanSimulatedArray(_ arrayDirectory: String, skipping: Set<String> = []) -> [DriveProbe] {
        simulatedAddresses(arrayDirectory).filter { !skipping.contains($0) }.compactMap { address in
            (try? DeviceAddress.parse(address)).map { probe($0, bus: "simulated") }
        }
    }

    /// Probes one address (a device node or `sim:DIR/N`).
    public func probe(_ address: DeviceAddress, bus: String, model: String = "", serial: String = "") -> DriveProbe {
        var entry = DriveProbe(device: address.description, bus: bus, model: model, serial: serial)
        probe(&entry, address: address)
        return entry
    }

    private func probe(_ entry: inout DriveProbe, address: DeviceAddress) {
        do {
            let transport: any SecurityTransport
            do { transport = try factory.open(address, commandTimeout: commandTimeout) } catch {
                throw OpalError(error.code == .timedOut ? .timedOut : .transport(error.code), device: address.description,
                                operation: "open", error.message)
            }
            if let device = transport as? PassThroughTransport {
                // What the drive says beats what sysfs cached; preload nodes have nothing else.
                entry.model = device.identity.model
                entry.serial = device.identity.serialNumber
                if entry.bus == "preload" { entry.bus = "\(device.identity.interface.rawValue) (preload)" }
            }
            if let id = try? transport.identify() {
                entry.identity = DrivePIN.driveIdentity(wwn: id.wwn, serial: id.serialNumber)
                if entry.model.isEmpty { entry.model = id.model }
                if entry.serial.isEmpty { entry.serial = id.serialNumber }
            }
            let discovery = try OpalDrive.readDiscovery(transport)
            entry.subsystems = discovery.subsystemClasses.map(\.kind.name)
            entry.opal = discovery.opal != nil
            entry.owned = discovery.blockSID?.sidValueState
            entry.lockingEnabled = discovery.locking?.lockingEnabled
            entry.locked = discovery.locking?.locked
        } catch {
            entry.error = "\(error)"
        }
    }
}
