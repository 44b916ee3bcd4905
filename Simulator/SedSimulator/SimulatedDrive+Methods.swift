import Foundation
import TCGStorage
import Platform

/// Method execution with Opal's access control, per SP and object.
extension SimulatedDrive {
    /// The largest Random a host may ask for in one call (answered whole, never silently cut).
    static let maximumRandomBytes: UInt64 = 256

    func execute(_ call: MethodCall, session: inout DriveSession) -> MethodOutcome {
        // A read-only session changes nothing.
        guard session.write || !MethodID.changingState.contains(call.methodUID) else { return .fail(.notAuthorized) }
        if isEnterprise { return executeEnterprise(call, session: &session) }
        switch call.methodUID {
        case MethodID.get: return get(call, session: session)
        case MethodID.set: return set(call, session: &session)
        case MethodID.next: return next(call, session: session)
        case MethodID.getACL: return getACL(call, session: session)
        case MethodID.authenticate: return authenticateMethod(call, session: &session)
        case MethodID.genKey: return genKey(call, session: session)
        case MethodID.activate: return activate(call, session: session)
        case MethodID.revert: return revert(call, session: session)
        case MethodID.revertSP: return revertSP(call, session: session)
        case MethodID.erase: return erase(call, session: session)
        case MethodID.reactivate: return reactivate(call, session: session)
        case MethodID.random:
            guard call.invokingUID == .thisSP, call.arguments.count == 1, let count = call.arguments[0].unsignedValue,
                  count <= Self.maximumRandomBytes else { return .fail(.invalidParameter) }
            guard let bytes = try? DriveCrypto.randomBytes(Int(count)) else { return .fail(.tperMalfunction) }
            return MethodOutcome(values: [.bytes(bytes)])
        default:
            return .fail(.invalidParameter)
        }
    }

    // MARK: Get

    struct CellBlock {
        var startColumn: UInt64?
        var endColumn: UInt64?
        var startRow: UInt64?
        var endRow: UInt64?

        init?(_ arguments: [TCGValue]) {
            guard arguments.count <= 1 else { return nil }
            guard let first = arguments.first else { return }
            guard case .list(let items) = first else { return nil }
            for item in items {
                guard case .named(let name, let value) = item, let v = value.unsignedValue else { return nil }
                switch name.unsignedValue {
                case Column.CellBlock.startColumn: startColumn = v
                case Column.CellBlock.endColumn: endColumn = v
                case Column.CellBlock.startRow: startRow = v
                case Column.CellBlock.endRow: endRow = v
                default: return nil
                }
            }
        }
    }

    func get(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        let object = call.invokingUID
        if object == .mbrTable || object == .dataStoreTable {
            let isMBR = object == .mbrTable
            guard session.sp == .locking,
                  session.isAuthenticated(asAnyOf: isMBR ? [.anybody] : aceGrantees(.aceDataStoreGetAll)) else { return .fail(.notAuthorized) }
            guard let cells = CellBlock(call.arguments), cells.startColumn == nil, cells.endColumn == nil else {
                return .fail(.invalidParameter)
            }
            let table = isMBR ? mbrTable : dataStore
            let start = cells.startRow ?? 0
            let end = cells.endRow ?? (table.size - 1)
            guard start <= end, end < table.size, end - start < UInt64(Self.maxComPacketSize - 256) else {
                return .fail(.invalidParameter)
            }
            guard let bytes = try? table.read(at: start, count: Int(end - start + 1)) else { return .fail(.tperMalfunction) }
            return MethodOutcome(values: [.bytes(bytes)])
        }
        guard let row = row(object, session: session) else { return .fail(.notAuthorized) }
        // Access first: a caller who may read nothing of the row learns nothing about its columns.
        guard row.cells.values.contains(where: { mayRead($0.readers, session: session) }) else { return .fail(.notAuthorized) }
        guard let cells = CellBlock(call.arguments), cells.startRow == nil, cells.endRow == nil else {
            return .fail(.invalidParameter)
        }
        let first = cells.startColumn ?? 0
        let last = cells.endColumn ?? row.lastColumn
        guard first <= last, last <= row.lastColumn else { return .fail(.invalidParameter) }
        let requested = row.cells.filter { $0.key >= first && $0.key <= last }
        let readable = requested.filter { mayRead($0.value.readers, session: session) }
        guard requested.isEmpty || !readable.isEmpty else { return .fail(.notAuthorized) }
        let values = readable.keys.sorted().compactMap { column in readable[column].map { TCGValue.name(column, $0.value) } }
        return MethodOutcome(values: [.list(values)])
    }

