import Foundation
import TCGStorage

/// Single User Mode (Opal SSC Feature Set: Single User Mode): Activate (or Reactivate) names
/// locking ranges that each belong to one user — range N to User N+1, the global range to User1
/// — and from then on only that user locks and unlocks the range, sets its PIN and rekeys it.
/// The Admins keep reading the range, may take it back with Erase (its data gone, the user's PIN
/// empty again), and set its bounds only when the range policy says Admins.
///
/// Where the feature set's text could not be checked, the model follows what sedutil's
/// `--setup_SUM` relies on from real drives: a SUM user starts enabled with an empty PIN, and
/// without a RangeStartRangeLengthPolicy the user sets the range's bounds.
extension SimulatedDrive {
    enum SingleUserParameter {
        static let selectionList: UInt64 = 0x06_0000
        static let rangePolicy: UInt64 = 0x06_0001
        /// Activate: DataStoreTableSizes; Reactivate: Admin1PIN.
        static let third: UInt64 = 0x06_0002
        /// Reactivate: DataStoreTableSizes.
        static let fourth: UInt64 = 0x06_0003
    }

    /// The Locking table's own UID: as a selection list, "every range".
    static let lockingTable = UID(0x0000_0802_0000_0000)

    /// What an Activate or Reactivate asked for: SUM ranges, who sets their bounds, Admin1's PIN.
    struct SingleUserRequest {
        var ranges: [Int] = []
        var policyAdmins = false
        var admin1PIN: [UInt8]?

        /// Nil for malformed parameters (INVALID_PARAMETER); `reactivate` admits Admin1PIN.
        init?(_ arguments: [TCGValue], rangeCount: Int, userCount: Int, reactivate: Bool) {
            for argument in arguments {
                guard case .named(let name, let value) = argument, let key = name.unsignedValue else { return nil }
                switch key {
                case SingleUserParameter.selectionList:
                    if value.uidValue == SimulatedDrive.lockingTable {
                        ranges = Array(0..<rangeCount)
                        continue
                    }
                    guard case .list(let items) = value else { return nil }
                    for item in items {
                        if item.uidValue == SimulatedDrive.lockingTable { ranges = Array(0..<rangeCount); continue }
                        guard let n = item.uidValue?.lockingRangeIndex, n < rangeCount, !ranges.contains(n) else { return nil }
                        ranges.append(n)
                    }
                case SingleUserParameter.rangePolicy:
                    guard let policy = value.unsignedValue, policy <= 1 else { return nil }
                    policyAdmins = policy == 1
                case SingleUserParameter.third where reactivate:
                    guard let pin = value.bytesValue, pin.count <= 32 else { return nil }
                    admin1PIN = pin
                case SingleUserParameter.third, SingleUserParameter.fourth:
                    // DataStoreTableSizes: this drive keeps one DataStore table of a fixed size.
                    guard case .list = value else { return nil }
                default:
                    return nil
                }
            }
            // Every SUM range needs its user.
            guard ranges.allSatisfy({ $0 < userCount }) else { return nil }
            ranges.sort()
        }
    }

    var isInSingleUserMode: Bool { !(record.singleUserRanges ?? []).isEmpty }

    /// The user that owns range `n` in Single User Mode, or nil when the range is not a SUM range.
    func singleUserOwner(ofRange n: Int) -> UID? {
        (record.singleUserRanges ?? []).contains(n) ? UID.user(n + 1) : nil
    }

    /// The range a SUM user owns, or nil.
    func singleUserRange(ofUser index: Int) -> Int? {
        (record.singleUserRanges ?? []).contains(index) ? index : nil
    }

