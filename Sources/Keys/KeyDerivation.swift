import COpenSSL
import Failures
import Platform

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

    public struct Failure: Error, Sendable, CustomStringConvertible {
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

    /// scrypt (RFC 7914) through OpenSSL: memory-hard, for keys made from what a person types.
    /// `n` is the cost (a power of two); it takes 128·r·n bytes of memory.
    public static func scrypt(password: Secret, salt: [UInt8], n: UInt64, r: UInt64, p: UInt64,
                              length: Int) throws(Failure) -> Secret {
        guard n > 1, n & (n - 1) == 0, r > 0, p > 0, length > 0, length <= 1024 else {
            throw Failure(description: "scrypt parameters out of range")
        }
        var out = [UInt8](repeating: 0, count: length)
        defer { out.wipe() }
        let memory = 128 * r * n * p + 1 << 20
        let rc = password.withUnsafeBytes { pw in
            EVP_PBE_scrypt(pw.baseAddress?.assumingMemoryBound(to: CChar.self), pw.count, salt, salt.count,
                           n, r, p, memory, &out, length)
        }
        guard rc == 1 else { throw Failure(description: "scrypt failed in OpenSSL (not enough memory?)") }
        return Secret(out)
    }

    /// HKDF-SHA256 (RFC 5869), extract and expand, through OpenSSL's EVP_PKEY HKDF.
    public static func hkdfSHA256(key: Secret, salt: [UInt8], info: [UInt8], length: Int) throws(Failure) -> Secret {
        guard length > 0, length <= 255 * 32, info.count <= 1024 else { throw Failure(description: "HKDF parameters out of range") }
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nil) else { throw Failure(description: "HKDF unavailable in OpenSSL") }
        defer { EVP_PKEY_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: length)
        defer { out.wipe() }
        var outLength = length
        let ok = key.withUnsafeBytes { ikm -> Bool in
            EVP_PKEY_derive_init(context) == 1
                && EVP_PKEY_CTX_set_hkdf_md(context, EVP_sha256()) == 1
                && EVP_PKEY_CTX_set1_hkdf_salt(context, salt, Int32(salt.count)) == 1
                && EVP_PKEY_CTX_set1_hkdf_key(context, ikm.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(ikm.count)) == 1
                && EVP_PKEY_CTX_add1_hkdf_info(context, info, Int32(info.count)) == 1
                && EVP_PKEY_derive(context, &out, &outLength) == 1
        }
        guard ok, outLength == length else { throw Failure(description: "HKDF failed in OpenSSL") }
        return Secret(out)
    }

    /// HMAC-SHA256 of `message` under `key`.
    public static func hmacSHA256(key: Secret, message: [UInt8]) throws(Failure) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var outLength: UInt32 = 0
        let done = key.withUnsafeBytes { k in
            HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), message, message.count, &out, &outLength)
        }
        guard done != nil, outLength == 32 else { throw Failure(description: "HMAC-SHA256 failed in OpenSSL") }
        return out
    }
}

extension KeyDerivation.Failure: SedlockError {
    public var kind: FailureKind { .failed }
    public var reason: String { "keys.derivation" }
    public var summary: String { description }
}
