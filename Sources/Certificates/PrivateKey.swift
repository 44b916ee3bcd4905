import COpenSSL

/// A private key (RSA 2048/3072 or EC P-256) held by OpenSSL.
/// Immutable once made: OpenSSL's EVP_PKEY is safe to use for signing from many threads.
public final class PrivateKey: @unchecked Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case rsa2048 = "rsa2048", rsa3072 = "rsa3072", ecP256 = "ec-p256"
    }

    let pkey: OpaquePointer

    init(adopting pkey: OpaquePointer) { self.pkey = pkey }

    deinit { EVP_PKEY_free(pkey) }

    /// Generates a new key.
    public static func generate(_ kind: Kind) throws(CertificateError) -> PrivateKey {
        ERR_clear_error()
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, kind == .ecP256 ? "EC" : "RSA", nil) else {
            throw CertificateError(.generationFailed, "cannot create a key context: \(OpenSSLText.errors())")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_keygen_init(ctx) == 1 else {
            throw CertificateError(.generationFailed, "key generation init failed: \(OpenSSLText.errors())")
        }
        switch kind {
        case .rsa2048: EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048)
        case .rsa3072: EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 3072)
        case .ecP256: EVP_PKEY_CTX_set_group_name(ctx, "P-256")
        }
        var key: OpaquePointer?
        guard EVP_PKEY_generate(ctx, &key) == 1, let key else {
            throw CertificateError(.generationFailed, "key generation failed: \(OpenSSLText.errors())")
        }
        return PrivateKey(adopting: key)
    }

    /// Parses a PEM private key (unencrypted).
    public init(pem: String) throws(CertificateError) {
        let blocks = try PEMFormat.blocks(pem)
        guard blocks.contains(where: { $0.label.hasSuffix("PRIVATE KEY") }) else {
            throw CertificateError(.invalidPEM, "no PRIVATE KEY block", fix: "give the PEM private key file")
        }
        guard let bio = OpenSSLText.readableBIO(pem) else {
            throw CertificateError(.unreadable, "cannot read the key")
        }
        defer { BIO_free(bio) }
        ERR_clear_error()
        guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
            throw CertificateError(.unreadable, "the private key does not parse: \(OpenSSLText.errors())",
                                   fix: "give an unencrypted PEM private key")
        }
        pkey = key
    }

    /// PKCS#8 PEM; write it only to a file with mode 0600.
    public func pem() throws(CertificateError) -> String {
        guard let text = OpenSSLText.memoryBIO({ PEM_write_bio_PrivateKey($0, pkey, nil, nil, 0, nil, nil) }) else {
            throw CertificateError(.generationFailed, "cannot encode the key: \(OpenSSLText.errors())")
        }
        return text
    }

    public var description: String {
        let bits = EVP_PKEY_get_bits(pkey)
        return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC ? "EC \(bits)-bit" : "RSA \(bits)-bit"
    }
}
