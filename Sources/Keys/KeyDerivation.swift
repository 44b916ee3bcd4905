import COpenSSL

/// Key derivation through OpenSSL (the project's crypto boundary).
public enum KeyDerivation {
    public enum Digest: Sendable {
        case sha1, sha256, sha512

        var evp: OpaquePointer? {
            switch self {
            case .sha1: return EVP_sha1()
            case .sha256: return EVP_sha256()
            case .sha512: return EVP_sha512()
            }
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// PBKDF2-HMAC with the given digest.
    public static func pbkdf2(_ digest: Digest, password: Secret, salt: [UInt8], iterations: Int,
                              length: Int) throws(Failure) -> Secret {
        guard iterations > 0, iterations <= Int(Int32.max), length > 0, length <= 1024 else {
            throw Failure(description: "PBKDF2 parameters out of range")
        }
        var out = [UInt8](repeating: 0, count: length)
        defer { out.wipe() }
        let rc = password.withUnsafeBytes { pw in
            PKCS5_PBKDF2_HMAC(pw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(pw.count),
                              salt, Int32(salt.count), Int32(iterations), digest.evp, Int32(length), &out)
        }
        guard rc == 1 else { throw Failure(description: "PBKDF2 failed in OpenSSL") }
        return Secret(out)
    }
}
