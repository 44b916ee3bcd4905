import Keys

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

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Derives the PIN. `serialNumberField` is the drive's serial exactly as reported (the salt).
    public func pin(from password: Secret, serialNumberField: [UInt8]) throws(Failure) -> Secret {
        switch self {
        case .raw:
            guard password.count <= Self.maximumPinLength else {
                throw Failure(description: "the PIN is \(password.count) bytes; drives accept at most \(Self.maximumPinLength)")
            }
            guard password.count > 0 else { throw Failure(description: "the PIN is empty") }
            return password
        case .sedutilSHA1, .sedutilSHA512:
            // sedutil salts with the 20-byte serial field, padded with spaces as the drive reports it.
            var salt = Array(serialNumberField.prefix(20))
            while salt.count < 20 { salt.append(0x20) }
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