    // MARK: Next, GetACL

    /// Next (Core §5.3.3.5): the row UIDs of an object table after `Where` (or from the first),
    /// at most `Count` of them.
    func next(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        guard let rows = tableRows(call.invokingUID, sp: session.sp) else { return .fail(.notAuthorized) }
        // Next needs the right to see the rows' UIDs.
        guard let firstRow = rows.first, let uidCell = row(firstRow, session: session)?.cells[0],
              mayRead(uidCell.readers, session: session) else { return .fail(.notAuthorized) }
        var after: UID?
        var count = UInt64(rows.count)
        for argument in call.arguments {
            guard case .named(let name, let value) = argument else { return .fail(.invalidParameter) }
            switch name.unsignedValue {
            case 0:
                guard let uid = value.uidValue, rows.contains(uid) else { return .fail(.invalidParameter) }
                after = uid
            case 1:
                guard let v = value.unsignedValue else { return .fail(.invalidParameter) }
                count = v
            default: return .fail(.invalidParameter)
            }
        }
        let following = after.map { start in rows.filter { $0 > start } } ?? rows
        return MethodOutcome(values: [.list(following.prefix(Int(min(count, UInt64(rows.count)))).map { .uid($0) })])
    }

    /// GetACL (Core §5.3.3.13) on the AccessControl table: the ACEs that govern a method on an
    /// object, for the pairs whose ACEs a host can change (the locking ranges' lock and read ACEs).
    private func getACL(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        guard call.invokingUID == .accessControlTable else { return .fail(.invalidParameter) }
        guard call.arguments.count == 2, let object = call.arguments[0].uidValue, let method = call.arguments[1].uidValue else {
            return .fail(.invalidParameter)
        }
        guard session.sp == .locking else { return .fail(.invalidParameter) }
        switch (object, method) {
        case (.dataStoreTable, MethodID.get): return MethodOutcome(values: [.list([.uid(.aceDataStoreGetAll)])])
        case (.dataStoreTable, MethodID.set): return MethodOutcome(values: [.list([.uid(.aceDataStoreSetAll)])])
        case (.mbrControl, MethodID.get): return MethodOutcome(values: [.list([.uid(.aceAnybody)])])
        case (.mbrControl, MethodID.set): return MethodOutcome(values: [.list([.uid(.aceMBRControlAdminsSet), .uid(.aceMBRControlSetDoneToDOR)])])
        default: break
        }
        if method == MethodID.set, case .user(let i)? = lockingSlot(cPin: object) {
            return MethodOutcome(values: [.list([.uid(.aceCPinUserSetPIN(user: i + 1))])])
        }
        if method == MethodID.genKey, let n = object.mediaKeyRangeIndex, n < record.ranges.count {
            return MethodOutcome(values: [.list([.uid(.aceKAES256GenKey(range: n))])])
        }
        guard let n = object.lockingRangeIndex, n < record.ranges.count else { return .fail(.invalidParameter) }
        switch method {
        case MethodID.get: return MethodOutcome(values: [.list([.uid(.aceGetRangeStartToActiveKey(range: n))])])
        case MethodID.set: return MethodOutcome(values: [.list([.uid(.aceSetReadLocked(range: n)), .uid(.aceSetWriteLocked(range: n))])])
        default: return .fail(.invalidParameter)
        }
    }

