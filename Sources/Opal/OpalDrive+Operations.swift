import Keys
import SecurityTransport
import TCGStorage
import Platform

/// Compound Opal operations, each a short list of steps as in the TCG specs and the kernel's sed-opal.
extension OpalDrive {
    // MARK: Ownership and life cycle

    /// Reads C_PIN_MSID as Anybody on the Admin SP.
    public func readMSID() throws(OpalError) -> Secret {
        try withSession(.adminSP) { s throws(OpalError) in
            let cols = try s.get(.cPinMSID, columns: Column.CPin.pin...Column.CPin.pin, operation: "read MSID")
            guard let msid = cols[Column.CPin.pin]?.bytesValue else {
                throw OpalError(.malformedResponse, device: device, operation: "read MSID", "C_PIN_MSID has no PIN column")
            }
            return Secret(msid)
        }
    }

    /// The Locking SP's life cycle state (Anybody may read it on the Admin SP). An Enterprise
    /// drive's Locking SP is Manufactured from the factory on (Enterprise §11.1), and not asked.
    public func lockingSPLifeCycle() throws(OpalError) -> LifeCycleState {
        if family == .enterprise { return .manufactured }
        return try withSession(.adminSP) { s throws(OpalError) in
            let cols = try s.get(.lockingSP, columns: Column.SP.lifeCycle...Column.SP.lifeCycle, operation: "read life cycle")
            guard let raw = cols[Column.SP.lifeCycle]?.unsignedValue, let state = LifeCycleState(rawValue: raw) else {
                throw OpalError(.malformedResponse, device: device, operation: "read life cycle", "LifeCycle column missing or unknown")
            }
            return state
        }
    }

    /// Take ownership: read MSID as Anybody, then as SID (authenticated with MSID) set the SID PIN.
    /// Refuses a drive whose Block SID feature says SID was changed: authenticating with the MSID
    /// there would only burn a SID try.
    public func takeOwnership(newSIDPIN: Secret) throws(OpalError) {
        if try Self.readDiscovery(transport).blockSID?.sidValueState == true {
            throw OpalError(.invalidState, device: device, operation: "take ownership",
                            "the drive is already owned (SID differs from MSID)",
                            fix: "use set-pin with the current SID PIN, or revert it first")
        }
        let msid = try readMSID()
        try withSession(.adminSP, as: .sid, credential: msid, write: true) { s throws(OpalError) in
            // Cleared after the call, when the arguments sharing its buffer are gone.
            var pin = newSIDPIN.copyBytes()
            defer { pin.wipe() }
            try s.set(.cPinSID, [(Column.CPin.pin, .bytes(pin))], operation: "set SID PIN")
        }
    }

    /// The PIN Admin1 holds once the Locking SP is active and before anyone changed it: Opal's
    /// Activate copies SID's to it; an Enterprise BandMaster ships with the MSID (§11.4.2).
    public func lockingAdminPINAfterActivation(sidPIN: Secret) throws(OpalError) -> Secret {
        family == .enterprise ? try readMSID() : sidPIN
    }

    /// The PIN User1 holds before sedlock set it: nothing on Opal (Admin1 sets and enables it);
    /// an Enterprise EraseMaster ships with the MSID and changes its own PIN.
    public func userPINBeforeSetup() throws(OpalError) -> Secret? {
        family == .enterprise ? try readMSID() : nil
    }

    /// Whether User1 changes its own PIN (Enterprise's EraseMaster_SetSelf) rather than Admin1 (Opal).
    public var userChangesOwnPIN: Bool { family == .enterprise }

