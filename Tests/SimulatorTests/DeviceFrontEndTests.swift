import Foundation
import SecurityTransport
import SedSimulator
import SimulatorLink
import TCGStorage
import Testing

/// The raw device commands the preload library forwards, answered by simulated drives of each
/// kind, and read back with the host's own parsers.
@Suite("Simulated drives as SCSI targets and NVMe controllers")
struct DeviceFrontEndTests {
    func scsi(_ array: TempArray, _ cdb: [UInt8], dataOut: [UInt8] = [], dataIn: Int = 0) throws -> LinkSCSIResult {
        let response = array.array.handle(LinkSCSICommand(cdb: cdb, dataOut: dataOut, dataInLength: dataIn).request(drive: 0))
        #expect(response.status == .ok, "\(response.message)")
        return try LinkSCSIResult.decode(response.payload)
    }

    func nvme(_ array: TempArray, admin: Bool = true, opcode: UInt8, nsid: UInt32 = 0, cdw: [Int: UInt32] = [:],
              dataOut: [UInt8] = [], dataIn: Int = 0) throws -> LinkNVMeResult {
        var entry = [UInt8](repeating: 0, count: 64)
        entry[0] = opcode
        for i in 0..<4 { entry[4 + i] = UInt8(truncatingIfNeeded: nsid >> (8 * UInt32(i))) }
        for (n, value) in cdw { for i in 0..<4 { entry[n * 4 + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) } }
        let response = array.array.handle(LinkNVMeCommand(entry: entry, dataOut: dataOut, dataInLength: dataIn).request(drive: 0, admin: admin))
        #expect(response.status == .ok, "\(response.message)")
        return try LinkNVMeResult.decode(response.payload)
    }

    func sense(_ result: LinkSCSIResult) -> SenseData? { SenseData(result.sense) }

