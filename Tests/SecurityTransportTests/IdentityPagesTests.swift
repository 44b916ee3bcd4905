import Foundation
import TestSupport
@testable import SecurityTransport
import Testing

@Suite("Identity pages from devices, parsed without trusting them")
struct IdentityPagesTests {
    @Test("standard INQUIRY: device type, vendor, product, revision trimmed")
    func standardInquiry() throws {
        var data = [UInt8](repeating: 0, count: 36)
        data[0] = 0x00
        data.replaceSubrange(8..<16, with: Array("SEAGATE ".utf8))
        data.replaceSubrange(16..<32, with: Array("ST4000NM0023    ".utf8))
        data.replaceSubrange(32..<36, with: Array("0004".utf8))
        let inquiry = try #require(IdentityPages.standardInquiry(data))
        #expect(inquiry == IdentityPages.Inquiry(peripheralDeviceType: 0, vendor: "SEAGATE", product: "ST4000NM0023", revision: "0004",
                                                 vendorField: Array("SEAGATE ".utf8)))
        #expect(IdentityPages.standardInquiry(Array(data.prefix(35))) == nil)
    }

    @Test("VPD pages: page code and length checked; the NAA designator found among others")
    func vpd() {
        #expect(IdentityPages.supportedPages([0, 0x00, 0, 3, 0x00, 0x80, 0x83]) == [0x00, 0x80, 0x83])
        #expect(IdentityPages.supportedPages([0, 0x80, 0, 3, 0x00, 0x80, 0x83]).isEmpty, "wrong page code")
        #expect(IdentityPages.supportedPages([0, 0x00, 0, 9, 0x00]).isEmpty, "length beyond the data")
        #expect(IdentityPages.unitSerialNumber([0, 0x80, 0, 4] + Array("Z1Z0".utf8)) == Array("Z1Z0".utf8))
        // A T10 vendor ID designator (type 1), a target-port NAA (association 1), then the LU's NAA.
        let t10: [UInt8] = [0x02, 0x01, 0x00, 0x04] + Array("ATA ".utf8)
        let portNAA: [UInt8] = [0x01, 0x13, 0x00, 0x08, 0x50, 0, 0, 0, 0, 0, 0, 1]
        let luNAA: [UInt8] = [0x01, 0x03, 0x00, 0x08, 0x50, 0x00, 0xC5, 0x00, 0x12, 0x34, 0x56, 0x78]
        let body = t10 + portNAA + luNAA
        #expect(IdentityPages.naaIdentifier([0, 0x83, 0, UInt8(body.count)] + body) == 0x5000_C500_1234_5678)
        #expect(IdentityPages.naaIdentifier([0, 0x83, 0, 8, 0x01, 0x03, 0x00, 0x08, 0x50]) == nil)
    }

    @Test("READ CAPACITY(16): last LBA + 1 blocks of the reported length")
    func capacity() {
        let data: [UInt8] = [0, 0, 0, 0, 0x1D, 0x1C, 0x59, 0x6F, 0, 0, 0x10, 0] + [UInt8](repeating: 0, count: 20)
        #expect(IdentityPages.readCapacity16(data) == IdentityPages.Capacity(blockCount: 0x1D1C_5970, blockSize: 4096))
        #expect(IdentityPages.readCapacity16([UInt8](repeating: 0xFF, count: 12)) == nil)
    }

    @Test("ATA IDENTIFY DEVICE: byte-swapped strings, raw serial field, Trusted Computing, WWN, LBA48, 4K sectors")
    func ataIdentify() throws {
        var words = [UInt16](repeating: 0, count: 256)
        func put(_ text: String, _ first: Int, _ count: Int) {
            let bytes = Array(text.utf8) + [UInt8](repeating: 0x20, count: count * 2 - text.utf8.count)
            for i in 0..<count { words[first + i] = UInt16(bytes[2 * i]) << 8 | UInt16(bytes[2 * i + 1]) }
        }
        put("  WD-WX31A", 10, 10)
        put("01.01A01", 23, 4)
        put("WDC WD10EZEX-08WN4A0", 27, 20)
        words[48] = 0x4001
        words[83] = 0x0400
        words[84] = 0x4100
        (words[100], words[101], words[102], words[103]) = (0x6DB0, 0x7470, 0x0000, 0x0000)
        words[106] = 0x5000
        (words[117], words[118]) = (2048, 0)
        (words[108], words[109], words[110], words[111]) = (0x5001, 0x4EE0, 0x5A3B, 0x1234)
        let data = words.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let id = try #require(IdentityPages.ataIdentify(data))
        #expect(id.serialNumberField == Array("  WD-WX31A          ".utf8), "salt keeps the padding")
        #expect(id.model == "WDC WD10EZEX-08WN4A0" && id.firmware == "01.01A01")
        #expect(id.trustedComputingSupported && id.wwn == 0x5001_4EE0_5A3B_1234)
        #expect(id.sectors == 0x7470_6DB0 && id.logicalSectorSize == 4096)
        words[48] = 0x0001   // validity bits wrong: not claimed
        #expect(IdentityPages.ataIdentify(words.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })?.trustedComputingSupported == false)
    }

    @Test("NVMe Identify Controller and Namespace")
    func nvmeIdentify() throws {
        var controller = [UInt8](repeating: 0, count: 4096)
        controller.replaceSubrange(4..<24, with: Array("S4EWNX0R123456      ".utf8))
        controller.replaceSubrange(24..<64, with: Array("Samsung SSD 970 EVO Plus 1TB".utf8) + [UInt8](repeating: 0x20, count: 12))
        controller.replaceSubrange(64..<72, with: Array("2B2QEXM7".utf8))
        controller[256] = 0x17
        let c = try #require(IdentityPages.nvmeIdentifyController(controller))
        #expect(c.serialNumberField == Array("S4EWNX0R123456      ".utf8) && c.model == "Samsung SSD 970 EVO Plus 1TB")
        #expect(c.firmware == "2B2QEXM7" && c.securitySendReceiveSupported)
        var namespace = [UInt8](repeating: 0, count: 4096)
        namespace[0] = 0xB0; namespace[1] = 0x6D; namespace[2] = 0x70; namespace[3] = 0x74
        namespace[26] = 0x01                                  // format 1 in use
        namespace[128 + 2] = 9; namespace[132 + 2] = 12
        namespace.replaceSubrange(120..<128, with: [0x00, 0x25, 0x38, 0x5A, 0x91, 0xB0, 0x12, 0x34])
        let n = try #require(IdentityPages.nvmeIdentifyNamespace(namespace))
        #expect(n.blockCount == 0x7470_6DB0 && n.blockSize == 4096 && n.eui64 == 0x0025_385A_91B0_1234)
        namespace[132 + 2] = 40
        #expect(IdentityPages.nvmeIdentifyNamespace(namespace) == nil, "impossible LBA data size")
    }

    @Test("100,000 random and truncated buffers never trap any parser")
    func mutation() {
        var rng = SeededRandom(seed: 0x5ED_10C4)
        for _ in 0..<100_000 {
            let length = Int(rng.next() % 4200)
            let data = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = IdentityPages.standardInquiry(data)
            _ = IdentityPages.supportedPages(data)
            _ = IdentityPages.naaIdentifier([0, 0x83] + data)
            _ = IdentityPages.ataIdentifyFromInformationPage([0, 0x89] + data)
            _ = IdentityPages.readCapacity16(data)
            _ = IdentityPages.ataIdentify(data)
            _ = IdentityPages.nvmeIdentifyController(data)
            _ = IdentityPages.nvmeIdentifyNamespace(data)
        }
    }

    @Test("NVMe submission queue entry: opcode, nsid, cdw10, cdw11 little-endian at their offsets")
    func submissionEntry() {
        let entry = SecurityCommands.nvmeSecurity(.receive, protocolID: 0x01, spSpecific: 0x0001, length: 2048).submissionEntry()
        var expected = [UInt8](repeating: 0, count: 64)
        expected[0] = 0x82
        expected.replaceSubrange(40..<44, with: [0x00, 0x01, 0x00, 0x01])
        expected.replaceSubrange(44..<48, with: [0x00, 0x08, 0x00, 0x00])
        #expect(entry == expected)
        let identify = NVMeAdminCommand.identify(cns: 1, namespaceID: 0xFFFF_FFFF).submissionEntry()
        #expect(identify[0] == 0x06 && Array(identify[4..<8]) == [0xFF, 0xFF, 0xFF, 0xFF] && identify[40] == 1)
    }

    @Test("operating-system errors say what to grant or check")
    func osErrors() {
        let denied = PassThroughDevice.osError(EACCES, path: "/dev/sdb", during: "open")
        #expect(denied.code == .permissionDenied && denied.message.contains("CAP_SYS_RAWIO") && denied.message.contains("CAP_SYS_ADMIN"))
        #expect(PassThroughDevice.osError(EPERM, path: "/dev/sdb", during: "open").code == .permissionDenied)
        #expect(PassThroughDevice.osError(ENOENT, path: "/dev/sdq", during: "open").code == .unreachable)
        #expect(PassThroughDevice.osError(ENOTTY, path: "/dev/vda", during: "SG_IO").code == .unsupportedProtocol)
    }

    @Test("real nodes: a missing path and a node without SCSI pass-through fail clearly")
    func realNodes() throws {
        #expect(throws: TransportError.self) { try PassThroughTransport.open(path: "/dev/sedlock-no-such-node") }
        do {
            _ = try PassThroughTransport.open(path: "/dev/null")
            Issue.record("/dev/null accepted as a drive")
        } catch {
            #expect(error.code == .unsupportedProtocol && error.message.contains("pass-through"))
        }
    }
}
