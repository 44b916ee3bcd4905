import COpenSSL

/// Builds certificate signing requests and self-signed certificates for a client identity.
public enum CertificateRequests {
    /// A subject: CN and optional OU, as KMIP servers map identities from the CN.
    public struct Subject: Sendable, Hashable {
        public var commonName: String
        public var organizationalUnit: String?
        public init(commonName: String, organizationalUnit: String? = nil) {
            self.commonName = commonName
            self.organizationalUnit = organizationalUnit
        }
    }

    static func name(_ subject: Subject) throws(CertificateError) -> OpaquePointer {
        guard !subject.commonName.isEmpty, subject.commonName.utf8.count <= 64 else {
            throw CertificateError(.invalidArgument, "the common name must be 1…64 bytes")
        }
        guard let name = X509_NAME_new() else { throw CertificateError(.generationFailed, "cannot build a name") }
        var entries = [("CN", subject.commonName)]
        if let ou = subject.organizationalUnit { entries.append(("OU", ou)) }
        for (field, value) in entries {
            guard X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, value, -1, -1, 0) == 1 else {
                X509_NAME_free(name)
                throw CertificateError(.invalidArgument, "'\(value)' is not a valid \(field)")
            }
        }
        return name
    }

    /// Extended key usage clientAuth, as KMIP servers require of clients.
    static func clientAuthExtension() throws(CertificateError) -> OpaquePointer {
        guard let ext = X509V3_EXT_conf_nid(nil, nil, NID_ext_key_usage, "clientAuth") else {
            throw CertificateError(.generationFailed, "cannot build the EKU extension: \(OpenSSLText.errors())")
        }
        return ext
    }

    /// A PEM certificate signing request with EKU clientAuth.
    public static func signingRequest(key: PrivateKey, subject: Subject) throws(CertificateError) -> String {
        guard let req = X509_REQ_new() else { throw CertificateError(.generationFailed, "cannot build a request") }
        defer { X509_REQ_free(req) }
        let subjectName = try name(subject)
        defer { X509_NAME_free(subjectName) }
        X509_REQ_set_version(req, 0)
        X509_REQ_set_subject_name(req, subjectName)
        X509_REQ_set_pubkey(req, key.pkey)
        let ext = try clientAuthExtension()
        guard let stack = OPENSSL_sk_new_null() else { throw CertificateError(.generationFailed, "out of memory") }
        OPENSSL_sk_push(stack, UnsafeRawPointer(UnsafePointer<UInt8>(ext)))
        let added = X509_REQ_add_extensions(req, stack)
        OPENSSL_sk_free(stack)
        X509_EXTENSION_free(ext)
        guard added == 1, X509_REQ_sign(req, key.pkey, EVP_sha256()) > 0 else {
            throw CertificateError(.generationFailed, "cannot sign the request: \(OpenSSLText.errors())")
        }
        guard let pem = OpenSSLText.memoryBIO({ PEM_write_bio_X509_REQ($0, req) }) else {
            throw CertificateError(.generationFailed, "cannot encode the request")
        }
        return pem
    }

    /// A self-signed client certificate valid for `days`.
    public static func selfSigned(key: PrivateKey, subject: Subject, days: Int) throws(CertificateError) -> Certificate {
        guard (1...3650).contains(days) else { throw CertificateError(.invalidArgument, "validity must be 1…3650 days") }
        guard let x509 = X509_new() else { throw CertificateError(.generationFailed, "cannot build a certificate") }
        let certificate = Certificate(adopting: x509)
        let subjectName = try name(subject)
        defer { X509_NAME_free(subjectName) }
        X509_set_version(x509, 2)
        var serial = [UInt8](repeating: 0, count: 16)
        RAND_bytes(&serial, 16)
        serial[0] &= 0x7F
        if let bn = BN_bin2bn(serial, 16, nil) {
            BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x509))
            BN_free(bn)
        }
        X509_gmtime_adj(X509_getm_notBefore(x509), 0)
        X509_gmtime_adj(X509_getm_notAfter(x509), days * 86_400)
        X509_set_subject_name(x509, subjectName)
        X509_set_issuer_name(x509, subjectName)
        X509_set_pubkey(x509, key.pkey)
        let ext = try clientAuthExtension()
        X509_add_ext(x509, ext, -1)
        X509_EXTENSION_free(ext)
        guard X509_sign(x509, key.pkey, EVP_sha256()) > 0 else {
            throw CertificateError(.generationFailed, "cannot sign the certificate: \(OpenSSLText.errors())")
        }
        return certificate
    }
}
