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

    /// The Locking SP's life cycle state (Anybody may read it on the Admin SP).
    public func lockingSPLifeCycle() throws(OpalError) -> LifeCycleState {
        try withSession(.adminSP) { s throws(OpalError) in
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

    /// Activate the Locking SP as SID; Admin1 inherits the SID PIN. A no-op if already active.
    public func activateLockingSP(sidPIN: Secret) throws(OpalError) {
        guard try lockingSPLifeCycle() == .manufacturedInactive else { return }
        try withSession(.adminSP, as: .sid, credential: sidPIN, write: true) { s throws(OpalError) in
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
        let operation = "set \(target) PIN"
        guard target.securityProvider == authorizer.securityProvider, target != .psid else {
            throw OpalError(.invalidState, device: device, operation: operation,
                            "\(authorizer) cannot change the PIN of \(target)")
        }
        try withSession(target.securityProvider, as: authorizer.uid, credential: authorizerPIN, write: true) { s throws(OpalError) in
            try beforeSending()
            // Cleared after the call, when the arguments sharing its buffer are gone.
            var pin = newPIN.copyBytes()
            defer { pin.wipe() }
            do throws(OpalError) { try s.set(target.cPin, [(Column.CPin.pin, .bytes(pin))], operation: operation) } catch {
                guard error.code == .outcomeUnknown else { throw error }
                // The retry an operator would make first (the old PIN) is the one most likely to burn a try.
                throw OpalError(.outcomeUnknown, device: device, operation: operation, error.message,
                                fix: "the PIN of \(target) may already be the NEW one: try the new PIN first, then the old one")
            }
            if case .user = target, authorizer != target {
                // Admins also enable the user, which Opal ships disabled.
                try s.set(target.uid, [(Column.Authority.enabled, .bool(true))], operation: "enable \(target)")
            }
        }
    }

    /// Lets `user` lock and unlock `range` (ACE_Locking_RangeN_Set_RdLocked / WrLocked = Admins OR user).
    public func grantRangeControl(range: Int, to user: OpalAuthority, adminPIN: Secret) throws(OpalError) {
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
        try withSession(.lockingSP, as: .lockingAdmin(1), credential: adminPIN, write: true) { s throws(OpalError) in
            try s.requireRange(range, operation: operation)
            try s.set(.lockingRange(range), values, operation: operation)
        }
    }

    /// Locks or unlocks a range for reads and writes, as Admin1 or a user the range's ACEs allow.
    public func setLocked(_ locked: Bool, range: Int, as authority: OpalAuthority, pin: Secret) throws(OpalError) {
        let operation = "\(locked ? "lock" : "unlock") range \(range)"
        try withSession(.lockingSP, as: authority.uid, credential: pin, write: true) { s throws(OpalError) in
            try s.requireRange(range, operation: operation)
            try s.set(.lockingRange(range), [(Column.Locking.readLocked, .bool(locked)),
                                             (Column.Locking.writeLocked, .bool(locked))], operation: operation)
        }
    }

    /// Reads ranges' configuration as Admin1.
    public func readRanges(adminPIN: Secret) throws(OpalError) -> [LockingRangeState] {
        try withSession(.lockingSP, as: .lockingAdmin(1), credential: adminPIN) { s throws(OpalError) in
            let info = try s.get(.lockingInfo, columns: Column.LockingInfo.maxRanges...Column.LockingInfo.maxRanges,
                                 operation: "read LockingInfo")
            let maxRanges = Int(min(info[Column.LockingInfo.maxRanges]?.unsignedValue ?? 0, 64))
            var out: [LockingRangeState] = []
            for n in 0...maxRanges {
                let c = try s.get(.lockingRange(n), columns: Column.Locking.rangeStart...Column.Locking.lockOnReset,
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

    /// Crypto-erase: read the range's ActiveKey, then GenKey on that K_AES object.
    public func eraseRange(_ range: Int, adminPIN: Secret) throws(OpalError) {
        let operation = "erase range \(range)"
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
        let args: [TCGValue] = keepGlobalRangeKey ? [.name(Column.keepGlobalRangeKey, .bool(true))] : []
        try callEndingSession(.lockingSP, as: .lockingAdmin(1), pin: adminPIN, invoking: .thisSP, MethodID.revertSP, args,
                              operation: "revert Locking SP")
    }

    /// Opens and ends a read-only session as `authority`: proves a PIN without changing anything.
    /// A wrong PIN costs one try, as any authentication does, but nothing else.
    public func verifyPIN(_ authority: OpalAuthority, pin: Secret) throws(OpalError) {
        try withSession(authority.securityProvider, as: authority.uid, credential: pin) { _ throws(OpalError) in }
    }

    /// Factory state keeping the global range's data: RevertSP (KeepGlobalRangeKey) as Admin1, then
    /// Revert as SID. Both PINs are proven before the first destructive step, so a wrong SID PIN can
    /// no longer leave the drive half reverted. If the second step still fails (drive gone, power
    /// lost), the error says exactly what state the drive is in.
    public func revertKeepingGlobalRange(sidPIN: Secret, adminPIN: Secret) throws(OpalError) {
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
                                            credential: pin, write: true)
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
        case .admin: targets = (1...4).map(OpalAuthority.admin) + (1...8).map(OpalAuthority.user)
        default:
            throw OpalError(.invalidState, device: device, operation: "read tries", "read tries as SID or Admin1")
        }
        return try withSession(authority.securityProvider, as: authority.uid, credential: pin) { s throws(OpalError) in
            var out: [TriesState] = []
            for target in targets {
                let c = try s.get(target.cPin, columns: Column.CPin.tryLimit...Column.CPin.persistence,
                                  operation: "read tries of \(target)")
                out.append(TriesState(authority: target.description, tries: c[Column.CPin.tries]?.unsignedValue ?? 0,
                                      tryLimit: c[Column.CPin.tryLimit]?.unsignedValue ?? 0,
                                      persistence: c[Column.CPin.persistence]?.boolValue ?? false))
            }
            return out
        }
    }
}
