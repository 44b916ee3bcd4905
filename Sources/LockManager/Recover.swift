import ControlAPI
import Foundation
import Keys
import KMIP
import LockState
import Platform

extension LockManager {
    /// Takes an array back on a host whose state is lost, from the recovery records on the key
    /// servers (configured first with `keyserver add`): each drive is matched by the identity it
    /// reports (read without authenticating) to the newest record that lists it, the record's key
    /// (and RDL token) is fetched, and every PIN it gives is checked against the record's check
    /// values before anything is kept — so a drive is never presented a PIN here, and one that
    /// cannot be verified is refused. The state is then rebuilt (generation, drives, check values,
    /// RDL settings); `sedlock unlock` opens the drives.
    public func recover(_ request: RecoverRequest) async throws(ControlError) -> ArrayReport {
        guard !request.drives.isEmpty, Set(request.drives).count == request.drives.count else {
            throw ControlError(.badRequest, "name the array's drives, each once (--drives)")
        }
        let store = try openState(.write)
        let servers: [StoredKeyServer]
        do {
            guard try store.generations().isEmpty, try store.drives().isEmpty else {
                throw ControlError(.badRequest, "the state already holds an array: recover rebuilds a lost state only",
                                   fix: "see `sedlock status`; `sedlock keys restore --all` reloads keys of a state that is here")
            }
            servers = try store.keyServers()
        } catch {
            throw ControlError(error)
        }
        guard !servers.isEmpty else {
            throw ControlError(.badRequest, "recover reads the recovery records on the key servers: none is configured",
                               fix: "add the array's key servers first (`sedlock keyserver add`)")
        }
        let records = keys.recoveryRecords(on: servers, tag: request.keyTag)
        guard !records.isEmpty else {
            throw ControlError(.held, "no key server holds a sedlock recovery record\(request.keyTag.map { " tagged \($0)" } ?? "")",
                               fix: "check the key servers and the client certificate (`sedlock keyserver query`)")
        }
        let probes = await probeForSetup(request.drives)
        // The newest record that lists any of these drives: it names the generation they hold. Two
        // published at the same moment cannot be told apart, and guessing could present PINs the
        // drives left behind: refused.
        let identities = Set(probes.compactMap(\.identity))
        let listing = records.filter { $0.drives.contains { identities.contains($0.identity) } }
        if listing.count > 1, listing[0].publishedAt == listing[1].publishedAt {
            throw ControlError(.held, "two recovery records (keys \(listing[0].keyID), \(listing[1].keyID)) list these drives and cannot be told apart",
                               fix: "name the array's key tag with --key-tag, or destroy the stale record on the key servers")
        }
        guard let record = listing.first else {
            return ArrayReport(operation: "recover", drives: probes.map {
                DriveOutcome(address: $0.address, result: .keyUnavailable, detail: $0.error ?? "no recovery record lists this drive")
            })
        }
        if let kept = record.keptOnHost {
            throw ControlError(.held, "the newest recovery record says the array's key \(record.keyID) is kept \(kept) on the lost host, "
                                   + "not on the key servers: they cannot give it; nothing was kept",
                               fix: "restore the state directory and the key file from a backup (or the lost host's disk), then `sedlock unlock --all`")
        }
        // The key, and the token under RDL, from the servers.
        let deadline = Deadline.after(seconds: configuration.commandTimeout, time: time)
        let material = try pinMaterial(keyID: record.keyID, tokenID: record.tokenID, servers: servers, deadline: deadline,
                                       what: "the key of the recovery record \(record.keyID)")
        var outcomes: [DriveOutcome] = []
        var verified: [(probe: SetupProbe, drive: RecoveryRecord.Drive)] = []
        for probe in probes {
            guard let identity = probe.identity else {
                outcomes.append(DriveOutcome(address: probe.address, result: .unreachable, detail: probe.error ?? "no identity"))
                continue
            }
            guard let listed = record.drives.first(where: { $0.identity == identity }) else {
                outcomes.append(DriveOutcome(address: probe.address, result: .keyUnavailable,
                                             detail: "the recovery record of key \(record.keyID) does not list this drive: nothing was presented to it"))
                continue
            }
            if Self.matches(material, drive: listed) {
                verified.append((probe, listed))
            } else {
                outcomes.append(DriveOutcome(address: probe.address, result: .keyMismatch,
                                             detail: "the key does not give the check values the recovery record holds: nothing was presented to it"))
            }
        }
        guard !verified.isEmpty else { return ArrayReport(operation: "recover", drives: outcomes) }
        try verifyNextKey(of: record, drives: verified.map(\.drive), servers: servers, deadline: deadline)
        try rebuild(from: record, drives: verified, servers: servers, store: store)
        for (probe, _) in verified {
            outcomes.append(DriveOutcome(address: probe.address, result: .setUp,
                                         detail: "recovered: identity and key verified against the recovery record of key \(record.keyID)"))
        }
        audit(store, "recover", target: request.drives.joined(separator: " "),
              outcome: "\(verified.count) of \(probes.count) drive(s) from the recovery record of key \(record.keyID)"
                  + (record.next.map { ", with the rekey to key \($0.keyID) that was under way" } ?? ""))
        var note = verified.count == probes.count ? "the state is rebuilt; `sedlock unlock --all` opens the drives" : ""
        if let next = record.next {
            note += (note.isEmpty ? "" : "; ") + "a rekey to key \(next.keyID) was under way: the unlock (or `sedlock rekey`) finishes it, "
                + "and each drive that had already moved costs at most one failed authentication"
        }
        return ArrayReport(operation: "recover", drives: outcomes.sorted { $0.address < $1.address }, note: note)
    }