    /// Activate the Locking SP as SID; Admin1 inherits the SID PIN. A no-op if already active.
    /// On an Enterprise drive, whose Locking SP is always active, the same end state: BandMaster0
    /// and the EraseMaster move from the MSID to the SID PIN (as sedutil's initial setup does).
    public func activateLockingSP(sidPIN: Secret) throws(OpalError) {
        if family == .enterprise {
            let msid = try readMSID()
            for authority in [OpalAuthority.admin(1), .user(1)] {
                try setPIN(of: authority, newPIN: sidPIN, authorizer: authority, authorizerPIN: msid)
            }
            return
        }
        guard try lockingSPLifeCycle() == .manufacturedInactive else { return }
        _ = try withSession(.adminSP, as: .sid, credential: sidPIN, write: true) { s throws(OpalError) in
            try s.call(.lockingSP, MethodID.activate, operation: "activate Locking SP")
        }
        guard try lockingSPLifeCycle() == .manufactured else {
            throw OpalError(.invalidState, device: device, operation: "activate Locking SP",
                            "the Locking SP is still not Manufactured after Activate")
        }
    }

    /// Changes an authority's PIN. `authorizer` proves the right to change it (the authority itself,
    /// or Admin1 for users), authenticated with `authorizerPIN`.
    /// `beforeSending` runs once the authorizer is authenticated, right before the change goes to
    /// the drive (a journal records there that the change's outcome may be unknown); a failure
    /// there sends nothing.
    public func setPIN(of target: OpalAuthority, newPIN: Secret, authorizer: OpalAuthority, authorizerPIN: Secret,
                       beforeSending: () throws(OpalError) -> Void = {}) throws(OpalError) {
        let operation = "set \(family.name(of: target)) PIN"
        guard target.securityProvider == authorizer.securityProvider, target != .psid, family.has(target), family.has(authorizer) else {
            throw OpalError(.invalidState, device: device, operation: operation,
                            "\(family.name(of: authorizer)) cannot change the PIN of \(family.name(of: target))")
        }
        // Enterprise: each BandMaster and the EraseMaster sets its own PIN only (…_SetSelf ACEs).
        guard family != .enterprise || target == authorizer || target == .sid else {
            throw OpalError(.invalidState, device: device, operation: operation,
                            "on an Enterprise SSC drive \(family.name(of: target)) changes only its own PIN",
                            fix: "authenticate as \(family.name(of: target)) with its current PIN")
        }
        try withSession(family.securityProvider(target), as: family.uid(authorizer), credential: authorizerPIN,
                        write: true) { s throws(OpalError) in
            try beforeSending()
            // Cleared after the call, when the arguments sharing its buffer are gone.
            var pin = newPIN.copyBytes()
            defer { pin.wipe() }
            do throws(OpalError) { try s.set(family.cPin(target), [(Column.CPin.pin, .bytes(pin))], operation: operation) } catch {
                guard error.code == .outcomeUnknown else { throw error }
                // The retry an operator would make first (the old PIN) is the one most likely to burn a try.
                throw OpalError(.outcomeUnknown, device: device, operation: operation, error.message,
                                fix: "the PIN of \(target) may already be the NEW one: try the new PIN first, then the old one")
            }
            if case .user = target, authorizer != target, family == .opal {
                // Admins also enable the user, which Opal ships disabled.
                try s.set(target.uid, [(Column.Authority.enabled, .bool(true))], operation: "enable \(target)")
            }
        }
    }

    /// Lets `user` lock and unlock `range` (ACE_Locking_RangeN_Set_RdLocked / WrLocked = Admins OR user).
    /// Nothing to do on an Enterprise drive: a band is locked by its BandMaster alone, and the ACEs are fixed.
    public func grantRangeControl(range: Int, to user: OpalAuthority, adminPIN: Secret) throws(OpalError) {
        if family == .enterprise { return }
        let expression: TCGValue = .list([
            .named(.bytes(UID.halfUIDAuthorityObjectRef), .uid(.admins)),
            .named(.bytes(UID.halfUIDAuthorityObjectRef), .uid(user.uid)),
            .named(.bytes(UID.halfUIDBooleanACE), .unsigned(1)),
        ])
        try withSession(.lockingSP, as: .lockingAdmin(1), credential: adminPIN, write: true) { s throws(OpalError) in
            try s.requireRange(range, operation: "grant \(user) control of range \(range)")
            for ace in [UID.aceSetReadLocked(range: range), UID.aceSetWriteLocked(range: range)] {
                try s.set(ace, [(Column.ACE.booleanExpr, expression)], operation: "grant \(user) control of range \(range)")
            }
        }
    }

