import Foundation
import Opal
import SecurityTransport
import TCGStorage

/// What `sedlock drive discover` prints: identity and every Level 0 feature with its fields.
struct DiscoveryReport: Codable {
    struct Feature: Codable {
        var code: String
        var name: String
        var version: Int
        var fields: [String: String]
    }

    var device: String
    /// nvme, sas, sata or simulated.
    var interface: String
    /// How security commands reach the drive: scsi, ata16, ata12, nvme, or the simulator's link.
    var transport: String
    var model: String
    var serial: String
    var firmware: String
    var wwn: String?
    var capacityBytes: UInt64
    var features: [Feature]

    init(device: String, transport: any SecurityTransport, identity: DeviceIdentity, discovery: Level0Discovery) {
        self.device = device
        interface = identity.interface.rawValue
        self.transport = (transport as? PassThroughTransport)?.bus.rawValue ?? "link"
        model = identity.model
        serial = identity.serialNumber
        firmware = identity.firmware
        wwn = identity.wwn.map { "0x" + String($0, radix: 16) }
        capacityBytes = identity.capacityBytes
        features = discovery.features.map(Self.feature)
    }

    private static func hex(_ v: some BinaryInteger) -> String { "0x" + String(v, radix: 16, uppercase: true) }
    private static func yn(_ b: Bool) -> String { b ? "yes" : "no" }

    static func feature(_ f: DiscoveryFeature) -> Feature {
        var fields: [String: String] = [:]
        var version = 0
        switch f {
        case .tper(let t):
            version = Int(t.version)
            fields = ["sync": yn(t.syncSupported), "async": yn(t.asyncSupported), "streaming": yn(t.streamingSupported),
                      "comIDManagement": yn(t.comIDManagementSupported)]
        case .locking(let l):
            version = Int(l.version)
            fields = ["supported": yn(l.lockingSupported), "enabled": yn(l.lockingEnabled), "locked": yn(l.locked),
                      "mediaEncryption": yn(l.mediaEncryption), "mbrEnabled": yn(l.mbrEnabled), "mbrDone": yn(l.mbrDone)]
        case .geometry(let g):
            version = Int(g.version)
            fields = ["alignmentRequired": yn(g.alignmentRequired), "logicalBlockSize": "\(g.logicalBlockSize)",
                      "alignmentGranularity": "\(g.alignmentGranularity)", "lowestAlignedLBA": "\(g.lowestAlignedLBA)"]
        case .ssc(let s):
            version = Int(s.version)
            fields = ["baseComID": hex(s.baseComID), "numberOfComIDs": "\(s.numberOfComIDs)",
                      "rangeCrossing": yn(s.rangeCrossing), "lockingAdmins": "\(s.lockingAdminAuthorities)",
                      "lockingUsers": "\(s.lockingUserAuthorities)", "initialPIN": hex(s.initialPIN),
                      "revertedPIN": hex(s.revertedPIN)]
        case .singleUser(let s):
            version = Int(s.version)
            fields = ["lockingObjects": "\(s.lockingObjects)", "any": yn(s.any), "all": yn(s.all), "policy": yn(s.policy)]
        case .dataStore(let d):
            version = Int(d.version)
            fields = ["maximumTables": "\(d.maximumTables)", "maximumTotalSize": "\(d.maximumTotalSize)",
                      "sizeAlignment": "\(d.sizeAlignment)"]
        case .blockSID(let b):
            version = Int(b.version)
            fields = ["sidValueDiffersFromMSID": yn(b.sidValueState), "sidAuthenticationBlocked": yn(b.sidAuthenticationBlocked),
                      "hardwareReset": yn(b.hardwareResetFlag)]
        case .namespaceLocking(let n):
            version = Int(n.version)
            fields = ["rangeC": yn(n.rangeC), "rangeP": yn(n.rangeP), "maximumKeyCount": "\(n.maximumKeyCount)",
                      "unusedKeyCount": "\(n.unusedKeyCount)", "maximumRangesPerNamespace": "\(n.maximumRangesPerNamespace)"]
        case .dataRemoval(let d):
            version = Int(d.version)
            fields = ["supportedMechanisms": hex(d.supportedMechanisms), "operationFlags": hex(d.operationFlags)]
        case .unknown(_, let v, let body):
            version = Int(v)
            fields = ["bytes": body.map { String(format: "%02X", $0) }.joined()]
        }
        return Feature(code: hex(f.code), name: f.name, version: version, fields: fields)
    }

    var text: String {
        var lines = ["\(device): \(model), serial \(serial), firmware \(firmware)"
                     + (wwn.map { ", WWN \($0)" } ?? "") + ", \(capacityBytes) bytes, \(interface) via \(transport)"]
        for f in features {
            let fields = f.fields.keys.sorted().map { "\($0)=\(f.fields[$0] ?? "")" }.joined(separator: " ")
            lines.append("  \(f.name) (\(f.code) v\(f.version)): \(fields)")
        }
        return lines.joined(separator: "\n")
    }
}
