import Foundation
import Keys

/// The text form of an AK kept on this machine (a root-only file or a systemd credential):
/// `sedlock-ak v1 KEY-ID BASE64\n`. The key ID travels with the key, so a credential whose file
/// name says nothing still names its generation.
enum AuthenticationKeyFile {
    static let magic = "sedlock-ak"
    static let version = "v1"

    /// The file's bytes, built in one buffer of the exact size (the caller clears it); the
    /// intermediate copies are cleared here.
    static func encode(keyID: String, ak: Secret) -> [UInt8] {
        var raw = ak.withUnsafeBytes { Data($0) }
        defer { raw.resetBytes(in: 0..<raw.count) }
        var encoded = raw.base64EncodedData()
        defer { encoded.resetBytes(in: 0..<encoded.count) }
        let head = Array("\(magic) \(version) \(keyID) ".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(head.count + encoded.count + 1)
        out += head
        out += encoded
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// The key ID and AK in `bytes`, or nil when they are not in this format. Parsed as bytes, not
    /// text: every copy of the key's base64 text is cleared before it is released.
    static func decode(_ bytes: ArraySlice<UInt8>) -> (keyID: String, ak: Secret)? {
        guard bytes.count < 512 else { return nil }
        let fields = bytes.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") })
        guard fields.count == 4, String(decoding: fields[0], as: UTF8.self) == magic,
              String(decoding: fields[1], as: UTF8.self) == version else { return nil }
        let keyID = String(decoding: fields[2], as: UTF8.self)
        guard UUID(uuidString: keyID) != nil else { return nil }
        var text = Data(fields[3])
        defer { text.resetBytes(in: 0..<text.count) }
        guard var raw = Data(base64Encoded: text), raw.count == 32 else { return nil }
        defer { raw.resetBytes(in: 0..<raw.count) }
        return (keyID, raw.withUnsafeBytes { Secret(copying: $0) })
    }
}
