import LockState
import Opal

/// Guard 2: a persistent per-drive count of failed authentications, written durably *before*
/// each attempt (a crash mid-attempt counts as a failure). At the policy limit (default 3), or 2
/// below the drive's own TryLimit where it shows one, the drive is guarded: no further attempt
/// until an operator resets it.
struct LockoutGuard: Sendable {
    enum Failure: Error {
        /// No attempt was made: the drive is (now) guarded.
        case guarded(String)
        /// The attempt was made and failed.
        case drive(OpalError)
        case state(StateError)
    }

    let store: any StateStore
    let limit: Int
    let tryLimitMargin: Int

    func effectiveLimit(_ drive: StoredDrive) -> Int {
        guard let tryLimit = drive.tryLimit, tryLimit > 0 else { return limit }
        return max(0, min(limit, tryLimit - tryLimitMargin))
    }

    /// Runs one authenticated operation on the drive at `address` under the guard: admitted (and
    /// counted) as a batch of one, then settled.
    func attempt<R>(_ address: String, _ body: () throws(OpalError) -> R) throws(Failure) -> R {
        let drive: StoredDrive
        let admission: Admission
        do throws(StateError) {
            guard let found = try store.drive(address: address), let id = found.id else {
                throw StateError(.invalid, "\(address) is not a drive of the array")
            }
            drive = found
            guard let admitted = try admit([found])[id] else { throw StateError(.invalid, "\(address) was not admitted") }
            admission = admitted
        } catch { throw .state(error) }
        guard case .admitted = admission, let id = drive.id else {
            if case .guarded(let reason) = admission { throw .guarded(reason) }
            throw .state(StateError(.invalid, "\(address) was not admitted"))
        }
        let outcome: Result<R, OpalError>
        do { outcome = .success(try body()) } catch { outcome = .failure(error) }
        do throws(StateError) {
            switch outcome {
            case .success: try settle([(id: id, admission: admission, error: nil)])
            case .failure(let error): try settle([(id: id, admission: admission, error: error)])
            }
        } catch { throw .state(error) }
        // A failure other than NOT_AUTHORIZED (or SP_BUSY) leaves the count standing: the drive may have counted the attempt.
        switch outcome {
        case .success(let value): return value
        case .failure(let error): throw .drive(error)
        }
    }
}

extension LockoutGuard {
    /// The verdict for one drive of a batch.
    enum Admission {
        /// Counted (durably): attempt once, then settle.
        case admitted(count: Int, limit: Int)
        case guarded(String)
    }

    /// Counts one attempt on each drive that may still be tried, in one durable transaction, before
    /// any of them is made; drives at their limit are guarded instead. For array-wide unlock and
    /// lock, where one fsync for the whole array keeps on-demand locking fast.
    func admit(_ drives: [StoredDrive]) throws(StateError) -> [Int64: Admission] {
        var out: [Int64: Admission] = [:]
        var newlyGuarded: [Int64: String] = [:]
        var toCount: [Int64] = []
        for drive in drives {
            guard let id = drive.id else { continue }
            if let reason = drive.guardReason { out[id] = .guarded(reason); continue }
            let limit = effectiveLimit(drive)
            if drive.failedAuthentications >= limit {
                let reason = "\(drive.failedAuthentications) consecutive failed authentications (limit \(limit))"
                newlyGuarded[id] = reason
                out[id] = .guarded(reason)
            } else {
                toCount.append(id)
            }
        }
        if !newlyGuarded.isEmpty { try store.settleAuthentications(succeeded: [], guarded: newlyGuarded, notAttempted: [], audit: nil,
                                                                          lockedOnPurpose: nil) }
        let byID = Dictionary(drives.compactMap { drive in drive.id.map { ($0, drive) } }) { first, _ in first }
        for (id, count) in try store.countAuthenticationAttempts(driveIDs: toCount) {
            let limit = byID[id].map(effectiveLimit) ?? limit
            out[id] = .admitted(count: count, limit: limit)
        }
        return out
    }

    /// Records how a batch of admitted attempts went, with the operation's audit entry when given
    /// (one transaction). `notAttempted`: drives admitted whose attempt was then not made.
    /// `lockedOnPurpose`: drives to mark (an operator's lock) or unmark (an unlock) in the same transaction.
    func settle(_ results: [(id: Int64, admission: Admission, error: OpalError?)], notAttempted: Set<Int64> = [],
                audit: AuditEntry? = nil, lockedOnPurpose: (Bool, [Int64])? = nil) throws(StateError) {
        var succeeded: [Int64] = []
        var guarded: [Int64: String] = [:]
        // SP_BUSY is answered to StartSession before any credential is looked at (another
        // session holds the SP, often one a killed host left open): no authentication was made.
        let notAttempted = notAttempted.union(results.filter { $0.error?.code == .spBusy }.map(\.id))
        for result in results where !notAttempted.contains(result.id) {
            guard case .admitted(let count, let limit) = result.admission else { continue }
            guard let error = result.error else { succeeded.append(result.id); continue }
            if error.code == .notAuthorized || error.code == .authorityLockedOut, count >= limit {
                guarded[result.id] = "\(count) consecutive failed authentications (limit \(limit)); last: \(error.message)"
            }
        }
        try store.settleAuthentications(succeeded: succeeded, guarded: guarded, notAttempted: notAttempted.sorted(), audit: audit,
                                        lockedOnPurpose: lockedOnPurpose)
    }
}
