import TCGStorage

/// The drive's object tables as Get, Next and GetACL see them: every row with all the columns
/// Opal defines for it (Core 2.01 §5.3 and the Opal SSC preconfiguration tables), each column
/// with who may read it. Hosts that list ranges and users, size the MBR or read LockingInfo
/// read these rows whole.
extension SimulatedDrive {
    /// Who may read a column (the ACE of its Get, reduced to the authorities it names).
    enum ReadAccess {
        case anybody
        case authorities([UID])
        case nobody
    }

    struct Cell {
        var value: TCGValue
        var readers: ReadAccess
    }

    /// One row: its cells by column number, and the last column its table defines (a Get whose
    /// endColumn lies beyond it is INVALID_PARAMETER; columns up to it that are not listed are
    /// optional ones this drive does not keep, and are left out of answers).
    struct Row {
        var cells: [UInt64: Cell]
        let lastColumn: UInt64
    }

    /// Tables by their UID (row 0 of the table's UID space), each with its rows in UID order.
    enum TableKind: UInt64 {
        case object = 1
        case byte = 2
    }

    // MARK: Rows

    func row(_ object: UID, session: DriveSession) -> Row? {
        switch session.sp {
        case .admin: return adminSPRow(object, session: session)
        case .locking: return lockingSPRow(object, session: session)
        }
    }

    private func identityCells(_ uid: UID, name: String, commonName: String? = nil, readers: ReadAccess = .anybody) -> [UInt64: Cell] {
        var cells: [UInt64: Cell] = [0: Cell(value: .bytes(uid.bytes), readers: readers),
                                     1: Cell(value: .bytes(Array(name.utf8)), readers: readers)]
        if let commonName { cells[2] = Cell(value: .bytes(Array(commonName.utf8)), readers: readers) }
        return cells
    }

    private func adminSPRow(_ object: UID, session: DriveSession) -> Row? {
        let sidOrAdmins: ReadAccess = .authorities([.sid, .adminSPAdmin(1)])
        switch object {
        case .cPinMSID:
            return cPinRow(object, name: "C_PIN_MSID", credential: nil, readers: .anybody,
                           pin: .bytes(Array(record.identity.msid.utf8)))
        case .cPinSID:
            return cPinRow(object, name: "C_PIN_SID", credential: record.sid, readers: sidOrAdmins)
        case .cPinPSID:
            return cPinRow(object, name: "C_PIN_PSID", credential: record.psid, readers: sidOrAdmins)
        case .adminSP, .lockingSP:
            let isAdmin = object == .adminSP
            var cells = identityCells(object, name: isAdmin ? "Admin" : "Locking")
            cells[5] = Cell(value: .unsigned(0), readers: .anybody)   // Bytes: no issuance space
            cells[6] = Cell(value: .unsigned((isAdmin ? .manufactured : record.lockingLifeCycle).rawValue), readers: .anybody)
            cells[7] = Cell(value: .bool(false), readers: .anybody)   // Frozen
            return Row(cells: cells, lastColumn: 7)
        case .tperInfo:
            var cells: [UInt64: Cell] = [0: Cell(value: .bytes(object.bytes), readers: .anybody)]
            cells[1] = Cell(value: .unsigned(0), readers: .anybody)
            // GUDID: 12 bytes, the WWN behind a 4-byte vendor prefix of zeros.
            let wwn = (0..<8).map { UInt8(truncatingIfNeeded: record.identity.wwn >> (56 - 8 * UInt64($0))) }
            cells[2] = Cell(value: .bytes([0, 0, 0, 0] + wwn), readers: .anybody)
            cells[3] = Cell(value: .unsigned(1), readers: .anybody)
            cells[4] = Cell(value: .unsigned(1), readers: .anybody)
            cells[5] = Cell(value: .unsigned(1), readers: .anybody)
            cells[6] = Cell(value: .unsigned(0), readers: .anybody)
            cells[7] = Cell(value: .list([.bytes(Array("Opal".utf8))]), readers: .anybody)
            cells[8] = Cell(value: .bool(record.programmaticResetEnable ?? false), readers: .anybody)
            return Row(cells: cells, lastColumn: 8)
        default:
            if let row = authorityRow(object, sp: .admin) { return row }
            return tableTableRow(object, sp: .admin)
        }
    }