    /// A rekey was under way when the record was published: its new key must be on the servers
    /// and give the record's check values for every drive too, or the drives that had moved could
    /// never be opened.
    private func verifyNextKey(of record: RecoveryRecord, drives: [RecoveryRecord.Drive], servers: [StoredKeyServer],
                               deadline: Deadline) throws(ControlError) {
        guard let next = record.next else { return }
        let nextMaterial = try pinMaterial(keyID: next.keyID, tokenID: next.tokenID, servers: servers, deadline: deadline,
                                           what: "the key of the rekey that was under way (\(next.keyID))")
        for listed in drives {
            var moved = listed
            moved.checkValues = next.checkValues[listed.identity] ?? [:]
            guard Self.matches(nextMaterial, drive: moved) else {
                throw ControlError(.held, "the key of the rekey under way (\(next.keyID)) does not give the check values the recovery record holds for \(listed.address)",
                                   fix: "check the key servers' objects (`sedlock keyserver query`); nothing was kept")
            }
        }
    }

    /// For `keys restore`: a generation this state does not know (a state put back from a backup
    /// older than a rekey; the `*` rows of `keyserver query`) is adopted when the newest recovery
    /// record that lists the array's drives names it, lists every drive of the state, and its key
    /// (with the token under RDL, and the key of a rekey under way) gives the record's check
    /// values. The generation the state had is retired. Nothing is presented to a drive: the next
    /// unlock authenticates with the adopted PINs. nil when no record names an unknown generation.
    func adoptNewerGeneration(recordsOn searched: [StoredKeyServer], servers: [StoredKeyServer],
                              tag: String?) throws(ControlError) -> KeysReport.Key? {
        let current = try openState(.read)
        let generations: [StoredKeyGeneration]
        let drives: [StoredDrive]
        let unfinished: Bool
        do {
            generations = try current.generations()
            drives = try current.drives()
            unfinished = !(try current.pendingJournals()).isEmpty
        } catch { throw ControlError(error) }
        let identities = Set(drives.map(\.identity))
        guard !drives.isEmpty,
              let record = keys.recoveryRecords(on: searched, tag: tag).first(where: { $0.drives.contains { identities.contains($0.identity) } }),
              !generations.contains(where: { $0.keyID == record.keyID }) else { return nil }
        func refused(_ why: String) -> KeysReport.Key {
            KeysReport.Key(keyID: record.keyID, tag: record.tag, state: "not in the state", provider: KeyProviderKind.kmip.rawValue,
                           inKeytable: false, detail: "not adopted: \(why); nothing was changed")
        }
        let unlisted = drives.filter { drive in !record.drives.contains { $0.identity == drive.identity } }.map(\.address)
        guard unlisted.isEmpty else {
            return refused("the newest recovery record, of this key, does not list \(unlisted.joined(separator: ", ")) of this state")
        }
        if let kept = record.keptOnHost {
            return refused("its key is kept \(kept), not on the key servers: restore the key file, then `sedlock keys restore` again")
        }
        guard !unfinished else { return refused("a change is unfinished in this state: finish it first (`sedlock unlock` or `sedlock rekey`)") }
        let listed = record.drives.filter { identities.contains($0.identity) }
        let deadline = Deadline.after(seconds: configuration.commandTimeout, time: time)
        do {
            let material = try pinMaterial(keyID: record.keyID, tokenID: record.tokenID, servers: servers, deadline: deadline,
                                           what: "the key of the recovery record \(record.keyID)")
            guard listed.allSatisfy({ Self.matches(material, drive: $0) }) else {
                return refused("its key does not give the check values the recovery record holds")
            }
            try verifyNextKey(of: record, drives: listed, servers: servers, deadline: deadline)
        } catch {
            return refused(error.message)
        }
        let store = try openState(.write)
        let left = generations.filter { $0.state == .active }
        do { try store.atomically {
            for generation in left { if let id = generation.id { try store.setGenerationState(id: id, .retired) } }
            try adopt(record, drives: try store.drives().compactMap { drive in listed.first { $0.identity == drive.identity }.map { (drive, $0) } },
                      servers: servers, store: store)
        } } catch { throw ControlError(error) }
        let from = left.map(\.keyID).joined(separator: ", ")
        audit(store, "keys restore", target: record.keyID,
              outcome: "adopted from the recovery record: \(drives.count) drive(s) moved from key \(from.isEmpty ? "none" : from)")
        return KeysReport.Key(keyID: record.keyID, tag: record.tag, state: "active", provider: KeyProviderKind.kmip.rawValue, inKeytable: false,
                              detail: "adopted from the newest recovery record: \(drives.count) drive(s) moved from key \(from.isEmpty ? "none" : from) (retired), "
                                  + "verified against the record's check values" + (record.next.map { "; the rekey to \($0.keyID) under way is journaled" } ?? ""))
    }

