import Foundation

/// Key tags name a key generation's group on the key servers (KMIP Object Group).
enum KeyTag {
    /// The tag used when setup names none: derived from the machine id, so every key of this
    /// machine shares it (NetApp's "parent tag").
    static func machineDefault(machineIDPath: String) -> String {
        let raw = FileManager.default.contents(atPath: machineIDPath).map { String(decoding: $0.prefix(64), as: UTF8.self) } ?? ""
        let id = raw.trimmingCharacters(in: .whitespacesAndNewlines).filter(\.isHexDigit)
        return "sedlock-" + (id.isEmpty ? "host" : String(id.prefix(12)))
    }

    /// Letters, digits, dot, dash, underscore; 1…64 characters.
    static func isValid(_ tag: String) -> Bool {
        (1...64).contains(tag.count) && tag.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }
}
