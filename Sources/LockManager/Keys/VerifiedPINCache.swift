import Keys
import LockState
import Synchronization

/// PINs already derived and proven against their check values, kept in memory beside the
/// keytable (never written out), so that locking a whole array on demand costs the drives'
/// sessions and not 3 HKDF derivations and 3 check-value reads per drive. An entry serves only
/// the AK it was proven with, for the same drive record, identity and generation; check values
/// never change for those, so an entry stays true for the life of the process.
final class VerifiedPINCache: Sendable {
    private struct Key: Hashable {
        let driveID: Int64
        let generationID: Int64
        let identity: String
    }

    private struct Entry {
        let ak: Secret
        let pins: VerifiedPINs
    }

    private let entries = Mutex<[Key: Entry]>([:])

    /// The proven PINs of `drive` in `generationID` under `ak`: from the cache, or verified now.
    func pins(ak: Secret, drive: StoredDrive, generationID: Int64,
              store: any StateStore) throws(VerifiedPINs.Failure) -> VerifiedPINs {
        guard let driveID = drive.id else { throw .missing(.sid) }
        let key = Key(driveID: driveID, generationID: generationID, identity: drive.identity)
        if let entry = entries.withLock({ $0[key] }), entry.ak == ak { return entry.pins }
        let pins = try VerifiedPINs.verify(ak: ak, drive: drive, generationID: generationID, store: store)
        entries.withLock { $0[key] = Entry(ak: ak, pins: pins) }
        return pins
    }
}
