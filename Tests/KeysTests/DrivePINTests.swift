import Foundation
import Keys
import TestSupport
import Testing

@Suite("Drive PINs and check values")
struct DrivePINTests {
    let ak = Secret((0..<32).map { UInt8($0 &* 7 &+ 3) })

    @Test("HKDF and HMAC agree with Python's cryptography and hmac modules (independent implementations)")
    func matchesIndependentImplementation() throws {
        let token = Secret(Array(repeating: 0xA5, count: 32))
        let identity = DrivePIN.driveIdentity(wwn: 0x5000_c500_1234_5678, serial: "ignored")
        #expect(identity == "wwn:5000c50012345678")
        let pin = try DrivePIN.derive(ak: ak, driveIdentity: identity, authority: .admin1)
        let rdlPIN = try DrivePIN.derive(ak: ak, token: token, driveIdentity: identity, authority: .admin1)
        let script = """
        import hashlib, hmac, sys
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        ak = bytes((i * 7 + 3) & 0xFF for i in range(32))
        info = b"wwn:5000c50012345678" + b"\\x00" + b"Admin1"
        def pin(ikm):
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sedlock v1", info=info).derive(ikm)
        p = pin(ak)
        check = hmac.new(p, b"sedlock pin check v1", hashlib.sha256).digest()[:16]
        print(p.hex(), pin(ak + bytes([0xA5]) * 32).hex(), check.hex())
        """
        let result = try ProcessRunner.run("/usr/bin/env", ["python3", "-c", script])
        let fields = result.output.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        try #require(fields.count == 3, "python said: \(result.output) \(result.stderr)")
        #expect(hex(pin) == fields[0])
        #expect(hex(rdlPIN) == fields[1])
        #expect(try DrivePIN.checkValue(of: pin).map { String(format: "%02x", $0) }.joined() == fields[2])
    }

    @Test("every drive and authority gets its own PIN; the check value proves the right one only")
    func distinctAndChecked() throws {
        var seen = Set<String>()
        for drive in ["wwn:1", "wwn:2", DrivePIN.driveIdentity(wwn: nil, serial: "S3Z9NB0K")] {
            for authority in PINAuthority.allCases {
                let pin = try DrivePIN.derive(ak: ak, driveIdentity: drive, authority: authority)
                #expect(pin.count == DrivePIN.length)
                seen.insert(hex(pin))
                let check = try DrivePIN.checkValue(of: pin)
                #expect(DrivePIN.matches(pin, checkValue: check))
                let other = try DrivePIN.derive(ak: Secret(Array(repeating: 1, count: 32)), driveIdentity: drive, authority: authority)
                #expect(!DrivePIN.matches(other, checkValue: check))
                #expect(!DrivePIN.matches(pin, checkValue: Array(check.prefix(15))))
            }
        }
        #expect(seen.count == 9)
        // The identity and the authority are separated, so "wwn:1" + "2…" cannot collide with "wwn:12" + "…".
        #expect(DrivePIN.driveIdentity(wwn: 0, serial: "X") == "serial:X")
    }

    @Test("a PIN never prints")
    func noLeak() throws {
        let pin = try DrivePIN.derive(ak: ak, driveIdentity: "wwn:1", authority: .sid)
        #expect("\(pin)" == "<secret: 32 bytes>")
    }

    private func hex(_ secret: Secret) -> String { secret.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() } }
}
