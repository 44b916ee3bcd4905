import Foundation
import TCGStorage

/// The Enterprise SSC personality (Enterprise SSC 1.01): the Locking SP is always Manufactured;
/// band N (row N of the Locking table, Band0 the global band) is configured, locked and unlocked
/// by BandMaster N alone; the EraseMaster erases bands; authorities authenticate with the
/// Authenticate method (StartSession takes no credentials); Get and Set name columns by their
/// names. The record keeps BandMaster N in `lockingAdmins[N]` and the EraseMaster in
/// `lockingUsers[0]`, so key custody, tries, lockout and media encryption are the drive's one
/// implementation; only the access rules and the encodings here are Enterprise's own.
extension SimulatedDrive {
    var isEnterprise: Bool { record.settings.ssc == .enterprise }

    /// As manufactured: one BandMaster per band and the EraseMaster, each enabled with the MSID
    /// as PIN (Enterprise §11.4.2) and each holding the Locking SP key, which seals every band's
    /// media key; the Locking SP Manufactured.
    static func enterpriseFactoryState(_ record: inout DriveRecord) throws(SimulatorError) {
        let msid = Array(record.identity.msid.utf8)
        let lockingKey = try DriveCrypto.randomBytes(32)
        for i in record.ranges.indices {
            guard let open = record.ranges[i].openMediaKey else { throw .storage("band \(i) has no media key to seal") }
            record.ranges[i].sealedMediaKey = Data(try DriveCrypto.seal(Array(open), key: lockingKey))
            // BandMasterN_SetBand: the lock columns are the band's BandMaster's.
            record.ranges[i].readLockAuthorities = [UID.bandMaster(i).rawValue]
            record.ranges[i].writeLockAuthorities = [UID.bandMaster(i).rawValue]
            record.ranges[i].getAuthorities = [UID.anybody.rawValue]
        }
        func master() throws(SimulatorError) -> CredentialRecord {
            let salt = try DriveCrypto.randomBytes(16)
            let stretched = try DriveCrypto.stretch(pin: msid, salt: salt)
            var credential = CredentialRecord(enabled: true, salt: Data(salt), verifier: Data(stretched.verifier),
                                              tryLimit: record.settings.tryLimit, persistence: record.settings.triesPersistent)
            credential.sealedLockingKey = Data(try DriveCrypto.seal(lockingKey, key: stretched.kek))
            return credential
        }
        var masters: [CredentialRecord] = []
        for _ in record.ranges.indices { masters.append(try master()) }
        record.lockingAdmins = masters
        record.lockingUsers = [try master()]
        record.lockingLifeCycle = .manufactured
    }

    func enterpriseSlot(authority uid: UID) -> CredentialSlot? {
        if uid == .eraseMaster { return .user(0) }
        if let n = uid.bandMasterIndex, n < record.lockingAdmins.count { return .admin(n) }
        return nil
    }

    func enterpriseSlot(cPin uid: UID) -> CredentialSlot? {
        if uid == .cPinEraseMaster { return .user(0) }
        if let n = uid.cPinBandMasterIndex, n < record.lockingAdmins.count { return .admin(n) }
        return nil
    }

    /// The methods an Enterprise drive has (Enterprise Get, Set and Authenticate, Erase, Next,
    /// Random, Admin SP Revert and the Admin SP's own RevertSP); Opal's method UIDs are not among them.
    func executeEnterprise(_ call: MethodCall, session: inout DriveSession) -> MethodOutcome {
        switch call.methodUID {
        case MethodID.enterpriseGet: return enterpriseGet(call, session: session)
        case MethodID.enterpriseSet: return enterpriseSet(call, session: &session)
        case MethodID.enterpriseAuthenticate: return enterpriseAuthenticate(call, session: &session)
        case MethodID.erase: return eraseBand(call, session: session)
        case MethodID.revert: return revert(call, session: session)
        case MethodID.revertSP:
            // ThisSP.RevertSP reverts the SP it is invoked in; in the Admin SP, the whole TPer.
            guard session.sp == .admin, call.invokingUID == .thisSP, call.arguments.isEmpty else { return .fail(.invalidParameter) }
            return revertTPer(session: session)
        case MethodID.next: return next(call, session: session)
        case MethodID.random:
            guard call.invokingUID == .thisSP, call.arguments.count == 1, let count = call.arguments[0].unsignedValue,
                  count <= 32 else { return .fail(.invalidParameter) }
            guard let bytes = try? DriveCrypto.randomBytes(Int(count)) else { return .fail(.tperMalfunction) }
            return MethodOutcome(values: [.bytes(bytes)])
        default:
            return .fail(.invalidParameter)
        }
    }

