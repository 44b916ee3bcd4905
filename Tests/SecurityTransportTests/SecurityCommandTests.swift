import SecurityTransport
import TestSupport
import Testing

@Suite("Security command blocks, byte for byte")
struct SecurityCommandTests {
    @Test("SCSI SECURITY PROTOCOL IN/OUT: opcode, protocol, ComID big-endian, INC_512 = 0, byte length")
    func scsi() {
        #expect(SecurityCommands.scsiSecurityProtocol(.receive, protocolID: 0x01, spSpecific: 0x0001, length: 2048)
                == [0xA2, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00])
        #expect(SecurityCommands.scsiSecurityProtocol(.send, protocolID: 0x02, spSpecific: 0x1004, length: 0x01_0203)
                == [0xB5, 0x02, 0x10, 0x04, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x00, 0x00])
    }

    @Test("ATA PASS-THROUGH(12): PIO in/out, count = blocks, LBA mid/high = ComID, command 5C/5E")
    func ata12() {
        let receive = SecurityCommands.ataPassThrough12(.receive, protocolID: 0x01, spSpecific: 0x07FE, length: 1024)
        #expect(receive == [0xA1, 0x08, 0x0E, 0x01, 0x02, 0x00, 0xFE, 0x07, 0x40, 0x5C, 0x00, 0x00])
        let send = SecurityCommands.ataPassThrough12(.send, protocolID: 0x01, spSpecific: 0x1000, length: 512)
        #expect(send[1] == 0x0A && send[2] == 0x06 && send[4] == 1 && send[6] == 0x00 && send[7] == 0x10 && send[9] == 0x5E)
    }

    @Test("ATA PASS-THROUGH(16): feature cdb[4], nsect cdb[6], lbal cdb[8], lbam cdb[10], lbah cdb[12], command cdb[14] (libata)")
    func ata16() {
        let cdb = SecurityCommands.ataPassThrough16(.receive, protocolID: 0x01, spSpecific: 0x1000, length: 131_072)
        #expect(cdb.count == 16 && cdb[0] == 0x85 && cdb[1] == 0x08 && cdb[2] == 0x0E)
        #expect(cdb[4] == 0x01 && cdb[6] == 0x00 && cdb[8] == 0x01 && cdb[10] == 0x00 && cdb[12] == 0x10 && cdb[14] == 0x5C)
    }

    @Test("NVMe Security Receive/Send: opcode, nsid 0, cdw10 = SECP<<24 | SPSP<<8, cdw11 = length")
    func nvme() {
        let receive = SecurityCommands.nvmeSecurity(.receive, protocolID: 0x01, spSpecific: 0x0001, length: 2048)
        #expect(receive.opcode == 0x82 && receive.namespaceID == 0 && receive.cdw10 == 0x0100_0100 && receive.cdw11 == 2048)
        let bytes = SecurityCommands.nvmeSecurity(.send, protocolID: 0x02, spSpecific: 0x0005, length: 512)
            .bytes(dataAddress: 0x1122_3344_5566_7788)
        #expect(bytes.count == 72 && bytes[0] == 0x81)
        #expect(Array(bytes[24..<32]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(Array(bytes[36..<40]) == [0x00, 0x02, 0x00, 0x00])      // data_len
        #expect(Array(bytes[40..<44]) == [0x00, 0x05, 0x00, 0x02])      // cdw10 little-endian: 0x02000500
        #expect(Array(bytes[44..<48]) == [0x00, 0x02, 0x00, 0x00])      // cdw11
    }
}

@Suite("Device status decoding")
struct DeviceStatusTests {
    @Test("fixed and descriptor sense data name the condition")
    func sense() throws {
        let dataProtect = try #require(SenseData([0x70, 0, 0x07, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0x02, 0, 0, 0, 0]))
        #expect(dataProtect.condition == .dataProtect)
        #expect(dataProtect.transportError(device: "d").code == .dataProtect)
        let unsupported = try #require(SenseData([0x72, 0x05, 0x24, 0x00, 0, 0, 0, 0]))
        #expect(unsupported.transportError(device: "d").code == .unsupportedProtocol)
        #expect(unsupported.description.contains("invalid field in CDB"))
        // An ATA Status Return descriptor (SAT) carries the ATA error and status registers.
        let ata = try #require(SenseData([0x72, 0x01, 0x00, 0x1D, 0, 0, 0, 14,
                                          0x09, 0x0C, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x51]))
        #expect(ata.ataError == 0x04 && ata.ataStatus == 0x51)
        #expect(SenseData([]) == nil && SenseData([0x00, 1, 2]) == nil)
    }

    @Test("NVMe status: access denied is a locked range, invalid field an unsupported protocol")
    func nvme() {
        #expect(NVMeStatus(0x0286).transportError(device: "d").code == .dataProtect)
        #expect(NVMeStatus(0x0002).transportError(device: "d").code == .unsupportedProtocol)
        #expect(NVMeStatus(0x0000).isSuccess && NVMeStatus(0x4006).doNotRetry)
    }

    @Test("sense decoding never traps on 100,000 random and truncated inputs")
    func randomSense() {
        var rng = SeededRandom(seed: 7)
        func next() -> UInt64 { rng.next() }
        var parsed = 0
        for _ in 0..<100_000 {
            var bytes = (0..<Int(next() % 40)).map { _ in UInt8(truncatingIfNeeded: next()) }
            if !bytes.isEmpty { bytes[0] = [0x70, 0x71, 0x72, 0x73, bytes[0]][Int(next() % 5)] }
            if let sense = SenseData(bytes) {
                parsed += 1
                _ = sense.description
            }
        }
        #expect(parsed > 0)
    }
}