    // MARK: Locking ranges

    /// Configures a range: bounds (not for the global range), lock enables and LockOnReset.
    public func configureRange(_ range: Int, start: UInt64?, length: UInt64?, readLockEnabled: Bool,
                               writeLockEnabled: Bool, lockOnReset: [ResetType], adminPIN: Secret) throws(OpalError) {
        let operation = "configure range \(range)"
        if range == 0 && (start != nil || length != nil) {
            throw OpalError(.invalidState, device: device, operation: operation, "the global range has no start or length")
        }
        var values: [(UInt64, TCGValue)] = []
        if let start { values.append((Column.Locking.rangeStart, .unsigned(start))) }
        if let length { values.append((Column.Locking.rangeLength, .unsigned(length))) }
        values.append((Column.Locking.readLockEnabled, .bool(readLockEnabled)))
        values.append((Column.Locking.writeLockEnabled, .bool(writeLockEnabled)))
        values.append((Column.Locking.lockOnReset, .list(lockOnReset.map { .unsigned($0.rawValue) })))
        try withSession(family.lockingSP, as: family.uid(manager(of: range)), credential: adminPIN, write: true) { s throws(OpalError) in
            try s.requireRange(range, operation: operation)
            try s.set(family.range(range), values, operation: operation)
        }
    }

    /// Locks or unlocks a range for reads and writes, as Admin1 or a user the range's ACEs allow.
    public func setLocked(_ locked: Bool, range: Int, as authority: OpalAuthority, pin: Secret) throws(OpalError) {
        let operation = "\(locked ? "lock" : "unlock") range \(range)"
        let who = family == .enterprise ? manager(of: range) : authority
        try withSession(family.lockingSP, as: family.uid(who), credential: pin, write: true) { s throws(OpalError) in
            try s.requireRange(range, operation: operation)
            try s.set(family.range(range), [(Column.Locking.readLocked, .bool(locked)),
                                             (Column.Locking.writeLocked, .bool(locked))], operation: operation)
        }
    }

    /// Reads ranges' configuration as Admin1.
    public func readRanges(adminPIN: Secret) throws(OpalError) -> [LockingRangeState] {
        try withSession(family.lockingSP, as: family.uid(.admin(1)), credential: adminPIN) { s throws(OpalError) in
            let info = try s.get(family.lockingInfo, columns: Column.LockingInfo.maxRanges...Column.LockingInfo.maxRanges,
                                 operation: "read LockingInfo")
            let maxRanges = Int(min(info[Column.LockingInfo.maxRanges]?.unsignedValue ?? 0, 64))
            var out: [LockingRangeState] = []
            for n in 0...maxRanges {
                let c = try s.get(family.range(n), columns: Column.Locking.rangeStart...Column.Locking.lockOnReset,
                                  operation: "read range \(n)")
                let resets = (c[Column.Locking.lockOnReset]?.listValue ?? []).compactMap {
                    $0.unsignedValue.flatMap(ResetType.init(rawValue:))?.description
                }
                out.append(LockingRangeState(
                    range: n, start: c[Column.Locking.rangeStart]?.unsignedValue ?? 0,
                    length: n == 0 ? identity.blockCount : c[Column.Locking.rangeLength]?.unsignedValue ?? 0,
                    readLockEnabled: c[Column.Locking.readLockEnabled]?.boolValue ?? false,
                    writeLockEnabled: c[Column.Locking.writeLockEnabled]?.boolValue ?? false,
                    readLocked: c[Column.Locking.readLocked]?.boolValue ?? false,
                    writeLocked: c[Column.Locking.writeLocked]?.boolValue ?? false, lockOnReset: resets))
            }
            return out
        }
    }