    func lockingSlot(cPin uid: UID) -> CredentialSlot? {
        if isEnterprise { return enterpriseSlot(cPin: uid) }
        for i in record.lockingAdmins.indices where uid == UID.cPinLockingAdmin(i + 1) { return .admin(i) }
        for i in record.lockingUsers.indices where uid == UID.cPinUser(i + 1) { return .user(i) }
        return nil
    }

    func lockingSlot(authority uid: UID) -> CredentialSlot? { credentialSlot(for: uid, in: .locking) }

    // MARK: Set

    /// The `Values` list of a Set as column → value, plus the `Where` row for byte tables.
    private func setValues(_ arguments: [TCGValue]) -> (where: UInt64?, values: TCGValue)? {
        var whereRow: UInt64?
        var values: TCGValue?
        for case .named(let name, let value) in arguments {
            switch name.unsignedValue {
            case Column.SetParameter.where: whereRow = value.unsignedValue
            case Column.SetParameter.values: values = value
            default: return nil
            }
        }
        return values.map { (whereRow, $0) }
    }

    private func columnMap(_ values: TCGValue) -> [UInt64: TCGValue]? {
        guard case .list(let items) = values else { return nil }
        var map: [UInt64: TCGValue] = [:]
        for item in items {
            guard case .named(let name, let value) = item, let col = name.unsignedValue else { return nil }
            map[col] = value
        }
        return map
    }

    /// Whether the session may Set anything of `object` at all: checked before the parameters,
    /// as the TPer checks the ACL before it looks at what a method asks (Core §4.3.1.2).
    private func maySet(_ object: UID, session: DriveSession) -> Bool {
        let isAdmin = session.isAuthenticated(asAnyOf: [.admins])
        switch session.sp {
        case .admin:
            return (object == .cPinSID || object == .tperInfo) && session.isAuthenticated(as: .sid)
        case .locking:
            if object == .dataStoreTable { return session.isAuthenticated(asAnyOf: aceGrantees(.aceDataStoreSetAll)) }
            // MBRControl: Enable by the Admins (ACE_MBRControl_Admins_Set), Done and DoneOnReset by
            // whoever ACE_MBRControl_Set_DoneToDOR names; the columns are checked in the Set itself.
            if object == .mbrControl { return isAdmin || session.isAuthenticated(asAnyOf: aceGrantees(.aceMBRControlSetDoneToDOR)) }
            if object == .mbrTable || rangeACE(object) != nil || settableACE(object) != nil
                || lockingSlot(authority: object) != nil { return isAdmin }
            if let n = object.lockingRangeIndex, n < record.ranges.count {
                let range = record.ranges[n]
                return isAdmin || session.isAuthenticated(asAnyOf: (range.readLockAuthorities + range.writeLockAuthorities).map(UID.init))
            }
            return lockingSlot(cPin: object).map { mayChangePIN($0, session: session) } ?? false
        }
    }

    /// ACE_C_PIN_…_Set_PIN: the Admins or the authority itself; for a SUM user, the user only.
    private func mayChangePIN(_ slot: CredentialSlot, session: DriveSession) -> Bool {
        let isAdmin = session.isAuthenticated(asAnyOf: [.admins])
        switch slot {
        case .admin(let i): return isAdmin || session.isAuthenticated(as: UID.lockingAdmin(i + 1))
        case .user(let i):
            // A SUM user's PIN is the user's alone; otherwise ACE_C_PIN_UserN_Set_PIN decides.
            guard singleUserRange(ofUser: i) == nil else { return session.isAuthenticated(as: UID.user(i + 1)) }
            return session.isAuthenticated(asAnyOf: aceGrantees(.aceCPinUserSetPIN(user: i + 1)))
        default: return false
        }
    }