    private func lockingSPRow(_ object: UID, session: DriveSession) -> Row? {
        let admins: ReadAccess = .authorities([.admins])
        if object == .lockingInfo {
            var cells = identityCells(object, name: "")
            let values: [UInt64: TCGValue] = [
                2: .unsigned(1),                                      // Version
                3: .unsigned(1),                                      // EncryptSupport: media encryption
                Column.LockingInfo.maxRanges: .unsigned(UInt64(record.ranges.count - 1)),
                5: .unsigned(0),                                      // MaxReEncryptions
                6: .unsigned(0),                                      // KeysAvailableCfg
                7: .bool(false),                                      // AlignmentRequired
                8: .unsigned(UInt64(record.identity.blockSize)),      // LogicalBlockSize
                9: .unsigned(8),                                      // AlignmentGranularity (blocks), as Geometry says
                10: .unsigned(0),                                     // LowestAlignedLBA
            ]
            for (column, value) in values { cells[column] = Cell(value: value, readers: .anybody) }
            return Row(cells: cells, lastColumn: 10)
        }
        if let n = object.lockingRangeIndex, n < record.ranges.count {
            let r = record.ranges[n]
            let readers: ReadAccess = .authorities((r.getAuthorities ?? [UID.admins.rawValue]).map(UID.init))
            var cells = identityCells(object, name: n == 0 ? "Locking_GlobalRange" : "Locking_Range\(n)", commonName: "Locking")
            let values: [UInt64: TCGValue] = [
                Column.Locking.rangeStart: .unsigned(r.start), Column.Locking.rangeLength: .unsigned(r.length),
                Column.Locking.readLockEnabled: .bool(r.readLockEnabled),
                Column.Locking.writeLockEnabled: .bool(r.writeLockEnabled),
                Column.Locking.readLocked: .bool(r.readLocked), Column.Locking.writeLocked: .bool(r.writeLocked),
                Column.Locking.lockOnReset: .list(r.lockOnReset.map { .unsigned($0.rawValue) }),
                Column.Locking.activeKey: .uid(.kAES256(range: n)),
            ]
            for (column, value) in values { cells[column] = Cell(value: value, readers: readers) }
            // The re-encryption columns (11…19) belong to drives that re-encrypt in place; this one does not.
            return Row(cells: cells, lastColumn: 19)
        }
        if let slot = lockingSlot(cPin: object) {
            let name: String
            switch slot {
            case .admin(let i): name = "C_PIN_Admin\(i + 1)"
            case .user(let i): name = "C_PIN_User\(i + 1)"
            default: name = "C_PIN"
            }
            return cPinRow(object, name: name, credential: credential(slot), readers: admins)
        }
        if let n = object.mediaKeyRangeIndex, n < record.ranges.count, object == .kAES256(range: n) {
            var cells = identityCells(object, name: n == 0 ? "K_AES_256_GlobalRange_Key" : "K_AES_256_Range\(n)_Key",
                                      commonName: "Locking", readers: admins)
            cells[3] = Cell(value: .bytes([]), readers: .nobody)               // Key: never readable
            cells[4] = Cell(value: .unsigned(7), readers: admins)             // Mode: XTS (Core symmetric_mode_media)
            return Row(cells: cells, lastColumn: 4)
        }
        if object == .mbrControl {
            let m = record.mbr
            return Row(cells: [0: Cell(value: .bytes(object.bytes), readers: .anybody),
                               Column.MBRControl.enable: Cell(value: .bool(m.enable), readers: .anybody),
                               Column.MBRControl.done: Cell(value: .bool(m.done), readers: .anybody),
                               Column.MBRControl.doneOnReset: Cell(value: .list(m.doneOnReset.map { .unsigned($0.rawValue) }),
                                                                   readers: .anybody)],
                       lastColumn: 3)
        }
        if let (range, kind) = rangeACE(object) {
            let authorities: [UInt64]
            switch kind {
            case .readLocked: authorities = record.ranges[range].readLockAuthorities
            case .writeLocked: authorities = record.ranges[range].writeLockAuthorities
            case .getRange: authorities = record.ranges[range].getAuthorities ?? [UID.admins.rawValue]
            }
            var cells = identityCells(object, name: "", readers: admins)
            cells[Column.ACE.booleanExpr] = Cell(value: Self.booleanExpression(authorities.map(UID.init)), readers: admins)
            return Row(cells: cells, lastColumn: 4)
        }
        if settableACE(object) != nil {
            var cells = identityCells(object, name: "", readers: admins)
            cells[Column.ACE.booleanExpr] = Cell(value: Self.booleanExpression(aceGrantees(object)), readers: admins)
            return Row(cells: cells, lastColumn: 4)
        }
        if let row = authorityRow(object, sp: .locking) { return row }
        return tableTableRow(object, sp: .locking)
    }