    /// A generation's PIN input from the key servers: its AK, followed by the RDL token when it has
    /// one; a missing piece holds the recovery with nothing kept.
    private func pinMaterial(keyID: String, tokenID: String?, servers: [StoredKeyServer], deadline: Deadline,
                             what: String) throws(ControlError) -> Secret {
        var material: Secret
        switch keys.keyServers(servers).fetch(keyID: keyID, deadline: deadline) {
        case .found(let ak): material = ak
        case .notHere(let why), .refused(let why):
            throw ControlError(.held, "\(what) could not be fetched: \(why); nothing was kept",
                               fix: "bring the key servers back (`sedlock keyserver status`), then recover again")
        }
        if let tokenID {
            switch keys.keyServers(servers, requireActive: true).fetch(keyID: tokenID, deadline: deadline) {
            case .found(let token): material = material.appending(token)
            case .notHere(let why), .refused(let why):
                throw ControlError(.held, "the Rapid Data Locking token \(tokenID) could not be fetched: \(why); nothing was kept",
                                   fix: "the array is locked for good if the token was destroyed; otherwise restore the appliance's trust on the key servers")
            }
        }
        return material
    }

    /// Whether the PIN input gives every check value the record holds for the drive.
    static func matches(_ material: Secret, drive: RecoveryRecord.Drive) -> Bool {
        guard !drive.checkValues.isEmpty else { return false }
        for authority in PINAuthority.allCases {
            guard let hex = drive.checkValues[authority.rawValue], let value = Self.bytes(hex),
                  let pin = try? DrivePIN.derive(ak: material, driveIdentity: drive.identity, authority: authority),
                  DrivePIN.matches(pin, checkValue: value) else { return false }
        }
        return true
    }

    private static func bytes(_ hex: String) -> [UInt8]? {
        guard hex.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out
    }

    /// The state of the recovered array, in one transaction (a crash in the middle leaves the
    /// state empty, and recover can run again).
    private func rebuild(from record: RecoveryRecord, drives verified: [(probe: SetupProbe, drive: RecoveryRecord.Drive)],
                         servers: [StoredKeyServer], store: StateDatabase) throws(ControlError) {
        do { try store.atomically {
            var added: [(drive: StoredDrive, listed: RecoveryRecord.Drive)] = []
            for (probe, listed) in verified {
                let drive = StoredDrive(address: probe.address, identity: listed.identity, bus: probe.bus.isEmpty ? listed.bus : probe.bus,
                                        model: probe.model.isEmpty ? listed.model : probe.model,
                                        serial: probe.serial.isEmpty ? listed.serial : probe.serial, addedAt: time.wallTime)
                added.append((try store.addDrive(drive), listed))
            }
            try adopt(record, drives: added, servers: servers, store: store)
        } } catch {
            throw ControlError(error)
        }
    }