    private func set(_ call: MethodCall, session: inout DriveSession) -> MethodOutcome {
        let object = call.invokingUID
        guard maySet(object, session: session) else { return .fail(.notAuthorized) }
        guard let (whereRow, values) = setValues(call.arguments) else { return .fail(.invalidParameter) }
        if object == .mbrTable || object == .dataStoreTable {
            let writers: [UID] = object == .mbrTable ? [.admins] : aceGrantees(.aceDataStoreSetAll)
            guard session.sp == .locking, session.isAuthenticated(asAnyOf: writers) else { return .fail(.notAuthorized) }
            guard let bytes = values.bytesValue else { return .fail(.invalidParameter) }
            let table = object == .mbrTable ? mbrTable : dataStore
            let start = whereRow ?? 0
            guard start <= table.size, UInt64(bytes.count) <= table.size - start else { return .fail(.invalidParameter) }
            do { try table.write(bytes, at: start) } catch { return .fail(.tperMalfunction) }
            return .ok
        }
        guard let columns = columnMap(values), !columns.isEmpty else { return .fail(.invalidParameter) }
        let outcome: MethodOutcome
        switch session.sp {
        case .admin: outcome = setInAdminSP(object, columns, session: &session)
        case .locking: outcome = setInLockingSP(object, columns, session: session)
        }
        if outcome.status == .success {
            do { try persist() } catch { return .fail(.tperMalfunction) }
        }
        return outcome
    }

    func setInAdminSP(_ object: UID, _ columns: [UInt64: TCGValue], session: inout DriveSession) -> MethodOutcome {
        if object == .tperInfo {
            // ACE_TPerInfo_Set_ProgrammaticResetEnable: SID, that column only.
            guard Set(columns.keys) == [8] else { return .fail(.notAuthorized) }
            guard let enable = columns[8]?.strictBoolValue else { return .fail(.invalidParameter) }
            record.programmaticResetEnable = enable
            return .ok
        }
        guard object == .cPinSID else { return .fail(.notAuthorized) }
        guard session.isAuthenticated(asAnyOf: [.sid]), Set(columns.keys) == [Column.CPin.pin] else {
            return .fail(.notAuthorized)
        }
        guard let pin = columns[Column.CPin.pin]?.bytesValue, pin.count <= 32 else { return .fail(.invalidParameter) }
        do { try setPIN(.sid, pin: pin, lockingKey: nil) } catch { return .fail(.tperMalfunction) }
        // Block SID's SID Value State and "owned" follow the PIN itself: set back to the MSID, the
        // drive reads as unowned again (TCG Storage Feature Set: Block SID Authentication §4.1.1).
        record.sidEverChanged = pin != Array(record.identity.msid.utf8)
        // Activate later in this session must hand Admin1 SID's *current* PIN, not the one the
        // session was opened with (often the MSID, which Anybody can read).
        session.presentedPINs[.sid] = pin
        return .ok
    }