    /// Crypto-erase: read the range's ActiveKey, then GenKey on that K_AES object. On an
    /// Enterprise drive the EraseMaster (User1, with `erasePIN`) invokes Erase on the band, which
    /// also resets the band's lock columns and its BandMaster's PIN to the MSID (§10.5.4.1): both
    /// are put back at once (the BandMaster's PIN to `adminPIN`), so the band stays configured as
    /// before, as Opal's GenKey leaves a range.
    public func eraseRange(_ range: Int, adminPIN: Secret, erasePIN: Secret? = nil) throws(OpalError) {
        let operation = "erase range \(range)"
        guard encryptsMedia else {
            throw OpalError(.unsupportedDrive, device: device, operation: operation,
                            "\(opal.kind.name): the drive does not encrypt its media, so there is no key whose loss would erase the data",
                            fix: "overwrite the data, or destroy the drive")
        }
        if family == .enterprise {
            guard let erasePIN else {
                throw OpalError(.invalidState, device: device, operation: operation,
                                "an Enterprise SSC drive erases a band as its EraseMaster, whose PIN was not given",
                                fix: "give the EraseMaster's (User1's) PIN")
            }
            return try eraseBand(range, adminPIN: adminPIN, erasePIN: erasePIN)
        }
        try withSession(.lockingSP, as: .lockingAdmin(1), credential: adminPIN, write: true) { s throws(OpalError) in
            try s.requireRange(range, operation: operation)
            let cols = try s.get(.lockingRange(range), columns: Column.Locking.activeKey...Column.Locking.activeKey,
                                 operation: operation)
            guard let key = cols[Column.Locking.activeKey]?.uidValue else {
                throw OpalError(.malformedResponse, device: device, operation: operation, "ActiveKey is not a UID")
            }
            try s.call(key, MethodID.genKey, operation: operation)
        }
    }

    // MARK: Shadow MBR

    public func setMBR(enable: Bool? = nil, done: Bool? = nil, adminPIN: Secret) throws(OpalError) {
        try requireOpal("the shadow MBR", operation: "set MBR control")
        var values: [(UInt64, TCGValue)] = []
        if let enable { values.append((Column.MBRControl.enable, .bool(enable))) }
        if let done { values.append((Column.MBRControl.done, .bool(done))) }
        guard !values.isEmpty else { return }
        try withSession(.lockingSP, as: .lockingAdmin(1), credential: adminPIN, write: true) { s throws(OpalError) in
            try s.set(.mbrControl, values, operation: "set MBR control")
        }
    }

    /// Writes a shadow MBR image in chunks that fit the drive's packets.
    public func loadMBR(image: [UInt8], adminPIN: Secret, chunkSize: Int = 1024) throws(OpalError) {
        try requireOpal("the shadow MBR", operation: "load MBR image")
        try withSession(.lockingSP, as: .lockingAdmin(1), credential: adminPIN, write: true) { s throws(OpalError) in
            try s.requireFits(image.count, in: .mbrTable, what: "shadow MBR", operation: "load MBR image")
            var offset = 0
            while offset < image.count {
                let end = min(image.count, offset + chunkSize)
                try s.setBytes(.mbrTable, at: UInt64(offset), Array(image[offset..<end]), operation: "load MBR image")
                offset = end
            }
        }
    }

    // MARK: Revert

    /// RevertSP on the Locking SP as Admin1; with `keepGlobalRangeKey` the global range's data survives.
    public func revertLockingSP(adminPIN: Secret, keepGlobalRangeKey: Bool) throws(OpalError) {
        try requireOpal("RevertSP of the Locking SP", operation: "revert Locking SP")
        let args: [TCGValue] = keepGlobalRangeKey ? [.name(Column.keepGlobalRangeKey, .bool(true))] : []
        try callEndingSession(.lockingSP, as: .lockingAdmin(1), pin: adminPIN, invoking: .thisSP, MethodID.revertSP, args,
                              operation: "revert Locking SP")
    }