    // MARK: Authenticate

    /// ThisSP.Authenticate [ Authority, Challenge = PIN ] → [ Boolean ] (§10.3.3.4): the
    /// Challenge named by its name; an authority this SP does not have is INVALID_PARAMETER.
    private func enterpriseAuthenticate(_ call: MethodCall, session: inout DriveSession) -> MethodOutcome {
        guard call.invokingUID == .thisSP, let authority = call.arguments.first?.uidValue, call.arguments.count <= 2 else {
            return .fail(.invalidParameter)
        }
        var challenge: [UInt8] = []
        if call.arguments.count == 2 {
            guard case .named(let name, let value) = call.arguments[1], name.bytesValue == Array("Challenge".utf8),
                  let pin = value.bytesValue else { return .fail(.invalidParameter) }
            challenge = pin
        }
        guard authority == .anybody || credentialSlot(for: authority, in: session.sp) != nil else { return .fail(.invalidParameter) }
        return authenticated(authority, challenge: challenge, session: &session)
    }

    // MARK: Get

    /// Object.Get [ Cellblock: [ startColumn = "Name", endColumn = "Name" ] ] → [ [ [ Name = value … ] ] ]:
    /// Opal's rows of the same objects, read under Enterprise's access rules (a band's columns
    /// by Anybody, a credential's by the masters and never its PIN, MSID's PIN by Anybody).
    private func enterpriseGet(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        let object = call.invokingUID
        guard let names = Column.Names.of(object) else { return .fail(.notAuthorized) }
        guard call.arguments.count <= 1 else { return .fail(.invalidParameter) }
        var first: UInt64 = 0
        var last = UInt64(names.count - 1)
        if let cellblock = call.arguments.first {
            guard case .list(let items) = cellblock else { return .fail(.invalidParameter) }
            for item in items {
                guard case .named(let key, let value) = item, let key = key.bytesValue,
                      let column = value.bytesValue.flatMap({ names.firstIndex(of: String(decoding: $0, as: UTF8.self)) }) else {
                    return .fail(.invalidParameter)
                }
                switch String(decoding: key, as: UTF8.self) {
                case "startColumn": first = UInt64(column)
                case "endColumn": last = UInt64(column)
                default: return .fail(.invalidParameter)
                }
            }
        }
        guard first <= last else { return .fail(.invalidParameter) }
        guard let (opalObject, readable) = enterpriseReadable(object, session: session),
              let row = row(opalObject, session: session) else { return .fail(.notAuthorized) }
        var values: [TCGValue] = []
        for column in first...last {
            guard readable(column), let cell = row.cells[column] else { continue }
            let value: TCGValue = switch column {
            case 0: .bytes(object.bytes)
            case 1: .bytes(Array(enterpriseName(object).utf8))
            default: cell.value
            }
            values.append(.named(.bytes(Array(names[Int(column)].utf8)), value))
        }
        guard !values.isEmpty else { return .fail(.notAuthorized) }
        return MethodOutcome(values: [.list([.list(values)])])
    }

    /// The Opal-layout row an Enterprise object reads from, and which of its columns the session
    /// may read; nil when the object is not one of this drive's or the session may read nothing.
    private func enterpriseReadable(_ object: UID, session: DriveSession) -> (UID, (UInt64) -> Bool)? {
        let anyMaster = session.authorities.contains { enterpriseSlot(authority: $0) != nil }
        switch session.sp {
        case .admin:
            guard object == .cPinMSID || object == .cPinSID else { return nil }
            if object == .cPinMSID { return (object, { _ in true }) }
            guard session.isAuthenticated(as: .sid) else { return nil }
            return (object, { $0 != Column.CPin.pin })
        case .locking:
            if object == .enterpriseLockingInfo { return (.lockingInfo, { _ in true }) }
            if let n = object.bandIndex, n < record.ranges.count { return (.lockingRange(n), { _ in true }) }
            // A master's rows are the masters' to read (never a PIN); lockingSPRow knows them
            // by their Enterprise UIDs.
            guard anyMaster, enterpriseSlot(cPin: object) ?? enterpriseSlot(authority: object) != nil else { return nil }
            let isCredential = enterpriseSlot(cPin: object) != nil
            return (object, { !isCredential || $0 != Column.CPin.pin })
        }
    }

