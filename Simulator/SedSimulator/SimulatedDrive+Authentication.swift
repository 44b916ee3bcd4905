import Foundation
import TCGStorage

/// Authentication with try counting, lockout, and the drive-wide lifetime failure limit.
extension SimulatedDrive {
    enum AuthenticationOutcome {
        /// Success; carries the Locking SP key when the authority holds a sealed copy.
        case success(lockingKey: [UInt8]?)
        case failure(MethodStatus)
    }

    /// A credential's location in the record.
    enum CredentialSlot: Equatable {
        case sid, psid, admin(Int), user(Int)
    }

    func credentialSlot(for authority: UID, in sp: SecurityProvider) -> CredentialSlot? {
        switch sp {
        case .admin:
            if authority == .sid { return .sid }
            if authority == .psid { return .psid }
            return nil
        case .locking:
            if isEnterprise { return enterpriseSlot(authority: authority) }
            for i in record.lockingAdmins.indices where authority == UID.lockingAdmin(i + 1) { return .admin(i) }
            for i in record.lockingUsers.indices where authority == UID.user(i + 1) { return .user(i) }
            return nil
        }
    }

    func credential(_ slot: CredentialSlot) -> CredentialRecord {
        switch slot {
        case .sid: return record.sid
        case .psid: return record.psid
        case .admin(let i): return record.lockingAdmins[i]
        case .user(let i): return record.lockingUsers[i]
        }
    }

    func updateCredential(_ slot: CredentialSlot, _ body: (inout CredentialRecord) -> Void) {
        switch slot {
        case .sid: body(&record.sid)
        case .psid: body(&record.psid)
        case .admin(let i): body(&record.lockingAdmins[i])
        case .user(let i): body(&record.lockingUsers[i])
        }
    }

    func authenticate(_ authority: UID, in sp: SecurityProvider, challenge: [UInt8]) -> AuthenticationOutcome {
        guard let slot = credentialSlot(for: authority, in: sp) else { return .failure(.notAuthorized) }
        let lockout = record.settings.lockoutStatus.methodStatus
        if record.erasedForGood { return .failure(lockout) }
        let cred = credential(slot)
        guard cred.enabled, cred.hasPIN, let salt = cred.salt, let verifier = cred.verifier else {
            return .failure(.notAuthorized)
        }
        if slot == .sid && blockSIDActive { return .failure(.notAuthorized) }
        if cred.tryLimit != 0 && cred.tries >= cred.tryLimit {
            recordFailure(slot, countTry: false)
            return .failure(lockout)
        }
        guard let stretched = try? cachedStretch(pin: challenge, salt: Array(salt)) else {
            return .failure(.tperMalfunction)
        }
        guard DriveCrypto.constantTimeEqual(stretched.verifier, Array(verifier)) else {
            recordFailure(slot, countTry: true)
            return .failure(.notAuthorized)
        }
        // Counters are written only when they change: a success after successes costs no write.
        if cred.tries != 0 || record.consecutiveFailedAuthentications != 0 {
            updateCredential(slot) { $0.tries = 0 }
            record.consecutiveFailedAuthentications = 0
            try? persist()
        }
        let lockingKey = cred.sealedLockingKey.flatMap { DriveCrypto.open(Array($0), key: stretched.kek) }
        return .success(lockingKey: lockingKey)
    }

    /// Counts a failed attempt (written before answering, as a drive's NVRAM counter would be).
    private func recordFailure(_ slot: CredentialSlot, countTry: Bool) {
        if countTry {
            updateCredential(slot) { cred in
                if cred.tryLimit != 0 { cred.tries = min(cred.tries + 1, cred.tryLimit) }
            }
        }
        record.consecutiveFailedAuthentications += 1
        record.totalFailedAuthentications = (record.totalFailedAuthentications ?? 0) + 1
        if record.consecutiveFailedAuthentications >= record.settings.lifetimeFailureLimit && !record.erasedForGood {
            eraseForGood()
        }
        try? persist()
    }

    /// The vendor's last resort (NetApp NSE): destroy every media key and refuse authentication forever.
    func eraseForGood() {
        record.erasedForGood = true
        sessions.removeAll()
        mediaCiphers.removeAll()
        for i in record.ranges.indices {
            let fresh = try? Self.newMediaKey()
            record.ranges[i].sealedMediaKey = nil
            record.ranges[i].keyGeneration += 1
            record.ranges[i].openMediaKey = record.ranges[i].opensAtPowerOn ? fresh.map { Data($0) } : nil
            if let fresh, !isFullyLocked(i) { mediaCiphers[i] = try? XTSCipher(key: fresh) }
        }
        for i in record.lockingAdmins.indices { record.lockingAdmins[i].sealedLockingKey = nil }
        for i in record.lockingUsers.indices { record.lockingUsers[i].sealedLockingKey = nil }
    }

    /// PBKDF2 of the PIN with the credential's salt, from the cache when it was computed before.
    func cachedStretch(pin: [UInt8], salt: [UInt8]) throws(SimulatorError) -> DriveCrypto.Stretched {
        let key = DriveCrypto.stretchKey(pin: pin, salt: salt)
        if let known = stretchCache[key] { return known }
        let stretched = try DriveCrypto.stretch(pin: pin, salt: salt)
        if stretchCache.count >= 32 { stretchCache.removeAll() }
        stretchCache[key] = stretched
        return stretched
    }

    /// Sets a new PIN: fresh salt and verifier, Tries reset, and the Locking SP key resealed when known.
    func setPIN(_ slot: CredentialSlot, pin: [UInt8], lockingKey: [UInt8]?) throws(SimulatorError) {
        let salt = try DriveCrypto.randomBytes(16)
        let stretched = try cachedStretch(pin: pin, salt: salt)
        var sealed: [UInt8]?
        if let lockingKey { sealed = try DriveCrypto.seal(lockingKey, key: stretched.kek) }
        updateCredential(slot) { cred in
            cred.salt = Data(salt)
            cred.verifier = Data(stretched.verifier)
            cred.tries = 0
            cred.sealedLockingKey = sealed.map { Data($0) }
        }
    }
}
