import SimulatorLink

/// The commands a simulated SCSI target executes, as REPORT SUPPORTED OPERATION CODES (SPC-4
/// §6.35) reports them: a SAS drive's, or libata's translation for a SATA drive.
struct SCSICommandSet {
    struct Command: Equatable {
        let opcode: UInt8
        let serviceAction: UInt16?
        let cdbLength: Int
    }

    let commands: [Command]

    init(kind: DriveKind, satLayer: SATLayer?) {
        func c(_ opcode: UInt8, _ length: Int, _ action: UInt16? = nil) -> Command { Command(opcode: opcode, serviceAction: action, cdbLength: length) }
        var list = [c(0x00, 6), c(0x03, 6), c(0x12, 6), c(0x15, 6), c(0x1A, 6), c(0x25, 10), c(0x28, 10), c(0x2A, 10), c(0x35, 10),
                    c(0x55, 10), c(0x5A, 10), c(0x88, 16), c(0x8A, 16), c(0x91, 16), c(0x9E, 16, 0x10), c(0xA0, 12), c(0xA3, 12, 0x0C)]
        if satLayer == nil { list.append(c(0x4D, 10)) }  // libata has no LOG SENSE
        if satLayer == nil || satLayer == .libata { list += [c(0xA2, 12), c(0xB5, 12)] }
        if let satLayer {
            list.append(c(0xA1, 12))
            if satLayer != .ata12Only { list.append(c(0x85, 16)) }
        }
        commands = list.sorted { ($0.opcode, $0.serviceAction ?? 0) < ($1.opcode, $1.serviceAction ?? 0) }
    }

    /// Opcodes whose commands are told apart by a service action.
    var opcodesWithServiceActions: Set<UInt8> { Set(commands.filter { $0.serviceAction != nil }.map(\.opcode)) }

    /// The CDB usage data of a command: its opcode, then every bit it may use (control byte 0).
    static func usageData(_ command: Command) -> [UInt8] {
        var usage = [command.opcode] + [UInt8](repeating: 0xFF, count: command.cdbLength - 2) + [0x00]
        if let action = command.serviceAction { usage[1] = UInt8(truncatingIfNeeded: action) & 0x1F }
        return usage
    }

    /// A command timeouts descriptor (SPC-4 §6.35.4): no nominal time given, 30 s recommended.
    static let timeouts: [UInt8] = [0x00, 0x0A, 0x00, 0x00] + [0, 0, 0, 0] + SCSIPages.bigEndian(30, 4)
}

extension SCSITarget {
    /// MAINTENANCE IN / REPORT SUPPORTED OPERATION CODES (0xA3, service action 0x0C). libata
    /// answers only the one-command forms, as here for a SATA drive.
    func reportSupportedOperationCodes(_ cdb: [UInt8], satLayer: SATLayer?) -> LinkSCSIResult {
        let set = SCSICommandSet(kind: drive.identity.kind, satLayer: satLayer)
        let withTimeouts = cdb.byte(2) & 0x80 != 0
        let options = cdb.byte(2) & 0x07
        let opcode = cdb.byte(3)
        let action = UInt16(cdb.bigEndian(4, 2))
        let allocation = Int(cdb.bigEndian(6, 4))
        switch options {
        case 0 where satLayer == nil:
            var descriptors: [UInt8] = []
            for command in set.commands {
                descriptors += [command.opcode, 0] + SCSIPages.bigEndian(UInt64(command.serviceAction ?? 0), 2)
                    + [0, (withTimeouts ? 0x02 : 0x00) | (command.serviceAction == nil ? 0x00 : 0x01)]
                    + SCSIPages.bigEndian(UInt64(command.cdbLength), 2)
                if withTimeouts { descriptors += SCSICommandSet.timeouts }
            }
            return data(SCSIPages.bigEndian(UInt64(descriptors.count), 4) + descriptors, allocation: allocation)
        case 1, 2, 3:
            let takesAction = set.opcodesWithServiceActions.contains(opcode)
            // 1: by opcode alone (an opcode with service actions is a bad request); 2: by opcode and
            // service action (an opcode without them is); 3: either, as the opcode needs.
            if options == 1 && takesAction || options == 2 && !takesAction { return check(.illegalRequest, .invalidFieldInCDB) }
            let found = set.commands.first { $0.opcode == opcode && (takesAction ? $0.serviceAction == action : true) }
            guard let found else {
                // SUPPORT 001b: not supported; no usage data.
                return data([0, 0x01, 0, 0], allocation: allocation)
            }
            let usage = SCSICommandSet.usageData(found)
            var answer: [UInt8] = [0, (withTimeouts ? 0x80 : 0x00) | 0x03] + SCSIPages.bigEndian(UInt64(usage.count), 2) + usage
            if withTimeouts { answer += SCSICommandSet.timeouts }
            return data(answer, allocation: allocation)
        default:
            return check(.illegalRequest, .invalidFieldInCDB)
        }
    }
}
