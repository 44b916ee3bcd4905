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
