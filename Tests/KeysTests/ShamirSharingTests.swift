import Foundation
@testable import Keys
import TestSupport
import Testing

@Suite("Shamir sharing over GF(2^128), recombinable by pycryptodome")
struct ShamirSharingTests {
    static var python: String { packageRoot.appendingPathComponent(".venv/bin/python").path }

    @Test("field arithmetic: carry-less products as pycryptodome's tests give them, inverses, reduction")
    func field() {
        let three = FieldElement(3)
        #expect(three * three == FieldElement(5))
        #expect(FieldElement(5) * three == FieldElement(15))
        #expect(FieldElement(15) * three == FieldElement(17))
        // x^127 · x = x^128 = x^7 + x^2 + x + 1.
        #expect(FieldElement(high: 1 << 63, low: 0) * FieldElement(2) == FieldElement(0x87))
        for value in [FieldElement(1), FieldElement(7), FieldElement(high: 0xDEAD_BEEF, low: 0x1234_5678_9ABC_DEF0)] {
            #expect(value * value.inverse() == .one)
        }
        #expect(FieldElement(Array(0..<16)).bytes == Array(0..<16))
    }

    @Test("any k of n shares rebuild the secret; fewer give something else; bad shares are typed errors")
    func roundTrip() throws {
        let secret = Secret((0..<32).map { UInt8($0 * 7 + 1) })
        let shares = try ShamirSharing.split(secret, threshold: 3, shares: 5)
        #expect(shares.count == 5 && shares.allSatisfy { $0.blockCount == 2 })
        for combination in [[0, 1, 2], [4, 2, 0], [1, 3, 4], [0, 1, 2, 3, 4]] {
            #expect(try ShamirSharing.combine(combination.map { shares[$0] }) == secret)
        }
        #expect(!(try ShamirSharing.combine([shares[0], shares[1]]) == secret))
        #expect(throws: ShamirSharing.Failure.self) { try ShamirSharing.combine([shares[0]]) }
        #expect(throws: ShamirSharing.Failure.self) { try ShamirSharing.combine([shares[0], shares[0]]) }
        #expect(throws: ShamirSharing.Failure.self) { try ShamirSharing.split(secret, threshold: 1, shares: 3) }
        #expect(throws: ShamirSharing.Failure.self) { try ShamirSharing.split(Secret([1, 2, 3]), threshold: 2, shares: 3) }
    }

    @Test("a share made later from k others combines with any of them; pycryptodome agrees; a taken or zero index is refused")
    func extend() throws {
        let secret = Secret((0..<32).map { UInt8(truncatingIfNeeded: $0 * 11 + 3) })
        let shares = try ShamirSharing.split(secret, threshold: 3, shares: 4)
        let fifth = try ShamirSharing.extend([shares[3], shares[0], shares[2]], to: 5)
        #expect(fifth.index == 5)
        for others in [[0, 1], [1, 3], [2, 3]] {
            #expect(try ShamirSharing.combine(others.map { shares[$0] } + [fifth]) == secret)
        }
        // What split would have given at index 2, rebuilt from three others.
        #expect(try ShamirSharing.extend([shares[0], shares[2], shares[3]], to: 2) == shares[1])
        #expect(throws: ShamirSharing.Failure.self) { try ShamirSharing.extend(shares, to: 3) }
        #expect(throws: ShamirSharing.Failure.self) { try ShamirSharing.extend(shares, to: 0) }
        func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        let arguments = [shares[1], fifth, shares[3]].map { "\($0.index):" + $0.exportedBlocks().map(hex).joined(separator: ":") }
        let combine = """
        import sys
        from Crypto.Protocol.SecretSharing import Shamir
        parts = [a.split(":") for a in sys.argv[1:]]
        print(b"".join(Shamir.combine([(int(p[0]), bytes.fromhex(p[1 + b])) for p in parts]) for b in range(2)).hex())
        """
        let combined = try ProcessRunner.run(Self.python, ["-c", combine] + arguments)
        #expect(combined.output.trimmingCharacters(in: .whitespacesAndNewlines) == hex(secret.copyBytes()), "\(combined.stderr)")
    }

    @Test("pycryptodome recombines sedlock's shares, and sedlock recombines pycryptodome's")
    func interoperates() throws {
        let secret = Secret((0..<32).map { UInt8(255 - $0) })
        let shares = try ShamirSharing.split(secret, threshold: 2, shares: 3)
        func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        let arguments = [shares[2], shares[0]].map { "\($0.index):" + $0.exportedBlocks().map(hex).joined(separator: ":") }
        let combine = """
        import sys
        from Crypto.Protocol.SecretSharing import Shamir
        parts = [a.split(":") for a in sys.argv[1:]]
        out = b"".join(Shamir.combine([(int(p[0]), bytes.fromhex(p[1 + b])) for p in parts]) for b in range(2))
        print(out.hex())
        """
        let combined = try ProcessRunner.run(Self.python, ["-c", combine] + arguments)
        #expect(combined.output.trimmingCharacters(in: .whitespacesAndNewlines) == hex(secret.copyBytes()), "\(combined.stderr)")

        let split = """
        from Crypto.Protocol.SecretSharing import Shamir
        secret = bytes(range(100, 132))
        blocks = [Shamir.split(3, 4, secret[i:i + 16]) for i in (0, 16)]
        for n in range(4):
            print(blocks[0][n][0], blocks[0][n][1].hex(), blocks[1][n][1].hex())
        """
        let theirs = try ProcessRunner.run(Self.python, ["-c", split]).output.split(separator: "\n").map { $0.split(separator: " ") }
        try #require(theirs.count == 4, "pycryptodome did not run")
        let parsed = theirs.map { fields in
            ShamirSharing.Share(index: UInt8(fields[0]) ?? 0,
                                blocks: [String(fields[1]), String(fields[2])].map { h in
                                    stride(from: 0, to: h.count, by: 2).map {
                                        UInt8(h[h.index(h.startIndex, offsetBy: $0)..<h.index(h.startIndex, offsetBy: $0 + 2)], radix: 16) ?? 0
                                    }
                                })
        }
        #expect(try ShamirSharing.combine([parsed[3], parsed[1], parsed[0]]) == Secret(Array(100..<132)))
    }
}
