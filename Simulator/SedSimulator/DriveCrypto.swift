import COpenSSL
import Foundation

/// The simulated drive's cryptography, all through OpenSSL: AES-256-XTS for media,
/// AES-256-GCM to wrap keys, PBKDF2-SHA256 to turn PINs into verifiers and key-encryption keys.
enum DriveCrypto {
    /// Iterations for PIN stretching. Real drives use hardware KDFs; this keeps unlocks fast.
    static let pinIterations: Int32 = 1000

    static func randomBytes(_ count: Int) throws(SimulatorError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard count == 0 || RAND_bytes(&out, Int32(count)) == 1 else { throw SimulatorError.crypto("RAND_bytes failed") }
        return out
    }

    typealias Stretched = (verifier: [UInt8], kek: [UInt8])

    /// The cache key of a stretch: the salt and the PIN's SHA-256 (never the PIN itself).
    static func stretchKey(pin: [UInt8], salt: [UInt8]) -> Data {
        Data(salt + sha256(pin))
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        _ = bytes.withUnsafeBufferPointer { SHA256($0.baseAddress, bytes.count, &digest) }
        return digest
    }

    /// 64 bytes: a 32-byte verifier (compared to authenticate) and a 32-byte key-encryption key.
    static func stretch(pin: [UInt8], salt: [UInt8]) throws(SimulatorError) -> (verifier: [UInt8], kek: [UInt8]) {
        var out = [UInt8](repeating: 0, count: 64)
        let rc = pin.withUnsafeBufferPointer { p in
            salt.withUnsafeBufferPointer { s in
                PKCS5_PBKDF2_HMAC(p.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) },
                                  Int32(pin.count), s.baseAddress, Int32(salt.count), pinIterations,
                                  EVP_sha256(), 64, &out)
            }
        }
        guard rc == 1 else { throw SimulatorError.crypto("PBKDF2 failed") }
        return (Array(out[0..<32]), Array(out[32..<64]))
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return CRYPTO_memcmp(a, b, a.count) == 0
    }

    /// AES-256-GCM: nonce(12) ‖ ciphertext ‖ tag(16).
    static func seal(_ plaintext: [UInt8], key: [UInt8]) throws(SimulatorError) -> [UInt8] {
        let nonce = try randomBytes(12)
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SimulatorError.crypto("EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var len: Int32 = 0, total: Int32 = 0
        var tag = [UInt8](repeating: 0, count: 16)
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1,
              EVP_EncryptUpdate(ctx, &out, &len, plaintext, Int32(plaintext.count)) == 1 else {
            throw SimulatorError.crypto("AES-GCM seal failed")
        }
        total = len
        let finalOK = out.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + Int(total), &len) }
        guard finalOK == 1, EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1 else {
            throw SimulatorError.crypto("AES-GCM seal failed")
        }
        total += len
        return nonce + Array(out[0..<Int(total)]) + tag
    }

    /// Opens a sealed blob; `nil` when the key is wrong or the blob was tampered with.
    static func open(_ sealed: [UInt8], key: [UInt8]) -> [UInt8]? {
        guard sealed.count >= 28, let ctx = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let nonce = Array(sealed[0..<12]), body = Array(sealed[12..<(sealed.count - 16)])
        var tag = Array(sealed[(sealed.count - 16)...])
        var out = [UInt8](repeating: 0, count: body.count + 16)
        var len: Int32 = 0
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1,
              EVP_DecryptUpdate(ctx, &out, &len, body, Int32(body.count)) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { return nil }
        let total = Int(len)
        let ok = out.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + total, &len) }
        return ok == 1 ? Array(out[0..<total]) : nil
    }
}

/// AES-256-XTS over fixed-size sectors, with the LBA as the tweak (IEEE 1619 data unit number).
public final class XTSCipher {
    public static let keySize = 64
    private let encryptContext: OpaquePointer
    private let decryptContext: OpaquePointer

    public init(key: [UInt8]) throws(SimulatorError) {
        guard key.count == Self.keySize,
              let enc = EVP_CIPHER_CTX_new(), let dec = EVP_CIPHER_CTX_new() else {
            throw SimulatorError.crypto("bad XTS key or context")
        }
        encryptContext = enc
        decryptContext = dec
        guard EVP_EncryptInit_ex(enc, EVP_aes_256_xts(), nil, key, nil) == 1,
              EVP_DecryptInit_ex(dec, EVP_aes_256_xts(), nil, key, nil) == 1 else {
            throw SimulatorError.crypto("XTS key rejected (the two halves must differ)")
        }
    }

    deinit {
        EVP_CIPHER_CTX_free(encryptContext)
        EVP_CIPHER_CTX_free(decryptContext)
    }

    /// Transforms `buffer` in place, one sector per `sectorSize` bytes starting at `lba`.
    public func apply(encrypt: Bool, buffer: inout [UInt8], sectorSize: Int, lba: UInt64) throws(SimulatorError) {
        let ctx = encrypt ? encryptContext : decryptContext
        let sectors = buffer.count / sectorSize
        var failed = false
        // One tweak buffer for the whole request: per-sector allocations cost more than the cipher.
        var tweak = [UInt8](repeating: 0, count: 16)
        tweak.withUnsafeMutableBufferPointer { t in
            buffer.withUnsafeMutableBufferPointer { buf in
                guard let base = buf.baseAddress, let tweakBase = t.baseAddress else { return }
                var len: Int32 = 0
                for s in 0..<sectors {
                    var n = lba + UInt64(s)
                    for i in 0..<8 { tweakBase[i] = UInt8(truncatingIfNeeded: n); n >>= 8 }
                    let p = base + s * sectorSize
                    // Only the IV (the tweak) changes: the key schedule stays in the context.
                    guard EVP_CipherInit_ex2(ctx, nil, nil, tweakBase, encrypt ? 1 : 0, nil) == 1,
                          EVP_CipherUpdate(ctx, p, &len, p, Int32(sectorSize)) == 1 else { failed = true; return }
                }
            }
        }
        if failed { throw SimulatorError.crypto("AES-XTS transform failed") }
    }
}