    private func cPinRow(_ uid: UID, name: String, credential: CredentialRecord?, readers: ReadAccess,
                         pin: TCGValue = .bytes([])) -> Row {
        var cells = identityCells(uid, name: name, commonName: "", readers: readers)
        // The PIN column is write-only except C_PIN_MSID's (ACE_C_PIN_MSID_Get_PIN: Anybody).
        cells[Column.CPin.pin] = Cell(value: pin, readers: credential == nil ? readers : .nobody)
        cells[Column.CPin.tryLimit] = Cell(value: .unsigned(credential?.tryLimit ?? 0), readers: readers)
        cells[Column.CPin.tries] = Cell(value: .unsigned(credential?.tries ?? 0), readers: readers)
        cells[Column.CPin.persistence] = Cell(value: .bool(credential?.persistence ?? false), readers: readers)
        return Row(cells: cells, lastColumn: 7)
    }

    /// Authority rows: UID, Name, CommonName for anybody; the rest for the SP's administrators.
    private func authorityRow(_ uid: UID, sp: SecurityProvider) -> Row? {
        let name: String
        var isClass = false
        var enabled = true
        var credentialUID: UID?
        switch (sp, uid) {
        case (_, .anybody): name = "Anybody"
        case (.admin, .admins), (.locking, .admins): name = "Admins"; isClass = true
        case (.admin, .makers): name = "Makers"; isClass = true
        case (.admin, .sid): name = "SID"; credentialUID = .cPinSID
        case (.admin, .psid): name = "PSID"; credentialUID = .cPinPSID
        case (.locking, .lockingUsers): name = "Users"; isClass = true
        default:
            guard sp == .locking, let slot = credentialSlot(for: uid, in: .locking) else { return nil }
            switch slot {
            case .admin(let i) where isEnterprise: name = "BandMaster\(i)"; credentialUID = .cPinBandMaster(i)
            case .user where isEnterprise: name = "EraseMaster"; credentialUID = .cPinEraseMaster
            case .admin(let i): name = "Admin\(i + 1)"; credentialUID = .cPinLockingAdmin(i + 1)
            case .user(let i): name = "User\(i + 1)"; credentialUID = .cPinUser(i + 1)
            default: return nil
            }
            enabled = credential(slot).enabled
        }
        let detail: ReadAccess = sp == .admin ? .anybody : .authorities([.admins])
        var cells = identityCells(uid, name: name, commonName: "")
        cells[3] = Cell(value: .bool(isClass), readers: detail)
        cells[Column.Authority.enabled] = Cell(value: .bool(enabled), readers: detail)
        cells[6] = Cell(value: .unsigned(0), readers: detail)                                    // Secure: none
        cells[9] = Cell(value: .unsigned(credentialUID == nil ? 0 : 1), readers: detail)         // Operation: password
        if let credentialUID { cells[10] = Cell(value: .uid(credentialUID), readers: detail) }
        cells[15] = Cell(value: .unsigned(0), readers: detail)                                   // Limit: none
        cells[16] = Cell(value: .unsigned(0), readers: detail)                                   // Uses
        return Row(cells: cells, lastColumn: 18)
    }