    @Test("SAS: INQUIRY, VPD pages, READ CAPACITY(16), and ATA PASS-THROUGH refused as an unknown opcode")
    func sasIdentity() throws {
        let array = try TempArray(kind: .sas)
        let id = array.drive.identity
        let standard = try scsi(array, [0x12, 0, 0, 0, 96, 0], dataIn: 96)
        #expect(standard.status == 0 && standard.dataIn.count == 96)
        let inquiry = try #require(IdentityPages.standardInquiry(standard.dataIn))
        #expect(inquiry.peripheralDeviceType == 0 && inquiry.vendor == "SEDSIM" && inquiry.product == "SAS Opal 2")
        // The allocation length truncates (sedutil checks for exactly 36 bytes).
        #expect(try scsi(array, [0x12, 0, 0, 0, 36, 0], dataIn: 512).dataIn.count == 36)
        #expect(IdentityPages.supportedPages(try scsi(array, [0x12, 1, 0x00, 0, 255, 0], dataIn: 255).dataIn) == [0x00, 0x80, 0x83])
        let serial = try #require(IdentityPages.unitSerialNumber(try scsi(array, [0x12, 1, 0x80, 0, 255, 0], dataIn: 255).dataIn))
        #expect(String(decoding: serial, as: UTF8.self) == id.serial.trimmingCharacters(in: .whitespaces))
        #expect(IdentityPages.naaIdentifier(try scsi(array, [0x12, 1, 0x83, 0, 255, 0], dataIn: 255).dataIn) == id.wwn)
        let noPage = try scsi(array, [0x12, 1, 0x89, 0, 255, 0], dataIn: 255)
        #expect(noPage.status == 2 && sense(noPage)?.condition == .illegalRequest && sense(noPage)?.additionalSenseCode == 0x24)
        let capacity = try #require(IdentityPages.readCapacity16(
            try scsi(array, [0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], dataIn: 32).dataIn))
        #expect(capacity.blockCount == id.blockCount && capacity.blockSize == 512)
        let ata = try scsi(array, SecurityCommands.ataPassThrough16(.receive, protocolID: 1, spSpecific: 1, length: 512), dataIn: 512)
        #expect(ata.status == 2 && sense(ata)?.additionalSenseCode == 0x20)
        let unknown = try scsi(array, [0xC0, 0, 0, 0, 0, 0])
        #expect(sense(unknown)?.condition == .illegalRequest && sense(unknown)?.additionalSenseCode == 0x20)
        #expect(try scsi(array, [0x00, 0, 0, 0, 0, 0]).status == 0)
        // A SAS drive takes no NVMe commands.
        let refused = array.array.handle(LinkNVMeCommand(entry: [0x06]).request(drive: 0, admin: true))
        #expect(refused.status == .illegalRequest)
    }

    @Test("SAS MODE SENSE(6/10): Read-Write Error Recovery, Caching (WCE 0: writes durable), Control and Informational Exceptions pages, block descriptors, changeable values all zero; saved values, other pages and subpages refused with the right sense")
    func modeSense() throws {
        let array = try TempArray(kind: .sas)
        let id = array.drive.identity
        let caching = try scsi(array, [0x5A, 0, 0x08, 0, 0, 0, 0, 0x01, 0x00, 0], dataIn: 256)
        #expect(caching.status == 0)
        let data = caching.dataIn
        #expect(data.count == 8 + 8 + 20 && Int(data[0]) << 8 | Int(data[1]) == data.count - 2 && data[7] == 8, "\(data)")
        #expect(Array(data[13...15]) == [0x00, 0x02, 0x00], "block length 512 in the short descriptor")
        #expect(data[16] == 0x08 && data[17] == 0x12 && data[18] & 0x04 == 0, "caching page, WCE clear")
        // MODE SENSE(6), every page, no block descriptor: the pages in ascending order.
        let all = try scsi(array, [0x1A, 0x08, 0x3F, 0, 255, 0], dataIn: 255).dataIn
        #expect(all[3] == 0 && Int(all[0]) == all.count - 1)
        var codes: [UInt8] = []
        var offset = 4
        while offset + 1 < all.count { codes.append(all[offset] & 0x3F); offset += 2 + Int(all[offset + 1]) }
        #expect(codes == [0x01, 0x08, 0x0A, 0x1C] && offset == all.count, "\(codes)")
        // Changeable values: nothing can be changed.
        let changeable = try scsi(array, [0x1A, 0x08, 0x48, 0, 255, 0], dataIn: 255).dataIn
        #expect(changeable.count == 4 + 20 && changeable[6...].allSatisfy { $0 == 0 })
        // A long LBA descriptor on request, with the block count.
        let long = try scsi(array, [0x5A, 0x10, 0x08, 0, 0, 0, 0, 0x01, 0x00, 0], dataIn: 256).dataIn
        #expect(long[4] & 0x01 == 1 && long[7] == 16 && SCSIPagesProbe.bigEndian(long, 8, 8) == id.blockCount)
        for (cdb, asc) in [([UInt8](arrayLiteral: 0x1A, 0, 0xC8, 0, 255, 0), UInt8(0x39)), ([0x1A, 0, 0x19, 0, 255, 0], 0x24),
                           ([0x1A, 0, 0x08, 0x01, 255, 0], 0x24)] {
            let refused = try scsi(array, cdb, dataIn: 255)
            #expect(refused.status == 2 && sense(refused)?.condition == .illegalRequest && sense(refused)?.additionalSenseCode == asc, "\(cdb)")
        }
        // The allocation length truncates.
        #expect(try scsi(array, [0x1A, 0, 0x3F, 0, 4, 0], dataIn: 255).dataIn.count == 4)
    }

    @Test("MODE SELECT takes a page back unchanged and refuses a change (INVALID FIELD IN PARAMETER LIST) or a save")
    func modeSelect() throws {
        let array = try TempArray(kind: .sas)
        let sensed = try scsi(array, [0x5A, 0x08, 0x08, 0, 0, 0, 0, 0x01, 0x00, 0], dataIn: 256).dataIn
        var list = [UInt8](repeating: 0, count: 8) + Array(sensed[8...])
        #expect(try scsi(array, [0x55, 0x10, 0, 0, 0, 0, 0, 0, UInt8(list.count), 0], dataOut: list).status == 0)
        list[8 + 2] |= 0x04  // WCE on
        let changed = try scsi(array, [0x55, 0x10, 0, 0, 0, 0, 0, 0, UInt8(list.count), 0], dataOut: list)
        #expect(changed.status == 2 && sense(changed)?.additionalSenseCode == 0x26)
        let save = try scsi(array, [0x15, 0x11, 0, 0, 0, 0])
        #expect(save.status == 2 && sense(save)?.additionalSenseCode == 0x24)
        let short = try scsi(array, [0x55, 0x10, 0, 0, 0, 0, 0, 0, 40, 0], dataOut: [0, 0])
        #expect(short.status == 2 && sense(short)?.additionalSenseCode == 0x1A)
    }

    @Test("LOG SENSE on SAS: supported pages, temperature (parameter pointer honoured), self-test results, informational exceptions; a SATA drive behind libata has no LOG SENSE")
    func logSense() throws {
        let array = try TempArray(kind: .sas)
        let supported = try scsi(array, [0x4D, 0, 0x40, 0, 0, 0, 0, 0x01, 0x00, 0], dataIn: 256).dataIn
        #expect(Array(supported.dropFirst(4)) == [0x00, 0x0D, 0x10, 0x2F], "\(supported)")
        let temperature = try scsi(array, [0x4D, 0, 0x4D, 0, 0, 0, 0, 0x01, 0x00, 0], dataIn: 256).dataIn
        #expect(temperature[0] & 0x3F == 0x0D && Array(temperature[4...]) == [0, 0, 0x03, 2, 0, 35, 0, 1, 0x03, 2, 0, 65])
        let fromReference = try scsi(array, [0x4D, 0, 0x4D, 0, 0, 0, 1, 0x01, 0x00, 0], dataIn: 256).dataIn
        #expect(Array(fromReference[4...]) == [0, 1, 0x03, 2, 0, 65])
        let selfTests = try scsi(array, [0x4D, 0, 0x50, 0, 0, 0, 0, 0x04, 0x00, 0], dataIn: 1024).dataIn
        #expect(selfTests.count == 4 + 20 * 20)
        let exceptions = try scsi(array, [0x4D, 0, 0x6F, 0, 0, 0, 0, 0x01, 0x00, 0], dataIn: 256).dataIn
        #expect(Array(exceptions[4...]) == [0, 0, 0x03, 3, 0, 0, 35])
        let unknown = try scsi(array, [0x4D, 0, 0x42, 0, 0, 0, 0, 0x01, 0x00, 0], dataIn: 256)
        #expect(unknown.status == 2 && sense(unknown)?.additionalSenseCode == 0x24)
        let sata = try TempArray(kind: .sata)
        let none = try scsi(sata, [0x4D, 0, 0x40, 0, 0, 0, 0, 0x01, 0x00, 0], dataIn: 256)
        #expect(none.status == 2 && sense(none)?.additionalSenseCode == 0x20)
    }

    @Test("REPORT SUPPORTED OPERATION CODES: a SAS drive lists every command (service actions flagged, timeouts on request) and answers one; SATA behind libata answers only the one-command forms, without LOG SENSE")
    func reportSupportedOperationCodes() throws {
        let array = try TempArray(kind: .sas)
        let all = try scsi(array, [0xA3, 0x0C, 0x00, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], dataIn: 4096).dataIn
        let length = Int(SCSIPagesProbe.bigEndian(all, 0, 4))
        #expect(length == all.count - 4 && length % 8 == 0)
        let descriptors = stride(from: 4, to: all.count, by: 8).map { Array(all[$0..<($0 + 8)]) }
        #expect(descriptors.contains { $0[0] == 0x4D } && descriptors.contains { $0[0] == 0xA2 } && descriptors.contains { $0[0] == 0x5A })
        #expect(descriptors.contains { $0[0] == 0x9E && $0[3] == 0x10 && $0[5] & 0x01 == 1 }, "READ CAPACITY(16) by its service action")
        let timed = try scsi(array, [0xA3, 0x0C, 0x80, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], dataIn: 4096).dataIn
        #expect(timed.count - 4 == descriptors.count * 20)
        let read10 = try scsi(array, [0xA3, 0x0C, 0x01, 0x28, 0, 0, 0, 0, 0, 64, 0, 0], dataIn: 64).dataIn
        #expect(read10[1] & 0x07 == 3 && read10[3] == 10 && read10[4] == 0x28)
        let needsAction = try scsi(array, [0xA3, 0x0C, 0x01, 0x9E, 0, 0, 0, 0, 0, 64, 0, 0], dataIn: 64)
        #expect(needsAction.status == 2 && sense(needsAction)?.additionalSenseCode == 0x24)
        #expect(try scsi(array, [0xA3, 0x0C, 0x02, 0x9E, 0, 0x10, 0, 0, 0, 64, 0, 0], dataIn: 64).dataIn[1] & 0x07 == 3)
        #expect(try scsi(array, [0xA3, 0x0C, 0x01, 0xC0, 0, 0, 0, 0, 0, 64, 0, 0], dataIn: 64).dataIn[1] & 0x07 == 1)
        let sata = try TempArray(kind: .sata)
        #expect(try scsi(sata, [0xA3, 0x0C, 0x01, 0x4D, 0, 0, 0, 0, 0, 64, 0, 0], dataIn: 64).dataIn[1] & 0x07 == 1)
        #expect(try scsi(sata, [0xA3, 0x0C, 0x01, 0x85, 0, 0, 0, 0, 0, 64, 0, 0], dataIn: 64).dataIn[1] & 0x07 == 3)
        let list = try scsi(sata, [0xA3, 0x0C, 0x00, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], dataIn: 4096)
        #expect(list.status == 2 && sense(list)?.additionalSenseCode == 0x24)
    }

    @Test("SECURITY PROTOCOL IN/OUT: INC_512 = 0 counts bytes, INC_512 = 1 counts 512-byte blocks (SPC-4)")
    func securityLengths() throws {
        let array = try TempArray(kind: .sas)
        let bytes = try scsi(array, [0xA2, 0x01, 0x00, 0x01, 0x00, 0, 0, 0, 0x02, 0x00, 0, 0], dataIn: 4096)
        #expect(bytes.dataIn.count == 512)
        let blocks = try scsi(array, [0xA2, 0x01, 0x00, 0x01, 0x80, 0, 0, 0, 0, 4, 0, 0], dataIn: 4096)
        #expect(blocks.dataIn.count == 2048)
        let discovery = try Level0Discovery.decode(blocks.dataIn)
        #expect(discovery.opal != nil && discovery.locking?.lockingEnabled == false)
        let protocols = try scsi(array, [0xA2, 0x00, 0, 0, 0x80, 0, 0, 0, 0, 1, 0, 0], dataIn: 512)
        #expect(Array(protocols.dataIn.prefix(11)) == [0, 0, 0, 0, 0, 0, 0, 3, 0x00, 0x01, 0x02])
        // OUT whose transfer length exceeds the data sent is a parameter list length error.
        let short = try scsi(array, [0xB5, 0x01, 0x10, 0x00, 0x80, 0, 0, 0, 0, 1, 0, 0], dataOut: [UInt8](repeating: 0, count: 100))
        #expect(sense(short)?.additionalSenseCode == 0x1A)
        let badComID = try scsi(array, [0xA2, 0x01, 0x77, 0x77, 0, 0, 0, 0, 0x02, 0x00, 0, 0], dataIn: 512)
        #expect(sense(badComID)?.condition == .illegalRequest)
    }

    @Test("SATA: IDENTIFY DEVICE with checksum and Trusted Computing bit, page 0x89, TRUSTED RECEIVE, CK_COND and ABORT")
    func sataPassThrough() throws {
        let array = try TempArray(kind: .sata)
        let id = array.drive.identity
        let identifyCDB: [UInt8] = [0xA1, 4 << 1, 0x0E, 0, 1, 0, 0, 0, 0, 0xEC, 0, 0]
        let identify = try scsi(array, identifyCDB, dataIn: 512)
        #expect(identify.status == 0 && identify.sense.isEmpty && identify.dataIn.count == 512)
        #expect(identify.dataIn[510] == 0xA5 && identify.dataIn.reduce(UInt8(0), &+) == 0, "integrity word")
        let parsed = try #require(IdentityPages.ataIdentify(identify.dataIn))
        #expect(parsed.serialNumberField == Array(id.serial.utf8) && parsed.model == id.model)
        #expect(parsed.trustedComputingSupported && parsed.wwn == id.wwn && parsed.sectors == id.blockCount)
        let page = try scsi(array, [0x12, 1, 0x89, 0x02, 0x3C, 0], dataIn: 572)
        #expect(page.dataIn.count == 572 && IdentityPages.ataIdentifyFromInformationPage(page.dataIn) == identify.dataIn)
        #expect(IdentityPages.standardInquiry(try scsi(array, [0x12, 0, 0, 0, 96, 0], dataIn: 96).dataIn)?.vendor == "ATA")

        for build in [SecurityCommands.ataPassThrough12, SecurityCommands.ataPassThrough16] {
            let received = try scsi(array, build(.receive, 0x01, 0x0001, 1024), dataIn: 1024)
            #expect(received.status == 0 && received.dataIn.count == 1024)
            #expect(try Level0Discovery.decode(received.dataIn).opal != nil)
        }
        // CK_COND: success still returns the ATA registers, as RECOVERED ERROR with a status descriptor.
        var checked = SecurityCommands.ataPassThrough16(.receive, protocolID: 0x00, spSpecific: 0, length: 512)
        checked[2] |= 0x20
        let registers = try scsi(array, checked, dataIn: 512)
        #expect(registers.status == 2 && sense(registers)?.condition == .recovered && sense(registers)?.ataStatus == 0x50)
        #expect(registers.dataIn.count == 512)
        // An ATA command the drive does not implement is aborted: ABRT in the error register.
        let aborted = try scsi(array, [0xA1, 4 << 1, 0x0E, 0, 1, 0, 0, 0, 0, 0x2F, 0, 0], dataIn: 512)
        #expect(sense(aborted)?.condition == .abortedCommand && sense(aborted)?.ataStatus == 0x51 && sense(aborted)?.ataError == 0x04)
    }

    @Test("SAT layers: pass-through-only refuses SECURITY PROTOCOL IN, ata12-only refuses ATA PASS-THROUGH(16)",
          arguments: [SATLayer.passThroughOnly, .ata12Only])
    func satLayers(_ layer: SATLayer) throws {
        var settings = DriveSettings()
        settings.satLayer = layer
        let array = try TempArray(settings: settings, kind: .sata)
        let security = try scsi(array, SecurityCommands.scsiSecurityProtocol(.receive, protocolID: 1, spSpecific: 1, length: 512), dataIn: 512)
        #expect(sense(security)?.additionalSenseCode == 0x20)
        let ata16 = try scsi(array, SecurityCommands.ataPassThrough16(.receive, protocolID: 1, spSpecific: 1, length: 512), dataIn: 512)
        #expect((ata16.status == 0) == (layer == .passThroughOnly))
        let ata12 = try scsi(array, SecurityCommands.ataPassThrough12(.receive, protocolID: 1, spSpecific: 1, length: 512), dataIn: 512)
        #expect(ata12.status == 0)
    }

    @Test("SCSI media: WRITE(10)/READ(16) round trip through the range's encryption; out-of-range LBAs refused")
    func scsiMedia() throws {
        let array = try TempArray(kind: .sas)
        let block = (0..<512).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(try scsi(array, [0x2A, 0, 0, 0, 0, 9, 0, 0, 1, 0], dataOut: block).status == 0)
        let read = try scsi(array, [0x88, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0], dataIn: 512)
        #expect(read.dataIn == block)
        let past = try scsi(array, [0x28, 0, 0xFF, 0xFF, 0xFF, 0xF0, 0, 0, 1, 0], dataIn: 512)
        #expect(sense(past)?.additionalSenseCode == 0x21)
        let short = try scsi(array, [0x2A, 0, 0, 0, 0, 9, 0, 0, 2, 0], dataOut: block)
        #expect(sense(short)?.condition == .illegalRequest)
    }

    @Test("NVMe: Identify Controller and Namespace, Security Receive, I/O round trip, and errors with Do Not Retry")
    func nvmeController() throws {
        let array = try TempArray(kind: .nvme, blockSize: 4096)
        let id = array.drive.identity
        let controllerData = try nvme(array, opcode: 0x06, cdw: [10: 1], dataIn: 4096)
        #expect(controllerData.status == 0)
        let controller = try #require(IdentityPages.nvmeIdentifyController(controllerData.dataIn))
        #expect(controller.serialNumberField == Array(id.serial.utf8) && controller.model == id.model && controller.securitySendReceiveSupported)
        let namespace = try #require(IdentityPages.nvmeIdentifyNamespace(try nvme(array, opcode: 0x06, nsid: 1, cdw: [10: 0], dataIn: 4096).dataIn))
        #expect(namespace.blockCount == id.blockCount && namespace.blockSize == 4096 && namespace.eui64 == id.wwn)
        #expect(try nvme(array, opcode: 0x06, nsid: 2, cdw: [10: 0], dataIn: 4096).status == 0x400B)

        let received = try nvme(array, opcode: 0x82, cdw: [10: 0x0100_0100, 11: 2048], dataIn: 2048)
        #expect(received.status == 0)
        #expect(try Level0Discovery.decode(received.dataIn).opal != nil)
        #expect(try nvme(array, opcode: 0x82, cdw: [10: 0x0177_7700, 11: 512], dataIn: 512).status == 0x4002)
        #expect(try nvme(array, opcode: 0xC5).status == 0x4001)

        let block = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        #expect(try nvme(array, admin: false, opcode: 0x01, nsid: 1, cdw: [10: 3, 12: 0], dataOut: block).status == 0)
        #expect(try nvme(array, admin: false, opcode: 0x02, nsid: 1, cdw: [10: 3, 12: 0], dataIn: 4096).dataIn == block)
        #expect(try nvme(array, admin: false, opcode: 0x02, nsid: 1, cdw: [10: 0xFFFF_FF00], dataIn: 4096).status == 0x4080)
        #expect(try nvme(array, admin: false, opcode: 0x02, nsid: 7, cdw: [10: 0], dataIn: 4096).status == 0x400B)
        // An NVMe drive takes no SCSI commands.
        #expect(array.array.handle(LinkSCSICommand(cdb: [0x12, 0, 0, 0, 36, 0], dataInLength: 36).request(drive: 0)).status == .illegalRequest)
    }

    @Test("malformed link payloads for device commands are refused, never trap")
    func malformedCommands() throws {
        let array = try TempArray(kind: .sas)
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let payload = (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            for op in [LinkOperation.scsiCommand, .nvmeAdminCommand, .nvmeIOCommand] {
                _ = array.array.handle(LinkRequest(op, drive: 0, length: UInt32.random(in: 0...4096, using: &random), payload: payload))
            }
        }
        #expect(array.array.handle(LinkRequest(.scsiCommand, drive: 0, payload: [3, 0x12, 0, 0])).status == .illegalRequest)
    }
}

/// Big-endian fields of answers the tests read.
enum SCSIPagesProbe {
    static func bigEndian(_ bytes: [UInt8], _ offset: Int, _ width: Int) -> UInt64 {
        (0..<width).reduce(UInt64(0)) { $0 << 8 | UInt64(offset + $1 < bytes.count ? bytes[offset + $1] : 0) }
    }
}