    /// Opens and ends a read-only session as `authority`: proves a PIN without changing anything.
    /// A wrong PIN costs one try, as any authentication does, but nothing else.
    public func verifyPIN(_ authority: OpalAuthority, pin: Secret) throws(OpalError) {
        try withSession(family.securityProvider(authority), as: family.uid(authority), credential: pin) { _ throws(OpalError) in }
    }

    /// Factory state keeping the global range's data: RevertSP (KeepGlobalRangeKey) as Admin1, then
    /// Revert as SID. Both PINs are proven before the first destructive step, so a wrong SID PIN can
    /// no longer leave the drive half reverted. If the second step still fails (drive gone, power
    /// lost), the error says exactly what state the drive is in.
    public func revertKeepingGlobalRange(sidPIN: Secret, adminPIN: Secret) throws(OpalError) {
        try requireOpal("a revert that keeps the data (RevertSP with KeepGlobalRangeKey)", operation: "revert keeping data")
        try verifyPIN(.sid, pin: sidPIN)
        guard try lockingSPLifeCycle() == .manufactured else {
            // Locking never activated: nothing to keep, and the TPer revert erases nothing.
            try revert(as: .sid, pin: sidPIN)
            return
        }
        try verifyPIN(.admin(1), pin: adminPIN)
        // A locked global range cannot keep its key (Opal §5.1.3.2): open it first.
        try setLocked(false, range: 0, as: .admin(1), pin: adminPIN)
        try revertLockingSP(adminPIN: adminPIN, keepGlobalRangeKey: true)
        do {
            try revert(as: .sid, pin: sidPIN)
        } catch {
            throw OpalError(error.code, device: device, operation: "revert TPer as SID (after the Locking SP was reverted)",
                            "\(error.message). The drive is half reverted: the Locking SP is back to factory state "
                            + "(locking off, the global range readable by anyone, every other range erased), and SID "
                            + "still owns the drive with its current PIN",
                            fix: "run `sedlock drive revert DEV --sid-pin-file F` again to finish (no --keep-data needed: "
                            + "locking is already off, so the global range's data survives)")
        }
    }

    /// Revert the whole TPer on the Admin SP, as SID or PSID: factory state, data erased if locking was active.
    public func revert(as authority: OpalAuthority, pin: Secret) throws(OpalError) {
        guard authority == .sid || authority == .psid else {
            throw OpalError(.invalidState, device: device, operation: "revert", "revert needs SID or PSID")
        }
        try callEndingSession(.adminSP, as: authority.uid, pin: pin, invoking: .adminSP, MethodID.revert, [],
                              operation: "revert TPer as \(authority)")
    }

    /// Calls a method after which the TPer ends the session itself (Revert, RevertSP): no EndOfSession on success.
    private func callEndingSession(_ sp: UID, as authority: UID, pin: Secret, invoking: UID, _ method: UID,
                                   _ arguments: [TCGValue], operation: String) throws(OpalError) {
        let session = try OpalSession.start(channel: channel, securityProvider: sp, authority: authority,
                                            credential: pin, write: true, family: family)
        do {
            try session.call(invoking, method, arguments, operation: operation)
        } catch {
            session.close()
            throw error
        }
        session.abandon()
    }

    // MARK: Tries

