import COpenSSL

/// An X.509 certificate held by OpenSSL, with what an operator needs to see of it.
/// Immutable once made: OpenSSL's X509 objects are reference counted and safe to read from many threads.
public final class Certificate: @unchecked Sendable {
    let x509: OpaquePointer

    init(adopting x509: OpaquePointer) { self.x509 = x509 }
    deinit { X509_free(x509) }

    /// Every certificate in a PEM text (a chain or a CA bundle), in order.
    public static func all(pem: String) throws(CertificateError) -> [Certificate] {
        let blocks = try PEMFormat.blocks(pem)
        guard blocks.contains(where: { $0.label == "CERTIFICATE" }) else {
            throw CertificateError(.invalidPEM, "no CERTIFICATE block", fix: "give a PEM certificate file")
        }
        guard let bio = OpenSSLText.readableBIO(pem) else { throw CertificateError(.unreadable, "cannot read") }
        defer { BIO_free(bio) }
        ERR_clear_error()
        var out: [Certificate] = []
        while let cert = PEM_read_bio_X509(bio, nil, nil, nil) { out.append(Certificate(adopting: cert)) }
        let expected = blocks.filter { $0.label == "CERTIFICATE" }.count
        guard out.count == expected else {
            throw CertificateError(.unreadable, "certificate \(out.count + 1) of \(expected) does not parse: \(OpenSSLText.errors())",
                                   fix: "the file is damaged; export it again")
        }
        ERR_clear_error()
        return out
    }

    public var subject: String { OpenSSLText.name(X509_get_subject_name(x509)) }
    public var issuer: String { OpenSSLText.name(X509_get_issuer_name(x509)) }
    public var notBefore: Int64? { OpenSSLText.posixTime(X509_get0_notBefore(x509)) }
    public var notAfter: Int64? { OpenSSLText.posixTime(X509_get0_notAfter(x509)) }
    public var isSelfSigned: Bool { X509_check_issued(x509, x509) == X509_V_OK }

    /// SHA-256 fingerprint as colon-separated hex.
    public var fingerprint: String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        guard X509_digest(x509, EVP_sha256(), &digest, &length) == 1 else { return "" }
        return digest.prefix(Int(length)).map { String($0, radix: 16, uppercase: true).leftPadded }.joined(separator: ":")
    }

    public var hasClientAuthUsage: Bool {
        let flags = X509_get_extension_flags(x509)
        guard flags & UInt32(EXFLAG_XKUSAGE) != 0 else { return true }  // no EKU extension: any usage
        return X509_get_extended_key_usage(x509) & UInt32(XKU_SSL_CLIENT) != 0
    }

    public func pem() -> String { OpenSSLText.memoryBIO { PEM_write_bio_X509($0, x509) } ?? "" }

    /// Whether `key` is the private key of this certificate.
    public func matches(_ key: PrivateKey) -> Bool {
        let ok = X509_check_private_key(x509, key.pkey) == 1
        ERR_clear_error()
        return ok
    }

    public func expiry(now: Int64) -> ExpiryClass {
        ExpiryClass.classify(notAfter: notAfter ?? 0, now: now)
    }

    /// Verifies this certificate up to one of `trusted`, through `intermediates`.
    public func verify(trusted: [Certificate], intermediates: [Certificate] = []) throws(CertificateError) {
        guard let store = X509_STORE_new(), let ctx = X509_STORE_CTX_new(), let chain = OPENSSL_sk_new_null() else {
            throw CertificateError(.chainInvalid, "cannot create a verification context")
        }
        defer {
            X509_STORE_CTX_free(ctx)
            X509_STORE_free(store)
            OPENSSL_sk_free(chain)
        }
        for ca in trusted { X509_STORE_add_cert(store, ca.x509) }
        for cert in intermediates { OPENSSL_sk_push(chain, UnsafeRawPointer(UnsafePointer<UInt8>(cert.x509))) }
        guard X509_STORE_CTX_init(ctx, store, x509, chain) == 1 else {
            throw CertificateError(.chainInvalid, "cannot start verification: \(OpenSSLText.errors())")
        }
        guard X509_verify_cert(ctx) == 1 else {
            let reason = String(cString: X509_verify_cert_error_string(Int(X509_STORE_CTX_get_error(ctx))))
            ERR_clear_error()
            throw CertificateError(.chainInvalid, "the certificate does not chain to the CA: \(reason)",
                                   fix: "import the CA that issued it, and any intermediate certificates")
        }
    }
}

extension String {
    var leftPadded: String { count == 1 ? "0" + self : self }
}
