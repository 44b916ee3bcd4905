import Foundation
import Keys

/// The text form of an AK kept on this machine (a root-only file or a systemd credential):
/// `sedlock-ak v1 KEY-ID BASE64\n`. The key ID travels with the key, so a credential whose file
/// name says nothing still names its generation.
enum AuthenticationKeyFile {
    static let magic = "sedlock-ak"
    static let version = "v1"

    static func encode(keyID: String, ak: Secret) -> [UInt8] {
        let encoded = ak.withUnsafeBytes { Data($0).base64EncodedString() }
        return Array("\(magic) \(version) \(keyID) \(encoded)\n".utf8)
    }

    /// The key ID and AK in `bytes`, or nil when they are not in this format.
    static func decode(_ bytes: [UInt8]) -> (keyID: String, ak: Secret)? {
        guard bytes.count < 512 else { return nil }
        var text = String(decoding: bytes, as: UTF8.self)
        defer { text = "" }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 4, fields[0] == magic, fields[1] == version, UUID(uuidString: String(fields[2])) != nil,
              var raw = Data(base64Encoded: String(fields[3])), raw.count == 32 else { return nil }
        defer { raw.resetBytes(in: 0..<raw.count) }
        return (String(fields[2]), Secret(Array(raw)))
    }
}
