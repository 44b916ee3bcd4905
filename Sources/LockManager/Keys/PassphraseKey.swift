import ControlAPI
import Keys

/// An AK made from an operator's passphrase (ONTAP's `rekey -manual`): scrypt, memory-hard, salted
/// with the generation's key ID, so the same passphrase and key ID always give the same AK and an
/// operator who kept the passphrase can make it again. The AK is then stored like any other.
enum PassphraseKey {
    /// scrypt's cost: 2^17 × 8 × 128 bytes = 128 MiB and a fraction of a second per derivation.
    static let cost: UInt64 = 1 << 17
    static let blockSize: UInt64 = 8
    static let parallelism: UInt64 = 1
    static let minimumLength = 20
    static let maximumLength = 256
    static let saltLabel = Array("sedlock passphrase v1".utf8)

    static var parameters: String { "scrypt N=2^17 r=8 p=1, salted with the key ID" }

    static func derive(_ passphrase: Secret, keyID: String) throws(ControlError) -> Secret {
        if let weakness = weakness(of: passphrase) {
            throw ControlError(.badRequest, "the passphrase is too weak: \(weakness); nothing was changed",
                               fix: "use \(minimumLength) to \(maximumLength) characters that are not a repetition, for example several unrelated words")
        }
        do {
            return try KeyDerivation.scrypt(password: passphrase, salt: saltLabel + [0] + Array(keyID.utf8),
                                            n: cost, r: blockSize, p: parallelism, length: 32)
        } catch {
            throw ControlError(error)
        }
    }

    /// Why `passphrase` is refused, or nil when it is acceptable.
    static func weakness(of passphrase: Secret) -> String? {
        guard passphrase.count >= minimumLength else { return "it has \(passphrase.count) bytes, fewer than \(minimumLength)" }
        guard passphrase.count <= maximumLength else { return "it has \(passphrase.count) bytes, more than \(maximumLength)" }
        return passphrase.withUnsafeBytes { bytes -> String? in
            let distinct = Set(bytes).count
            if distinct < 8 { return "it uses only \(distinct) distinct characters" }
            // A short pattern repeated ("abcdabcdabcd…") is no stronger than the pattern.
            for period in 1...8 {
                if (period..<bytes.count).allSatisfy({ bytes[$0] == bytes[$0 - period] }) {
                    return "it repeats a pattern of \(period) characters"
                }
            }
            return nil
        }
    }
}