    private func setInLockingSP(_ object: UID, _ columns: [UInt64: TCGValue], session: DriveSession) -> MethodOutcome {
        let isAdmin = session.isAuthenticated(asAnyOf: [.admins])
        if let n = object.lockingRangeIndex, n < record.ranges.count {
            return setRange(n, columns, session: session)
        }
        if let slot = lockingSlot(cPin: object) {
            // Admins set any PIN; a user may set its own (ACE_C_PIN_UserN_Set_PIN = Admins OR UserN),
            // and a SUM user's PIN is the user's alone.
            guard mayChangePIN(slot, session: session), Set(columns.keys) == [Column.CPin.pin] else { return .fail(.notAuthorized) }
            guard let pin = columns[Column.CPin.pin]?.bytesValue, pin.count <= 32 else { return .fail(.invalidParameter) }
            do { try setPIN(slot, pin: pin, lockingKey: session.lockingKey) } catch { return .fail(.tperMalfunction) }
            return .ok
        }
        if let slot = lockingSlot(authority: object) {
            var ownsRange = false
            if case .user(let i) = slot { ownsRange = singleUserRange(ofUser: i) != nil }
            guard isAdmin, !ownsRange, Set(columns.keys) == [Column.Authority.enabled] else { return .fail(.notAuthorized) }
            guard let enabled = columns[Column.Authority.enabled]?.strictBoolValue else { return .fail(.invalidParameter) }
            updateCredential(slot) { $0.enabled = enabled }
            return .ok
        }
        if object == .mbrControl {
            let mayDone = session.isAuthenticated(asAnyOf: aceGrantees(.aceMBRControlSetDoneToDOR))
            guard columns.keys.allSatisfy({ $0 == Column.MBRControl.enable ? isAdmin : mayDone }) else { return .fail(.notAuthorized) }
            var mbr = record.mbr
            for (col, value) in columns {
                switch col {
                case Column.MBRControl.enable:
                    guard let v = value.strictBoolValue else { return .fail(.invalidParameter) }
                    mbr.enable = v
                case Column.MBRControl.done:
                    guard let v = value.strictBoolValue else { return .fail(.invalidParameter) }
                    mbr.done = v
                case Column.MBRControl.doneOnReset:
                    guard let resets = resetList(value) else { return .fail(.invalidParameter) }
                    mbr.doneOnReset = resets
                default: return .fail(.invalidParameter)
                }
            }
            record.mbr = mbr
            return .ok
        }
        if let ace = settableACE(object) {
            guard isAdmin, Set(columns.keys) == [Column.ACE.booleanExpr] else { return .fail(.notAuthorized) }
            guard let expression = columns[Column.ACE.booleanExpr], let authorities = aceAuthorities(expression),
                  authorities.allSatisfy({ isLockingSPAuthority($0) }) else {
                return .fail(.invalidParameter)
            }
            // A User's Set_PIN takes "Admins" or "Admins OR UserN" only (Opal SSC 2.01, *ACE1).
            if case .userSetPIN(let n) = ace, Set(authorities) != [.admins], Set(authorities) != [.admins, .user(n)] {
                return .fail(.invalidParameter)
            }
            record.aceExpressions = (record.aceExpressions ?? [:]).merging([object.rawValue: authorities.map(\.rawValue)]) { $1 }
            return .ok
        }
        if let (range, ace) = rangeACE(object) {
            guard isAdmin, Set(columns.keys) == [Column.ACE.booleanExpr] else { return .fail(.notAuthorized) }
            guard let expression = columns[Column.ACE.booleanExpr], let authorities = aceAuthorities(expression) else {
                return .fail(.invalidParameter)
            }
            let raw = authorities.map(\.rawValue)
            switch ace {
            case .readLocked: record.ranges[range].readLockAuthorities = raw
            case .writeLocked: record.ranges[range].writeLockAuthorities = raw
            case .getRange: record.ranges[range].getAuthorities = raw
            }
            return .ok
        }
        return .fail(.notAuthorized)
    }

    /// An authority of the Locking SP's Authority table (a class, Anybody, an Admin or a User).
    private func isLockingSPAuthority(_ uid: UID) -> Bool {
        uid == .anybody || uid == .admins || uid == .lockingUsers || lockingSlot(authority: uid) != nil
    }

    /// Authorities named in an ACE BooleanExpr (OR of authority references, as Opal hosts write it).
    private func aceAuthorities(_ value: TCGValue) -> [UID]? {
        guard case .list(let items) = value else { return nil }
        var out: [UID] = []
        for case .named(let name, let ref) in items {
            guard name.bytesValue == UID.halfUIDAuthorityObjectRef else { continue }
            guard let uid = ref.uidValue else { return nil }
            out.append(uid)
        }
        return out.isEmpty ? nil : out
    }

    func resetList(_ value: TCGValue) -> [ResetType]? {
        guard case .list(let items) = value else { return nil }
        var out: [ResetType] = []
        for item in items {
            guard let raw = item.unsignedValue, let reset = ResetType(rawValue: raw), reset != .hotPlug else { return nil }
            if !out.contains(reset) { out.append(reset) }
        }
        return out
    }

