import Failures
import Keys
import SecurityTransport

/// How an operator's password becomes the PIN bytes a drive sees. Versioned and explicit, so a
/// drive set up by another tool can be adopted without burning tries on a wrongly derived PIN.
public enum PinDerivation: String, Sendable, CaseIterable, Codable {
    /// The password bytes are the PIN.
    case raw
    /// sedutil (Drive Trust Alliance): PBKDF2-HMAC-SHA1, 75,000 iterations, salt = the raw 20-byte serial field.
    case sedutilSHA1 = "sedutil-sha1"
    /// sedutil forks using SHA-512 (ChubbyAnt): PBKDF2-HMAC-SHA512, 500,000 iterations, same salt.
    case sedutilSHA512 = "sedutil-sha512"

    /// The longest PIN Opal drives accept in C_PIN.
    public static let maximumPinLength = 32

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Whether the serial number salts this derivation (so the salt variant matters).
    public var isSalted: Bool { self != .raw }

    /// Derives the PIN. `serialNumberField` is the drive's serial exactly as reported; `salt`
    /// says which bytes of it the sedutil build that set the password used.
    public func pin(from password: Secret, serialNumberField: [UInt8], vendorIdentification: [UInt8] = [],
                    salt: SerialSalt = .reported) throws(Failure) -> Secret {
        switch self {
        case .raw:
            guard password.count <= Self.maximumPinLength else {
                throw Failure(description: "the PIN is \(password.count) bytes; drives accept at most \(Self.maximumPinLength)")
            }
            guard password.count > 0 else { throw Failure(description: "the PIN is empty") }
            return password
        case .sedutilSHA1, .sedutilSHA512:
            let salt = salt.bytes(serialNumberField: serialNumberField, vendorIdentification: vendorIdentification)
            let digest: KeyDerivation.Digest = self == .sedutilSHA1 ? .sha1 : .sha512
            let iterations = self == .sedutilSHA1 ? 75_000 : 500_000
            do {
                return try KeyDerivation.pbkdf2(digest, password: password, salt: salt, iterations: iterations, length: 32)
            } catch {
                throw Failure(description: error.description)
            }
        }
    }
}

/// Which bytes of the serial number a sedutil build salted with. They differ by version, fork
/// and bus, and nothing on the drive tells them apart: a wrong one is only found by an
/// authentication that fails and costs a try. So adoption takes the variant from the operator
/// unless every variant that applies to the drive's bus gives the same bytes.
public enum SerialSalt: String, Sendable, CaseIterable, Codable {
    /// The 20-byte serial field as the drive reports it, space padded: Drive Trust Alliance
    /// sedutil 1.15+ on every bus, and sedlock's own default.
    case reported
    /// ATA only: the IDENTIFY serial words as stored, each byte pair swapped back (sedutil
    /// builds that copied IDENTIFY without byte-swapping, e.g. early Linux SAT paths).
    case ataUnswapped = "ata-unswapped"
    /// The serial with leading and trailing spaces removed, as udev's ID_SERIAL_SHORT gives it
    /// (forks and scripts that take the serial from udev or sysfs); not padded.
    case trimmed
    /// SAS only: the serial left-aligned in 20 bytes padded with NULs (builds that took it from
    /// the INQUIRY data into a zeroed buffer).
    case nulPadded = "nul-padded"
    /// SAS only: the INQUIRY vendor identification (8 bytes as reported) NUL-padded to 20 —
    /// what sedutil 1.20.0 and master take for the serial on SAS, and so the default there.
    case sasVendor = "sas-vendor"

    /// The variants that a sedutil build can have used on a drive of this bus.
    public static func applicable(to interface: DeviceIdentity.Interface) -> [SerialSalt] {
        switch interface {
        case .sata: return [.reported, .ataUnswapped, .trimmed]
        case .sas: return [.sasVendor, .reported, .trimmed, .nulPadded]
        case .nvme, .simulated: return [.reported, .trimmed]
        }
    }

    /// What sedutil itself salts with on this bus, when nobody names a variant.
    public static func sedutilDefault(for interface: DeviceIdentity.Interface) -> SerialSalt {
        interface == .sas ? .sasVendor : .reported
    }

    /// The salt bytes for a serial field (and, on SAS, a vendor identification) as reported.
    public func bytes(serialNumberField: [UInt8], vendorIdentification: [UInt8] = []) -> [UInt8] {
        var padded = Array(serialNumberField.prefix(20))
        while padded.count < 20 { padded.append(0x20) }
        let isBlank = { (byte: UInt8) in byte == 0x20 || byte == 0x00 }
        switch self {
        case .reported:
            return padded
        case .ataUnswapped:
            var swapped = padded
            for i in stride(from: 0, to: 20, by: 2) { swapped.swapAt(i, i + 1) }
            return swapped
        case .trimmed:
            guard let first = padded.firstIndex(where: { !isBlank($0) }), let last = padded.lastIndex(where: { !isBlank($0) }) else {
                return []
            }
            return Array(padded[first...last])
        case .nulPadded:
            var bytes = SerialSalt.trimmed.bytes(serialNumberField: serialNumberField)
            while bytes.count < 20 { bytes.append(0x00) }
            return bytes
        case .sasVendor:
            var bytes = Array(vendorIdentification.prefix(8))
            while bytes.count < 20 { bytes.append(0x00) }
            return bytes
        }
    }

    /// The variants applicable to a drive that give bytes different from each other: adoption
    /// must be told which one when there is more than one.
    public static func distinctCandidates(serialNumberField: [UInt8], vendorIdentification: [UInt8] = [],
                                          interface: DeviceIdentity.Interface) -> [SerialSalt] {
        var seen: [[UInt8]] = []
        var out: [SerialSalt] = []
        for salt in applicable(to: interface) {
            let bytes = salt.bytes(serialNumberField: serialNumberField, vendorIdentification: vendorIdentification)
            if !seen.contains(bytes) { seen.append(bytes); out.append(salt) }
        }
        return out
    }
}

extension PinDerivation.Failure: SedlockError {
    public var kind: FailureKind { .badRequest }
    public var reason: String { "drive.pinDerivation" }
    public var summary: String { description }
}