    private func enterpriseName(_ object: UID) -> String {
        if object == .cPinMSID { return "MSID" }
        if object == .cPinSID { return "SID" }
        if object == .enterpriseLockingInfo { return "LockingInfo" }
        if object == .eraseMaster || object == .cPinEraseMaster { return "EraseMaster" }
        if let n = object.bandIndex { return "Band\(n)" }
        if let n = object.bandMasterIndex ?? object.cPinBandMasterIndex { return "BandMaster\(n)" }
        return ""
    }

    // MARK: Set

    /// Object.Set [ Where: [], Values: [ [ Name = value … ] ] ] → [ ]: a band by its BandMaster
    /// (RangeStart … LockOnReset), a master's PIN by that master, SID's PIN by SID.
    private func enterpriseSet(_ call: MethodCall, session: inout DriveSession) -> MethodOutcome {
        let object = call.invokingUID
        guard let names = Column.Names.of(object) else { return .fail(.notAuthorized) }
        guard call.arguments.count == 2, case .list(let whereCells) = call.arguments[0], whereCells.isEmpty,
              case .list(let rows) = call.arguments[1], rows.count == 1, case .list(let items) = rows[0], !items.isEmpty else {
            return .fail(.invalidParameter)
        }
        var columns: [UInt64: TCGValue] = [:]
        for item in items {
            guard case .named(let key, let value) = item, let key = key.bytesValue,
                  let column = names.firstIndex(of: String(decoding: key, as: UTF8.self)) else { return .fail(.invalidParameter) }
            columns[UInt64(column)] = value
        }
        let outcome: MethodOutcome
        switch session.sp {
        case .admin:
            outcome = object == .cPinSID ? setInAdminSP(object, columns, session: &session) : .fail(.notAuthorized)
        case .locking:
            if let n = object.bandIndex, n < record.ranges.count {
                guard session.isAuthenticated(as: .bandMaster(n)) else { return .fail(.notAuthorized) }
                let allowed = Column.Locking.rangeStart...Column.Locking.lockOnReset
                guard columns.keys.allSatisfy(allowed.contains) else { return .fail(.notAuthorized) }
                outcome = setRange(n, columns, session: session, bandMaster: true)
            } else if let slot = enterpriseSlot(cPin: object) {
                let owner: UID = if case .admin(let n) = slot { .bandMaster(n) } else { .eraseMaster }
                guard session.isAuthenticated(as: owner), Set(columns.keys) == [Column.CPin.pin] else { return .fail(.notAuthorized) }
                guard let pin = columns[Column.CPin.pin]?.bytesValue, pin.count <= 32 else { return .fail(.invalidParameter) }
                do { try setPIN(slot, pin: pin, lockingKey: session.lockingKey) } catch { return .fail(.tperMalfunction) }
                outcome = .ok
            } else {
                outcome = .fail(.notAuthorized)
            }
        }
        if outcome.status == .success {
            do { try persist() } catch { return .fail(.tperMalfunction) }
        }
        return outcome
    }

    // MARK: Erase

    /// BandN.Erase [ ] (§10.5.4.1), by the EraseMaster: a new media key for the band (its data
    /// gone), its four lock columns False, its BandMaster's PIN back to the MSID with Tries 0;
    /// RangeStart and RangeLength kept.
    private func eraseBand(_ call: MethodCall, session: DriveSession) -> MethodOutcome {
        guard session.sp == .locking, let n = call.invokingUID.bandIndex, n < record.ranges.count else { return .fail(.notAuthorized) }
        guard call.arguments.isEmpty else { return .fail(.invalidParameter) }
        guard session.isAuthenticated(as: .eraseMaster), let lockingKey = session.lockingKey else { return .fail(.notAuthorized) }
        guard let key = try? Self.newMediaKey(), let sealed = try? DriveCrypto.seal(key, key: lockingKey) else {
            return .fail(.tperMalfunction)
        }
        record.ranges[n].readLockEnabled = false
        record.ranges[n].writeLockEnabled = false
        record.ranges[n].readLocked = false
        record.ranges[n].writeLocked = false
        record.ranges[n].sealedMediaKey = Data(sealed)
        record.ranges[n].openMediaKey = Data(key)
        record.ranges[n].keyGeneration += 1
        mediaCiphers[n] = try? XTSCipher(key: key)
        do {
            try setPIN(.admin(n), pin: Array(record.identity.msid.utf8), lockingKey: lockingKey)
            try persist()
        } catch {
            return .fail(.tperMalfunction)
        }
        return .ok
    }
}