    /// `bandMaster`: the caller has checked that the session is the band's Enterprise BandMaster,
    /// who configures, bounds and locks it (BandMasterN_SetBand).
    func setRange(_ n: Int, _ columns: [UInt64: TCGValue], session: DriveSession, bandMaster: Bool = false) -> MethodOutcome {
        let isAdmin = bandMaster || session.isAuthenticated(asAnyOf: [.admins])
        // In Single User Mode the range's user configures it; its bounds follow the range policy.
        let owner = singleUserOwner(ofRange: n)
        let configures = owner.map { session.isAuthenticated(as: $0) } ?? isAdmin
        let setsBounds = owner == nil || record.singleUserPolicyAdmins == true ? isAdmin : configures
        var range = record.ranges[n]
        for (col, value) in columns {
            switch col {
            case Column.Locking.rangeStart, Column.Locking.rangeLength:
                guard setsBounds else { return .fail(.notAuthorized) }
                guard n != 0, let v = value.unsignedValue else { return .fail(.invalidParameter) }
                if col == Column.Locking.rangeStart { range.start = v } else { range.length = v }
            case Column.Locking.readLockEnabled, Column.Locking.writeLockEnabled:
                guard configures else { return .fail(.notAuthorized) }
                guard let v = value.strictBoolValue else { return .fail(.invalidParameter) }
                if col == Column.Locking.readLockEnabled { range.readLockEnabled = v } else { range.writeLockEnabled = v }
            case Column.Locking.readLocked, Column.Locking.writeLocked:
                let isRead = col == Column.Locking.readLocked
                let allowed = (isRead ? range.readLockAuthorities : range.writeLockAuthorities).map(UID.init)
                guard bandMaster || session.isAuthenticated(asAnyOf: allowed) else { return .fail(.notAuthorized) }
                guard let v = value.strictBoolValue else { return .fail(.invalidParameter) }
                if isRead { range.readLocked = v } else { range.writeLocked = v }
            case Column.Locking.lockOnReset:
                guard configures else { return .fail(.notAuthorized) }
                guard let resets = resetList(value) else { return .fail(.invalidParameter) }
                range.lockOnReset = resets
            default:
                return .fail(.invalidParameter)
            }
        }
        if n != 0 {
            let capacity = record.identity.blockCount
            guard range.start <= capacity, range.length <= capacity - range.start else { return .fail(.invalidParameter) }
            for (i, other) in record.ranges.enumerated() where i != 0 && i != n && other.length > 0 && range.length > 0 {
                if range.start < other.start + other.length && other.start < range.start + range.length {
                    return .fail(.invalidParameter)
                }
            }
        }
        let previous = record.ranges[n]
        record.ranges[n] = range
        guard updateKeyCustody(range: n, lockingKey: session.lockingKey) else {
            record.ranges[n] = previous
            return .fail(.tperMalfunction)
        }
        return .ok
    }

    /// Keeps a range's key where it must be: loaded while usable, in clear on disk only if it opens at power-on.
    @discardableResult
    func updateKeyCustody(range n: Int, lockingKey: [UInt8]?) -> Bool {
        var key = record.ranges[n].openMediaKey.map { Array($0) }
        if key == nil, let lockingKey, let sealed = record.ranges[n].sealedMediaKey {
            key = DriveCrypto.open(Array(sealed), key: lockingKey)
        }
        guard let key else { return !record.ranges[n].opensAtPowerOn && isFullyLocked(n) }
        record.ranges[n].openMediaKey = record.ranges[n].opensAtPowerOn ? Data(key) : nil
        if isFullyLocked(n) {
            mediaCiphers[n] = nil
        } else if mediaCiphers[n] == nil {
            guard let cipher = try? XTSCipher(key: key) else { return false }
            mediaCiphers[n] = cipher
        }
        return true
    }

    // MARK: Authenticate, GenKey, Activate, Revert

    private func authenticateMethod(_ call: MethodCall, session: inout DriveSession) -> MethodOutcome {
        guard let authority = call.arguments.first?.uidValue else { return .fail(.invalidParameter) }
        var challenge: [UInt8] = []
        for case .named(let name, let value) in call.arguments.dropFirst() where name.unsignedValue == 0 {
            challenge = value.bytesValue ?? []
        }
        return authenticated(authority, challenge: challenge, session: &session)
    }

