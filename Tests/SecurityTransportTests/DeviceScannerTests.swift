import Foundation
import SecurityTransport
import Testing

@Suite("Device discovery from sysfs")
struct DeviceScannerTests {
    /// A small sysfs tree: an NVMe namespace, a SAS disk, a SATA disk, a partition, a loop device, a virtio disk.
    func makeTree() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sysfs-\(UUID().uuidString.prefix(8))").path
        func file(_ path: String, _ text: String) throws {
            let url = URL(fileURLWithPath: root + "/" + path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        func bytes(_ path: String, _ data: [UInt8]) throws {
            try Data(data).write(to: URL(fileURLWithPath: root + "/" + path))
        }
        let block = "class/block"
        try file("\(block)/nvme0n1/size", "2000409264\n")
        try file("\(block)/nvme0n1/wwid", "eui.0025388b91b3c1d2\n")
        try file("\(block)/nvme0n1/device/model", "Samsung SSD 980 PRO 1TB                 \n")
        try file("\(block)/nvme0n1/device/serial", "S5GXNF0R123456      \n")
        try file("\(block)/nvme0n1/device/firmware_rev", "5B2QGXA7\n")
        try file("\(block)/sda/size", "1000\n")
        try file("\(block)/sda/device/vendor", "SEAGATE \n")
        try file("\(block)/sda/device/model", "ST4000NM0025    \n")
        try file("\(block)/sda/device/rev", "N005\n")
        try file("\(block)/sda/device/type", "0\n")
        try file("\(block)/sda/device/wwid", "naa.5000c500a1b2c3d4\n")
        try bytes("\(block)/sda/device/vpd_pg80", [0x00, 0x80, 0x00, 0x08] + Array("ZC1234AB".utf8))
        try file("\(block)/sda1/partition", "1\n")
        try file("\(block)/sda1/device/vendor", "SEAGATE\n")
        try file("\(block)/sdb/size", "2000\n")
        try file("\(block)/sdb/device/vendor", "ATA     \n")
        try file("\(block)/sdb/device/model", "Samsung SSD 870\n")
        try file("\(block)/sdb/device/rev", "2B6Q\n")
        try file("\(block)/sdb/device/type", "0\n")
        try bytes("\(block)/sdb/device/vpd_pg89", [0x00, 0x89, 0x02, 0x38])
        try file("\(block)/loop0/size", "0\n")
        try file("\(block)/vda/size", "64\n")
        try file("\(block)/vda/serial", "virt-1\n")
        try file("\(block)/vda/device/vendor", "0x1af4\n")
        return root
    }

    @Test("whole disks are classified; partitions and virtual devices are skipped")
    func classify() throws {
        let root = try makeTree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let devices = DeviceScanner(sysfs: root).scan()
        #expect(devices.map(\.name) == ["nvme0n1", "sda", "sdb", "vda"])
        let nvme = devices[0]
        #expect(nvme.bus == .nvme && nvme.model == "Samsung SSD 980 PRO 1TB" && nvme.serial == "S5GXNF0R123456")
        #expect(nvme.firmware == "5B2QGXA7" && nvme.wwn == "eui.0025388b91b3c1d2" && nvme.sizeBytes == 2_000_409_264 * 512)
        let sas = devices[1]
        #expect(sas.bus == .scsi && sas.model == "SEAGATE ST4000NM0025" && sas.serial == "ZC1234AB" && sas.wwn == "naa.5000c500a1b2c3d4")
        #expect(devices[2].bus == .sata && devices[2].model == "Samsung SSD 870")
        #expect(devices[3].bus == .other && devices[3].serial == "virt-1")
    }

    @Test("the real /sys scans without privileges or traps")
    func realSysfs() {
        let devices = DeviceScanner().scan()
        for device in devices { #expect(device.path.hasPrefix("/dev/")) }
    }
}