    /// The Table table's rows for the tables a host sizes or lists (Kind, Rows, granularities).
    private func tableTableRow(_ uid: UID, sp: SecurityProvider) -> Row? {
        guard uid.tableHalf == 0x0000_0001 else { return nil }
        let described = UID(UInt64(uid.rowHalf) << 32)
        guard let info = tableInfo(described, sp: sp) else { return nil }
        var cells = identityCells(uid, name: info.name, commonName: "")
        cells[4] = Cell(value: .unsigned(info.kind.rawValue), readers: .anybody)
        cells[7] = Cell(value: .unsigned(info.rows), readers: .anybody)
        if info.kind == .byte {
            cells[12] = Cell(value: .unsigned(info.rows), readers: .anybody)        // MaxSize
            cells[13] = Cell(value: .unsigned(1), readers: .anybody)                // MandatoryWriteGranularity
            cells[14] = Cell(value: .unsigned(UInt64(record.identity.blockSize)), readers: .anybody) // RecommendedAccessGranularity
        }
        return Row(cells: cells, lastColumn: 14)
    }

    struct TableInfo {
        let name: String
        let kind: TableKind
        /// Rows of an object table; bytes of a byte table.
        let rows: UInt64
    }

    func tableInfo(_ table: UID, sp: SecurityProvider) -> TableInfo? {
        let rowCount = { (uid: UID) -> UInt64 in UInt64(self.tableRows(uid, sp: sp)?.count ?? 0) }
        switch (sp, table.tableHalf) {
        case (_, 0x0000_0009): return TableInfo(name: "Authority", kind: .object, rows: rowCount(table))
        case (_, 0x0000_000B): return TableInfo(name: "C_PIN", kind: .object, rows: rowCount(table))
        case (.admin, 0x0000_0205): return TableInfo(name: "SP", kind: .object, rows: 2)
        case (.admin, 0x0000_0201): return TableInfo(name: "TPerInfo", kind: .object, rows: 1)
        case (.locking, 0x0000_0801): return TableInfo(name: "LockingInfo", kind: .object, rows: 1)
        case (.locking, 0x0000_0802): return TableInfo(name: "Locking", kind: .object, rows: UInt64(record.ranges.count))
        case (.locking, 0x0000_0803): return TableInfo(name: "MBRControl", kind: .object, rows: 1)
        case (.locking, 0x0000_0806): return TableInfo(name: "K_AES_256", kind: .object, rows: UInt64(record.ranges.count))
        case (.locking, 0x0000_0804): return TableInfo(name: "MBR", kind: .byte, rows: mbrTable.size)
        case (.locking, 0x0000_1001): return TableInfo(name: "DataStore", kind: .byte, rows: dataStore.size)
        default: return nil
        }
    }

    /// The rows of an object table in UID order (what Next walks), nil for tables not kept here.
    func tableRows(_ table: UID, sp: SecurityProvider) -> [UID]? {
        guard table.rowHalf == 0 else { return nil }
        let rows: [UID]
        switch (sp, table.tableHalf) {
        case (.admin, 0x0000_0009): rows = [.anybody, .admins, .makers, .sid, .psid]
        case (.admin, 0x0000_000B): rows = [.cPinSID, .cPinMSID, .cPinPSID]
        case (.admin, 0x0000_0205): rows = [.adminSP, .lockingSP]
        case (.admin, 0x0000_0201): rows = [.tperInfo]
        case (.locking, 0x0000_0009):
            rows = [.anybody, .admins] + record.lockingAdmins.indices.map { UID.lockingAdmin($0 + 1) }
                + [.lockingUsers] + record.lockingUsers.indices.map { UID.user($0 + 1) }
        case (.locking, 0x0000_000B):
            rows = record.lockingAdmins.indices.map { UID.cPinLockingAdmin($0 + 1) }
                + record.lockingUsers.indices.map { UID.cPinUser($0 + 1) }
        case (.locking, 0x0000_0801): rows = [.lockingInfo]
        case (.locking, 0x0000_0802): rows = record.ranges.indices.map { UID.lockingRange($0) }
        case (.locking, 0x0000_0803): rows = [.mbrControl]
        case (.locking, 0x0000_0806): rows = record.ranges.indices.map { UID.kAES256(range: $0) }
        default: return nil
        }
        return rows.sorted()
    }

