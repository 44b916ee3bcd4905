import Foundation
import Keys
import Opal
import SimulatorTestSupport
import Testing

@Suite("PIN derivation")
struct PinDerivationTests {
    let serial = Array("SIMABCDEFGHJ        ".utf8)

    func hex(_ s: Secret) -> String { s.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() } }

    @Test("sedutil SHA-1: PBKDF2-HMAC-SHA1, 75,000 iterations, serial salt (vector from Python's hashlib)")
    func sedutilSHA1() throws {
        let pin = try PinDerivation.sedutilSHA1.pin(from: secret("password"), serialNumberField: serial)
        #expect(hex(pin) == "6ba501148464e018961a2739296a21996f29f00f11fb42c28f7781820acdd17d")
    }

    @Test("sedutil SHA-512 variant (vector from Python's hashlib)")
    func sedutilSHA512() throws {
        let pin = try PinDerivation.sedutilSHA512.pin(from: secret("password"), serialNumberField: serial)
        #expect(hex(pin) == "ad1f893dc6fbfeea79b90ef578ccab7a78164b541b99259a79fa2e3bd546e4c5")
    }

    @Test("a short serial field is padded with spaces as drives report it")
    func padding() throws {
        let short = try PinDerivation.sedutilSHA1.pin(from: secret("password"), serialNumberField: Array("SIMABCDEFGHJ".utf8))
        #expect(hex(short) == "6ba501148464e018961a2739296a21996f29f00f11fb42c28f7781820acdd17d")
    }

    @Test("sedutil salt variants: trimmed, NUL-padded, ATA unswapped (vectors from Python's hashlib)",
          arguments: [(SerialSalt.trimmed, "3510d0c1b08aa0ed5e623b03fcf2eb87cb60582f8785f4110e6d121f4eaf3f59"),
                      (.nulPadded, "1a794f7446ab9af8b2c38a0ab46635e90ca4216eace71b8c7e38efc07cea39b3"),
                      (.ataUnswapped, "582f911015315496d6977e228333fa38072ed3d09a8bb993ad98517563a2a715"),
                      (.reported, "6ba501148464e018961a2739296a21996f29f00f11fb42c28f7781820acdd17d")])
    func saltVariants(salt: SerialSalt, expected: String) throws {
        #expect(hex(try PinDerivation.sedutilSHA1.pin(from: secret("password"), serialNumberField: serial, salt: salt)) == expected)
    }

    @Test("which salts a drive's bus admits, and when they coincide")
    func saltCandidates() {
        #expect(SerialSalt.distinctCandidates(serialNumberField: serial, interface: .sata) == [.reported, .ataUnswapped, .trimmed])
        #expect(SerialSalt.distinctCandidates(serialNumberField: serial, vendorIdentification: Array("SEAGATE ".utf8), interface: .sas)
                == [.sasVendor, .reported, .trimmed, .nulPadded])
        // sedutil 1.20's SAS salt: the vendor identification as reported, NUL-padded to 20 bytes; the default on SAS only.
        #expect(SerialSalt.sasVendor.bytes(serialNumberField: serial, vendorIdentification: Array("SEAGATE ".utf8))
                == Array("SEAGATE ".utf8) + [UInt8](repeating: 0, count: 12))
        #expect(SerialSalt.sedutilDefault(for: .sas) == .sasVendor && SerialSalt.sedutilDefault(for: .sata) == .reported)
        // A serial that fills all 20 bytes salts the same whether trimmed or not.
        #expect(SerialSalt.distinctCandidates(serialNumberField: Array("S3Z8NB0K123456789012".utf8), interface: .nvme) == [.reported])
        // Leading spaces (ATA serials are often right-aligned) are trimmed too.
        #expect(SerialSalt.trimmed.bytes(serialNumberField: Array("    WD-WX12".utf8)) == Array("WD-WX12".utf8))
        #expect(SerialSalt.trimmed.bytes(serialNumberField: Array(repeating: 0x20, count: 20)) == [])
    }

    @Test("raw PINs pass through, within the drive limit")
    func raw() throws {
        #expect(hex(try PinDerivation.raw.pin(from: secret("ab"), serialNumberField: serial)) == "6162")
        #expect(throws: PinDerivation.Failure.self) {
            try PinDerivation.raw.pin(from: secret(String(repeating: "x", count: 33)), serialNumberField: serial)
        }
    }

    @Test("secrets never print their bytes")
    func secretDescription() {
        let s = secret("hunter2")
        #expect("\(s)" == "<secret: 7 bytes>")
        #expect(String(reflecting: s) == "<secret: 7 bytes>")
    }
}