    /// Hands each selected range to its user: enabled with an empty PIN, the only authority
    /// that locks, unlocks and rekeys it; the Admins may still read it.
    func enterSingleUserMode(_ request: SingleUserRequest, lockingKey: [UInt8]) throws(SimulatorError) {
        guard !request.ranges.isEmpty else { return }
        for n in request.ranges {
            let user = UID.user(n + 1)
            record.lockingUsers[n].enabled = true
            try setPIN(.user(n), pin: [], lockingKey: lockingKey)
            record.ranges[n].readLockAuthorities = [user.rawValue]
            record.ranges[n].writeLockAuthorities = [user.rawValue]
            record.ranges[n].getAuthorities = [UID.admins.rawValue, user.rawValue]
        }
        record.singleUserRanges = request.ranges
        record.singleUserPolicyAdmins = request.policyAdmins
    }

    func leaveSingleUserMode() {
        record.singleUserRanges = nil
        record.singleUserPolicyAdmins = nil
    }

    /// Level 0's Single User Mode descriptor: ranges supported; Any, All, and the range policy.
    func singleUserFeature() -> SingleUserFeature {
        let ranges = record.singleUserRanges ?? []
        var flags: UInt8 = 0
        if !ranges.isEmpty { flags |= 0x01 }
        if !ranges.isEmpty && ranges.count == record.ranges.count { flags |= 0x02 }
        if record.singleUserPolicyAdmins == true { flags |= 0x04 }
        return SingleUserFeature(lockingObjects: UInt32(record.ranges.count), flags: flags)
    }

    // MARK: Erase and Reactivate

    /// Erase on a SUM range (by the Admins or its user): a new media key, locking off and
    /// unlocked, the user's PIN empty again — the way an administrator takes a range back from a
    /// user who forgot the PIN, without ever learning the data.
    func erase(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        guard session.sp == .locking, let n = call.invokingUID.lockingRangeIndex, n < record.ranges.count else {
            return .fail(.invalidParameter)
        }
        guard let owner = singleUserOwner(ofRange: n), session.isAuthenticated(asAnyOf: [.admins, owner]),
              let lockingKey = session.lockingKey else { return .fail(.notAuthorized) }
        guard call.arguments.isEmpty else { return .fail(.invalidParameter) }
        do {
            let key = try Self.newMediaKey()
            record.ranges[n].sealedMediaKey = Data(try DriveCrypto.seal(key, key: lockingKey))
            record.ranges[n].keyGeneration += 1
            record.ranges[n].readLockEnabled = false
            record.ranges[n].writeLockEnabled = false
            record.ranges[n].readLocked = false
            record.ranges[n].writeLocked = false
            record.ranges[n].openMediaKey = Data(key)
            mediaCiphers[n] = try XTSCipher(key: key)
            try setPIN(.user(n), pin: [], lockingKey: lockingKey)
            try persist()
        } catch {
            return .fail(.tperMalfunction)
        }
        return .ok
    }

    /// Reactivate (Admins, in Single User Mode only): the Locking SP starts over — every range
    /// erased, every authority back to factory — and is activated again with the new selection;
    /// Admin1 keeps its PIN unless Admin1PIN names another. The session ends.
    func reactivate(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        guard session.sp == .locking, call.invokingUID == .thisSP else { return .fail(.invalidParameter) }
        guard session.isAuthenticated(asAnyOf: [.admins]) else { return .fail(.notAuthorized) }
        guard isInSingleUserMode else { return .fail(.fail) }
        guard let request = SingleUserRequest(call.arguments, rangeCount: record.ranges.count,
                                              userCount: record.lockingUsers.count, reactivate: true) else {
            return .fail(.invalidParameter)
        }
        let admin1 = UID.lockingAdmin(1)
        guard let adminPIN = request.admin1PIN ?? session.presentedPINs[admin1] else { return .fail(.invalidParameter) }
        do {
            try resetLockingSP(keepGlobalKey: false, keepAllKeys: false)
            try activateLockingSP(admin1PIN: adminPIN, singleUser: request)
        } catch {
            return .fail(.tperMalfunction)
        }
        sessions = sessions.filter { $0.value.sp != .locking }
        return MethodOutcome(endsSession: true)
    }
}
