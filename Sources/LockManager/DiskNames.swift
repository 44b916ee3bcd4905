import Foundation

/// The kernel's names for the whole disks behind a device node (`sda`, `nvme0n1`), so a state
/// directory on one of them can be refused. `/dev/sgN` and NVMe controller nodes are resolved
/// through sysfs; simulated drives have none.
public enum DiskNames {
    public static func of(_ address: String, sysfs: String = "/sys") -> Set<String> {
        guard address.hasPrefix("/") else { return [] }
        let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: address))
            .map { $0.hasPrefix("/") ? $0 : ((address as NSString).deletingLastPathComponent as NSString).appendingPathComponent($0) }
            ?? address
        let name = (real as NSString).lastPathComponent
        let fm = FileManager.default
        if name.hasPrefix("sg") {
            return Set((try? fm.contentsOfDirectory(atPath: "\(sysfs)/class/scsi_generic/\(name)/device/block")) ?? [])
        }
        if name.hasPrefix("nvme"), name.count > 4, name.dropFirst(4).allSatisfy(\.isNumber) {
            let entries = (try? fm.contentsOfDirectory(atPath: "\(sysfs)/class/nvme/\(name)")) ?? []
            return Set(entries.filter { $0.hasPrefix(name + "n") && !$0.contains("p") })
        }
        return [name]
    }
}