    /// The Authenticate method's answer (Opal's and Enterprise's alike): True and the authority
    /// added to the session, or False for a wrong PIN (a try spent); a locked-out authority may
    /// be refused with AUTHORITY_LOCKED_OUT (the drive's lockout setting says which).
    func authenticated(_ authority: UID, challenge: [UInt8], session: inout DriveSession) -> MethodOutcome {
        if authority == .anybody { return MethodOutcome(values: [.bool(true)]) }
        switch authenticate(authority, in: session.sp, challenge: challenge) {
        case .success(let lockingKey):
            session.authorities.insert(authority)
            session.presentedPINs[authority] = challenge
            if let lockingKey { session.lockingKey = lockingKey }
            return MethodOutcome(values: [.bool(true)])
        case .failure(let status):
            if status == .authorityLockedOut { return .fail(status) }
            return MethodOutcome(values: [.bool(false)])
        }
    }

    private func genKey(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        guard session.sp == .locking, let n = call.invokingUID.mediaKeyRangeIndex, n < record.ranges.count else {
            return .fail(.invalidParameter)
        }
        // A SUM range is rekeyed by its user alone (ACE_K_AES_256_RangeN_GenKey = UserN+1);
        // otherwise by whoever that ACE names (the Admins unless an Admin changed it).
        let allowed: [UID] = singleUserOwner(ofRange: n).map { [$0] } ?? aceGrantees(.aceKAES256GenKey(range: n))
        guard session.isAuthenticated(asAnyOf: allowed), let lockingKey = session.lockingKey else { return .fail(.notAuthorized) }
        guard let key = try? Self.newMediaKey(), let sealed = try? DriveCrypto.seal(key, key: lockingKey),
              let cipher = try? XTSCipher(key: key) else { return .fail(.tperMalfunction) }
        record.ranges[n].sealedMediaKey = Data(sealed)
        record.ranges[n].openMediaKey = record.ranges[n].opensAtPowerOn ? Data(key) : nil
        record.ranges[n].keyGeneration += 1
        mediaCiphers[n] = isFullyLocked(n) ? nil : cipher
        do { try persist() } catch { return .fail(.tperMalfunction) }
        return .ok
    }

    private func activate(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        guard session.sp == .admin, call.invokingUID == .lockingSP else { return .fail(.invalidParameter) }
        // presentedPINs[.sid] follows a Set of C_PIN_SID in this session, so it is SID's current PIN.
        guard session.isAuthenticated(asAnyOf: [.sid]), let sidPIN = session.presentedPINs[.sid] else {
            return .fail(.notAuthorized)
        }
        guard let singleUser = SingleUserRequest(call.arguments, rangeCount: record.ranges.count,
                                                 userCount: record.lockingUsers.count, reactivate: false) else {
            return .fail(.invalidParameter)
        }
        // Activating an SP that is already Manufactured has no effect.
        if record.lockingLifeCycle == .manufactured { return .ok }
        // Admin1 inherits the SID PIN.
        do { try activateLockingSP(admin1PIN: sidPIN, singleUser: singleUser) } catch { return .fail(.tperMalfunction) }
        return .ok
    }

    /// Activation proper (Activate, Reactivate): a new Locking SP key seals every range's media
    /// key, the authorities start from factory with Admin1 holding `admin1PIN`, the ranges named
    /// for Single User Mode go to their users, and the SP is Manufactured.
    func activateLockingSP(admin1PIN: [UInt8], singleUser: SingleUserRequest) throws {
        let lockingKey = try DriveCrypto.randomBytes(32)
        for i in record.ranges.indices {
            guard let open = record.ranges[i].openMediaKey else { throw SimulatorError.storage("range \(i) has no media key to seal") }
            record.ranges[i].sealedMediaKey = Data(try DriveCrypto.seal(Array(open), key: lockingKey))
        }
        resetLockingAuthorities()
        record.lockingAdmins[0].enabled = true
        try setPIN(.admin(0), pin: admin1PIN, lockingKey: lockingKey)
        record.lockingLifeCycle = .manufactured
        try enterSingleUserMode(singleUser, lockingKey: lockingKey)
        try persist()
    }

    func revert(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        guard session.sp == .admin, call.invokingUID == .adminSP else { return .fail(.invalidParameter) }
        return revertTPer(session: session)
    }