    /// Inside a transaction: the record's generation added as the active one, `drives` (already
    /// in the state) moved onto it with the record's check values, its RDL settings kept, and the
    /// rekey that was under way journaled again, every drive at its start (the rerun finds where
    /// each one is).
    func adopt(_ record: RecoveryRecord, drives: [(drive: StoredDrive, listed: RecoveryRecord.Drive)],
               servers: [StoredKeyServer], store: StateDatabase) throws {
        let generation = try store.addGeneration(StoredKeyGeneration(
            keyID: record.keyID, tag: record.tag, state: .active, provider: KeyProviderKind.kmip.rawValue,
            locations: locations(of: record.keyID, shares: record.threshold != nil, on: servers),
            createdAt: record.createdAt, tokenID: record.tokenID))
        guard let generationID = generation.id else { throw ControlError(.failed, "the adopted generation has no id") }
        try store.setKeyShareThreshold(record.threshold)
        for (stored, listed) in drives {
            guard let driveID = stored.id else { continue }
            var drive = stored
            drive.generationID = generationID
            drive.tryLimit = listed.tryLimit ?? stored.tryLimit
            try store.updateDrive(drive)
            try store.setCheckValues(listed.checkValues.compactMap { authority, hex in
                Self.bytes(hex).map { StoredCheckValue(driveID: driveID, generationID: generationID, authority: authority, value: Data($0)) }
            })
        }
        if record.tokenID != nil {
            var rdl = try store.rdl() ?? StoredRDL(server: record.rdlServer ?? servers[0].name, lockOnLoss: record.lockOnLoss ?? false,
                                                   requestedAt: record.createdAt)
            rdl.tokenThreshold = record.tokenThreshold
            rdl.tokenLocations = record.tokenID.map { locations(of: $0, shares: record.tokenThreshold != nil, on: servers) } ?? []
            try store.saveRDL(rdl)
        } else if try store.rdl() != nil {
            try store.deleteRDL()  // the newer record's generation needs no token
        }
        guard let next = record.next else { return }
        let nextGeneration = StoredKeyGeneration(keyID: next.keyID, tag: next.tag, state: .pending, provider: KeyProviderKind.kmip.rawValue,
                                                 locations: locations(of: next.keyID, shares: next.threshold != nil, on: servers),
                                                 createdAt: next.createdAt, tokenID: next.tokenID)
        let journal = try store.beginJournaledChange(.rekey, from: generationID, generation: nextGeneration, newDrives: [],
                                                     at: time.wallTime) { drive, nextID in
            (next.checkValues[drive.identity] ?? [:]).compactMap { authority, hex in
                drive.id.flatMap { driveID in
                    Self.bytes(hex).map { StoredCheckValue(driveID: driveID, generationID: nextID, authority: authority, value: Data($0)) }
                }
            }
        }
        try store.setKeyShareThreshold(next.threshold)
        // Where each drive is in that rekey is not known: the rerun tries the new PINs first.
        if let journalID = journal.id {
            for step in try store.journalSteps(journalID: journalID) {
                var unknown = step
                unknown.step = .unknown
                try store.setJournalStep(unknown)
            }
        }
    }

    /// Where the servers keep `keyID` (its first object on each, by identifier), as a fresh store
    /// records it; a server that cannot be asked now is found by name at the next fetch.
    private func locations(of keyID: String, shares: Bool, on servers: [StoredKeyServer]) -> [String] {
        servers.compactMap { server in
            let found = try? keys.pool(server).on(server: server.name) { (client) throws(KeyServerError) -> [String] in
                try client.negotiateVersion()
                return try client.locate([.name(keyID)])
            }
            return found?.first.map {
                (shares ? KeyLocation.keyServerShare(server: server.name, objectID: $0) : .keyServer(server: server.name, objectID: $0)).description
            }
        }
    }
}
