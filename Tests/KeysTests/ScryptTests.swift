import Keys
import Testing

@Suite("scrypt through OpenSSL")
struct ScryptTests {
    @Test("RFC 7914's test vector (password / NaCl, N=1024 r=8 p=16); parameters out of range are refused")
    func rfcVector() throws {
        let key = try KeyDerivation.scrypt(password: Secret(Array("password".utf8)), salt: Array("NaCl".utf8),
                                           n: 1024, r: 8, p: 16, length: 64)
        let expected = "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        #expect(key.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() } == expected)
        #expect(throws: KeyDerivation.Failure.self) {
            try KeyDerivation.scrypt(password: Secret(Array("x".utf8)), salt: [], n: 1000, r: 8, p: 1, length: 32)
        }
    }
}