    /// The whole TPer back to factory state, by SID or PSID: Admin SP.Revert, or on an
    /// Enterprise drive also ThisSP.RevertSP in an Admin SP session (what sedutil's
    /// --revertTPer and --PSIDrevert send to Enterprise drives).
    func revertTPer(session: DriveSession) -> MethodOutcome {
        guard session.isAuthenticated(asAnyOf: [.sid, .psid]) else { return .fail(.notAuthorized) }
        do {
            let eraseData = record.lockingLifeCycle != .manufacturedInactive
            let msid = Array(record.identity.msid.utf8)
            try resetLockingSP(keepGlobalKey: !eraseData, keepAllKeys: !eraseData)
            if isEnterprise { try Self.enterpriseFactoryState(&record) }
            try setPIN(.sid, pin: msid, lockingKey: nil)
            record.sidEverChanged = false
            try persist()
        } catch {
            return .fail(.tperMalfunction)
        }
        sessions.removeAll()
        return MethodOutcome(endsSession: true)
    }

    private func revertSP(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        guard session.sp == .locking, call.invokingUID == .thisSP else { return .fail(.invalidParameter) }
        guard session.isAuthenticated(asAnyOf: [.admins]) else { return .fail(.notAuthorized) }
        var keepGlobal = false
        for case .named(let name, let value) in call.arguments where name.unsignedValue == Column.keepGlobalRangeKey {
            guard let v = value.strictBoolValue else { return .fail(.invalidParameter) }
            keepGlobal = v
        }
        if keepGlobal {
            let global = record.ranges[0]
            // The rule of §5.1.3.2: a global range locked for both read and write cannot keep its key.
            if global.readLockEnabled && global.readLocked && global.writeLockEnabled && global.writeLocked {
                return .fail(.fail)
            }
            guard mediaCiphers[0] != nil || global.openMediaKey != nil || session.lockingKey != nil else {
                return .fail(.fail)
            }
        }
        do {
            if keepGlobal, record.ranges[0].openMediaKey == nil, let lk = session.lockingKey,
               let sealed = record.ranges[0].sealedMediaKey, let key = DriveCrypto.open(Array(sealed), key: lk) {
                record.ranges[0].openMediaKey = Data(key)
            }
            try resetLockingSP(keepGlobalKey: keepGlobal, keepAllKeys: false)
            try persist()
        } catch {
            return .fail(.tperMalfunction)
        }
        sessions = sessions.filter { $0.value.sp != .locking }
        return MethodOutcome(endsSession: true)
    }

    /// Locking SP Admins and Users as shipped: disabled, no PIN.
    func resetLockingAuthorities() {
        record.lockingAdmins = Self.factoryAuthorities(count: record.lockingAdmins.count, settings: record.settings)
        record.lockingUsers = Self.factoryAuthorities(count: record.lockingUsers.count, settings: record.settings)
    }

    /// Returns the Locking SP to Manufactured-Inactive with factory tables; new media keys unless kept.
    func resetLockingSP(keepGlobalKey: Bool, keepAllKeys: Bool) throws(SimulatorError) {
        var ranges: [RangeRecord] = []
        for (i, old) in record.ranges.enumerated() {
            var fresh = try Self.factoryRange()
            if keepAllKeys || (i == 0 && keepGlobalKey), let key = old.openMediaKey {
                fresh.openMediaKey = key
                fresh.keyGeneration = old.keyGeneration
            } else {
                fresh.keyGeneration = old.keyGeneration + 1
            }
            ranges.append(fresh)
        }
        record.ranges = ranges
        resetLockingAuthorities()
        record.lockingLifeCycle = .manufacturedInactive
        leaveSingleUserMode()
        record.mbr = MBRRecord()
        record.aceExpressions = nil
        try mbrTable.wipe()
        try dataStore.wipe()
        mediaCiphers.removeAll()
        for i in record.ranges.indices {
            if let key = record.ranges[i].openMediaKey { mediaCiphers[i] = try XTSCipher(key: Array(key)) }
        }
    }
}
