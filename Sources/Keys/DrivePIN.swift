import COpenSSL
import Platform

/// The authorities whose PINs sedlock derives for every drive.
public enum PINAuthority: String, Codable, Sendable, CaseIterable {
    case sid = "SID"
    case admin1 = "Admin1"
    case user1 = "User1"
}

/// Drive PINs from the array's authentication key (AK), and the check values that let a PIN be
/// proven right before it is ever shown to a drive.
///
/// PIN = HKDF-SHA256(ikm: AK [‖ RDL token], salt: "sedlock v1",
///                   info: drive identity ‖ 0x00 ‖ authority name), 32 bytes (Opal's C_PIN maximum).
/// Check value = the first 16 bytes of HMAC-SHA256(key: PIN, "sedlock pin check v1").
/// Every drive gets its own PINs from one AK; a check value reveals nothing usable about the PIN.
public enum DrivePIN {
    public static let length = 32
    public static let checkValueLength = 16
    static let salt = Array("sedlock v1".utf8)
    static let checkLabel = Array("sedlock pin check v1".utf8)

    /// The identity a drive's PINs are bound to: its WWN when it has one, else its serial number.
    public static func driveIdentity(wwn: UInt64?, serial: String) -> String {
        if let wwn, wwn != 0 { return "wwn:" + String(wwn, radix: 16) }
        return "serial:" + serial
    }

    /// The PIN of `authority` on the drive named by `driveIdentity`. With Rapid Data Locking the
    /// security token joins the AK as key material, so neither alone yields a PIN.
    public static func derive(ak: Secret, token: Secret? = nil, driveIdentity: String,
                              authority: PINAuthority) throws(KeyDerivation.Failure) -> Secret {
        // AK ‖ token in one buffer of the exact size, cleared after use (no outgrown copy).
        var ikm: [UInt8] = []
        ikm.reserveCapacity(ak.count + (token?.count ?? 0))
        defer { ikm.wipe() }
        ak.withUnsafeBytes { ikm += $0 }
        token?.withUnsafeBytes { ikm += $0 }
        let info = Array(driveIdentity.utf8) + [0] + Array(authority.rawValue.utf8)
        let key = Secret(ikm)
        return try KeyDerivation.hkdfSHA256(key: key, salt: salt, info: info, length: length)
    }

    /// The check value stored for a PIN.
    public static func checkValue(of pin: Secret) throws(KeyDerivation.Failure) -> [UInt8] {
        Array(try KeyDerivation.hmacSHA256(key: pin, message: checkLabel).prefix(checkValueLength))
    }

    /// True when `pin` has the stored check value (compared in constant time).
    public static func matches(_ pin: Secret, checkValue stored: [UInt8]) -> Bool {
        guard stored.count == checkValueLength, let actual = try? checkValue(of: pin) else { return false }
        var difference: UInt8 = 0
        for i in 0..<checkValueLength { difference |= actual[i] ^ stored[i] }
        return difference == 0
    }
}