    // MARK: ACEs the host can change

    enum RangeACE {
        case readLocked, writeLocked
        /// ACE_Locking_RangeN_Get_RangeStartToActiveKey: who may read the range's columns (the
        /// kernel adds a user to it so the user can see the range it unlocks).
        case getRange
    }

    /// The other ACEs whose BooleanExpr the Admins may set (Opal SSC 2.01 §4.3.1.6, ACL
    /// ACE_ACE_Set_BooleanExpression): DataStore reads and writes, MBRControl's Done columns,
    /// each User's Set_PIN and each range's GenKey.
    enum SettableACE: Equatable {
        case dataStoreGet, dataStoreSet, mbrDone
        /// ACE_C_PIN_UserN_Set_PIN, N counted from 1.
        case userSetPIN(Int)
        /// ACE_K_AES_256_RangeN_GenKey (the global range: 0).
        case genKey(Int)
    }

    func settableACE(_ uid: UID) -> SettableACE? {
        switch uid {
        case .aceDataStoreGetAll: return .dataStoreGet
        case .aceDataStoreSetAll: return .dataStoreSet
        case .aceMBRControlSetDoneToDOR: return .mbrDone
        default: break
        }
        if let n = record.lockingUsers.indices.first(where: { uid == UID.aceCPinUserSetPIN(user: $0 + 1) }) { return .userSetPIN(n + 1) }
        if let n = record.ranges.indices.first(where: { uid == UID.aceKAES256GenKey(range: $0) }) { return .genKey(n) }
        return nil
    }

    /// Who an Admin-settable ACE grants now: what an Admin set, else the preconfiguration (the
    /// Admins; for a User's Set_PIN, the Admins or that User).
    func aceGrantees(_ ace: UID) -> [UID] {
        if let set = record.aceExpressions?[ace.rawValue] { return set.map(UID.init) }
        if case .userSetPIN(let n)? = settableACE(ace) { return [.admins, .user(n)] }
        return [.admins]
    }

    func rangeACE(_ uid: UID) -> (Int, RangeACE)? {
        for n in record.ranges.indices {
            if uid == UID.aceSetReadLocked(range: n) { return (n, .readLocked) }
            if uid == UID.aceSetWriteLocked(range: n) { return (n, .writeLocked) }
            if uid == UID.aceGetRangeStartToActiveKey(range: n) { return (n, .getRange) }
        }
        return nil
    }

    /// An ACE BooleanExpr: the authorities joined by OR, as Opal preconfigures and hosts write it.
    public static func booleanExpression(_ authorities: [UID]) -> TCGValue {
        var items: [TCGValue] = []
        for (i, authority) in authorities.enumerated() {
            items.append(.named(.bytes(UID.halfUIDAuthorityObjectRef), .uid(authority)))
            if i > 0 { items.append(.named(.bytes(UID.halfUIDBooleanACE), .unsigned(1))) }
        }
        return .list(items)
    }

    // MARK: Reading access

    func mayRead(_ access: ReadAccess, session: DriveSession) -> Bool {
        switch access {
        case .anybody: return true
        case .nobody: return false
        case .authorities(let allowed): return session.isAuthenticated(asAnyOf: allowed)
        }
    }
}
