/// How close a certificate is to expiry, as key-management faults classify it
/// (warning under 30 days, error under 7, critical under 3, expired).
public enum ExpiryClass: String, Sendable, Hashable, Codable, Comparable {
    case ok, warning, error, critical, expired

    public static func classify(notAfter: Int64, now: Int64) -> ExpiryClass {
        let remaining = notAfter - now
        let day: Int64 = 86_400
        if remaining <= 0 { return .expired }
        if remaining < 3 * day { return .critical }
        if remaining < 7 * day { return .error }
        if remaining < 30 * day { return .warning }
        return .ok
    }

    private var rank: Int {
        switch self {
        case .ok: return 0
        case .warning: return 1
        case .error: return 2
        case .critical: return 3
        case .expired: return 4
        }
    }

    public static func < (a: ExpiryClass, b: ExpiryClass) -> Bool { a.rank < b.rank }
}