    /// Reads Tries/TryLimit/Persistence of the authorities `authority` may read: SID reads C_PIN_SID;
    /// Admin1 reads every Locking SP authority's row.
    public func readTries(as authority: OpalAuthority, pin: Secret) throws(OpalError) -> [TriesState] {
        let targets: [OpalAuthority]
        switch authority {
        case .sid: targets = [.sid]
        case .admin where family == .enterprise: targets = [.admin(1), .user(1)]
        case .admin:
            let (admins, users) = lockingAuthorityCounts
            targets = (1...admins).map(OpalAuthority.admin) + (1...users).map(OpalAuthority.user)
        default:
            throw OpalError(.invalidState, device: device, operation: "read tries", "read tries as SID or Admin1")
        }
        return try withSession(family.securityProvider(authority), as: family.uid(authority), credential: pin) { s throws(OpalError) in
            var out: [TriesState] = []
            for target in targets {
                let c = try s.get(family.cPin(target), columns: Column.CPin.tryLimit...Column.CPin.persistence,
                                  operation: "read tries of \(family.name(of: target))")
                out.append(TriesState(authority: family.name(of: target), tries: c[Column.CPin.tries]?.unsignedValue ?? 0,
                                      tryLimit: c[Column.CPin.tryLimit]?.unsignedValue ?? 0,
                                      persistence: c[Column.CPin.persistence]?.boolValue ?? false))
            }
            return out
        }
    }
}

extension OpalDrive {
    /// The Locking SP Admins and Users whose tries are read: as many as the Opal 2 or Ruby
    /// descriptor counts (at most Opal's minimum four and eight, all a host reads); Opalite's and
    /// Pyrite's SSCs define Admin1, User1 and User2 alone; Opal 1 reports no counts, and has four
    /// and eight.
    var lockingAuthorityCounts: (admins: Int, users: Int) {
        switch opal.kind {
        case .opalite, .pyriteV1, .pyriteV2: return (1, 2)
        case .opalV2, .ruby:
            return (min(4, max(1, Int(opal.lockingAdminAuthorities))), min(8, max(1, Int(opal.lockingUserAuthorities))))
        case .opalV1, .enterprise: return (4, 8)
        }
    }

    /// The authority that configures and locks `range`: Admin1 for every Opal range; on
    /// Enterprise the band's own BandMaster (BandMaster N, which sedlock's model calls Admin N+1).
    func manager(of range: Int) -> OpalAuthority { family == .enterprise ? .admin(range + 1) : .admin(1) }

    /// Refuses, before anything is sent, what only Opal has.
    func requireOpal(_ what: String, operation: String) throws(OpalError) {
        guard family == .enterprise else { return }
        throw OpalError(.unsupportedDrive, device: device, operation: operation,
                        "\(what) is not part of the Enterprise SSC, which this drive implements")
    }

    /// Enterprise Erase of band `range` as the EraseMaster, then the BandMaster's PIN (reset to the
    /// MSID by Erase) and the band's lock enables and LockOnReset restored as they were.
    func eraseBand(_ range: Int, adminPIN: Secret, erasePIN: Secret) throws(OpalError) {
        let operation = "erase band \(range)"
        let before = try withSession(family.lockingSP, as: family.uid(.user(1)), credential: erasePIN, write: true) { s throws(OpalError) in
            try s.requireRange(range, operation: operation)
            let config = try s.get(family.range(range), columns: Column.Locking.readLockEnabled...Column.Locking.lockOnReset,
                                   operation: operation)
            try s.call(family.range(range), MethodID.erase, operation: operation)
            return config
        }
        let msid = try readMSID()
        let master = manager(of: range)
        do {
            try setPIN(of: master, newPIN: adminPIN, authorizer: master, authorizerPIN: msid)
            let resets = (before[Column.Locking.lockOnReset]?.listValue ?? []).compactMap { $0.unsignedValue.flatMap(ResetType.init(rawValue:)) }
            try configureRange(range, start: nil, length: nil,
                               readLockEnabled: before[Column.Locking.readLockEnabled]?.boolValue ?? false,
                               writeLockEnabled: before[Column.Locking.writeLockEnabled]?.boolValue ?? false,
                               lockOnReset: resets, adminPIN: adminPIN)
        } catch {
            throw OpalError(error.code, device: device, operation: "\(operation): restore \(family.name(of: master))",
                            "the band was erased, but \(error.message); \(family.name(of: master)) may hold the MSID and the band be unlocked",
                            fix: "set \(family.name(of: master))'s PIN again from the MSID (`sedlock drive set-pin`), then configure the band")
        }
    }
}
