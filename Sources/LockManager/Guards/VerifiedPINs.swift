import Failures
import Keys
import LockState

/// Guard 1, verify before auth: the PINs of one drive in one generation, each derived from the
/// AK and proven against its stored check value. A PIN whose check value does not match is never
/// produced, so it can never be presented to a drive.
struct VerifiedPINs: Sendable {
    let sid: Secret
    let admin1: Secret
    let user1: Secret

    enum Failure: SedlockError {
        /// The AK does not give the PINs recorded for this drive (wrong or stale key).
        case mismatch(PINAuthority)
        /// No check value is recorded for this drive and generation.
        case missing(PINAuthority)
        case derivation(String)

        /// Guard 1 stopped it: nothing was presented to the drive.
        var kind: FailureKind { .held }
        var reason: String {
            switch self {
            case .mismatch: "guard.checkValueMismatch"
            case .missing: "guard.checkValueMissing"
            case .derivation: "keys.derivation"
            }
        }
        var summary: String {
            switch self {
            case .mismatch(let authority):
                "the key does not give the \(authority.rawValue) PIN recorded for this drive (a wrong or stale key); nothing was presented"
            case .missing(let authority):
                "no check value of the \(authority.rawValue) PIN is recorded for this drive and key generation; nothing was presented"
            case .derivation(let why): "the PINs could not be derived: \(why)"
            }
        }
        var description: String { summary }
    }

    /// Derives every PIN and checks each against `store`'s check values.
    static func verify(ak: Secret, token: Secret? = nil, drive: StoredDrive, generationID: Int64,
                       store: any StateStore) throws(Failure) -> VerifiedPINs {
        guard let driveID = drive.id else { throw .missing(.sid) }
        var pins: [PINAuthority: Secret] = [:]
        for authority in PINAuthority.allCases {
            let pin: Secret
            do { pin = try DrivePIN.derive(ak: ak, token: token, driveIdentity: drive.identity, authority: authority) } catch {
                throw .derivation(error.description)
            }
            let stored: StoredCheckValue?
            do { stored = try store.checkValue(driveID: driveID, generationID: generationID, authority: authority.rawValue) } catch {
                throw .derivation("\(error)")
            }
            guard let stored else { throw .missing(authority) }
            guard DrivePIN.matches(pin, checkValue: Array(stored.value)) else { throw .mismatch(authority) }
            pins[authority] = pin
        }
        guard let sid = pins[.sid], let admin1 = pins[.admin1], let user1 = pins[.user1] else { throw .missing(.sid) }
        return VerifiedPINs(sid: sid, admin1: admin1, user1: user1)
    }

    /// Check values for freshly derived PINs (setup and rekey record them before touching a drive).
    static func checkValues(ak: Secret, token: Secret? = nil, drive: StoredDrive,
                            generationID: Int64) throws(Failure) -> [StoredCheckValue] {
        guard let driveID = drive.id else { throw .missing(.sid) }
        var out: [StoredCheckValue] = []
        for authority in PINAuthority.allCases {
            do {
                let pin = try DrivePIN.derive(ak: ak, token: token, driveIdentity: drive.identity, authority: authority)
                out.append(StoredCheckValue(driveID: driveID, generationID: generationID, authority: authority.rawValue,
                                            value: .init(try DrivePIN.checkValue(of: pin))))
            } catch {
                throw .derivation(error.description)
            }
        }
        return out
    }
}
