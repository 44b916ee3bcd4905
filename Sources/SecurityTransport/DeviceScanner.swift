import Foundation

/// A block device found in sysfs, classified by bus, with what the kernel already knows of it.
public struct BlockDeviceInfo: Codable, Hashable, Sendable {
    public enum Bus: String, Codable, Sendable {
        /// NVMe namespace: Security Send/Receive through the controller.
        case nvme
        /// SCSI or SAS: SECURITY PROTOCOL IN/OUT.
        case scsi
        /// SATA behind libata (ATA Information VPD page 0x89 present): SAT translation or ATA pass-through.
        case sata
        /// Anything else (virtio, MMC …): no TCG security transport.
        case other
    }

    public var name: String
    public var path: String
    public var bus: Bus
    public var driver: String?
    public var model: String
    public var serial: String
    public var firmware: String
    public var wwn: String?
    public var sizeBytes: UInt64
}

/// Enumerates whole disks under `/sys/class/block` (partitions and virtual devices are skipped).
/// Reads only text attributes, so it needs no privilege; the `sysfs` root is a parameter for tests.
public struct DeviceScanner: Sendable {
    public let sysfs: URL

    public init(sysfs: String = "/sys") { self.sysfs = URL(fileURLWithPath: sysfs) }

    public func scan() -> [BlockDeviceInfo] {
        let blockDir = sysfs.appendingPathComponent("class/block")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: blockDir.path)) ?? []
        return names.sorted().compactMap { describe(blockDir.appendingPathComponent($0), name: $0) }
    }

    func describe(_ dir: URL, name: String) -> BlockDeviceInfo? {
        let fm = FileManager.default
        // Partitions carry a "partition" attribute; virtual devices (loop, dm, md, zram) have no "device".
        if fm.fileExists(atPath: dir.appendingPathComponent("partition").path) { return nil }
        let device = dir.appendingPathComponent("device")
        guard fm.fileExists(atPath: device.path) else { return nil }
        let size = (read(dir, "size").flatMap { UInt64($0) } ?? 0) &* 512
        let driver = (try? fm.destinationOfSymbolicLink(atPath: device.appendingPathComponent("driver").path))
            .map { URL(fileURLWithPath: $0).lastPathComponent }
        if name.hasPrefix("nvme") {
            // The namespace's "device" is its controller, which holds model, serial and firmware.
            return BlockDeviceInfo(name: name, path: "/dev/\(name)", bus: .nvme, driver: driver ?? "nvme",
                                   model: read(device, "model") ?? "", serial: read(device, "serial") ?? "",
                                   firmware: read(device, "firmware_rev") ?? "", wwn: read(dir, "wwid"), sizeBytes: size)
        }
        if let vendor = read(device, "vendor"), let model = read(device, "model"), fm.fileExists(atPath: device.appendingPathComponent("type").path)
            || fm.fileExists(atPath: device.appendingPathComponent("scsi_level").path) {
            let isATA = fm.fileExists(atPath: device.appendingPathComponent("vpd_pg89").path) || vendor == "ATA"
            return BlockDeviceInfo(name: name, path: "/dev/\(name)", bus: isATA ? .sata : .scsi, driver: driver,
                                   model: vendor == "ATA" ? model : "\(vendor) \(model)", serial: unitSerial(device) ?? read(dir, "serial") ?? "",
                                   firmware: read(device, "rev") ?? "", wwn: read(device, "wwid"), sizeBytes: size)
        }
        return BlockDeviceInfo(name: name, path: "/dev/\(name)", bus: .other, driver: driver,
                               model: read(device, "model") ?? driver ?? "", serial: read(dir, "serial") ?? "",
                               firmware: "", wwn: read(dir, "wwid"), sizeBytes: size)
    }

    /// The Unit Serial Number VPD page (0x80) as the kernel caches it: a 4-byte header, then the serial.
    func unitSerial(_ device: URL) -> String? {
        guard let data = try? Data(contentsOf: device.appendingPathComponent("vpd_pg80")), data.count > 4 else { return nil }
        let bytes = Array(data)
        let length = min(Int(bytes[2]) << 8 | Int(bytes[3]), bytes.count - 4)
        guard length > 0 else { return nil }
        return String(decoding: bytes[4..<(4 + length)], as: UTF8.self).trimmingCharacters(in: " \0")
    }

    /// Device nodes the sedsim preload library presents in this process (SEDSIM_DEVICES=PATH=DIR/N,…).
    /// They exist for programs run under LD_PRELOAD only, so sysfs cannot list them.
    public static func preloadMappedNodes(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        guard let preload = environment["LD_PRELOAD"], preload.contains("sedsim-preload"),
              let mapping = environment["SEDSIM_DEVICES"] else { return [] }
        return mapping.split(separator: ",").compactMap { entry in
            guard let eq = entry.firstIndex(of: "="), entry[..<eq].hasPrefix("/dev/") else { return nil }
            return String(entry[..<eq])
        }
    }

    func read(_ dir: URL, _ attribute: String) -> String? {
        guard let data = try? Data(contentsOf: dir.appendingPathComponent(attribute)), data.count < 4096 else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: " \n\0\t")
        return text.isEmpty ? nil : text
    }
}
