import ControlAPI
import Foundation
import Keys
import LockState
import Opal
import Platform
import SecurityTransport

extension LockManager {
    /// Takes an array of drives under management: one new key generation whose AK is stored by
    /// the provider first, every drive's PINs derived from it (check values recorded before any
    /// drive is touched), each drive owned, activated, configured (global range, LockOnReset
    /// power-cycle) and its PINs proven — journaled, so a crash anywhere is finished by the next run.
    public func setup(_ request: SetupRequest, adoptionPassword: Secret? = nil, passphrase: Secret? = nil) async throws(ControlError) -> ArrayReport {
        let store = try openState(.write)
        let pending: [JournalEntry]
        let generations: [StoredKeyGeneration]
        do {
            pending = try store.pendingJournals()
            generations = try store.generations()
        } catch { throw ControlError(error) }
        if let journal = pending.first(where: { $0.kind == .setup }) {
            if request.dryRun == true {
                return ArrayReport(operation: "setup --dry-run", drives: [],
                                   note: "dry run: an unfinished setup is in the state; `sedlock setup` would finish it first. Nothing was changed")
            }
            let drives: [StoredDrive]
            do { drives = try store.drives() } catch { throw ControlError(error) }
            let listed = Set(request.drives)
            if !listed.isEmpty && listed != Set(drives.map(\.address)) {
                throw ControlError(.badRequest, "an unfinished setup of \(drives.map(\.address).joined(separator: ", ")) is in the state",
                                   fix: "run `sedlock setup` with those drives (or none) to finish it first")
            }
            return try await runSetup(journal, store: store, request: request, adoptionPassword: adoptionPassword, resuming: true)
        }
        if let busy = pending.first {
            throw ControlError(.badRequest, "a \(busy.kind.rawValue) is in progress", fix: "finish it first (`sedlock \(busy.kind.rawValue)`)")
        }
        if let active = generations.first(where: { $0.state == .active }) {
            throw ControlError(.badRequest, "the array is already set up (key \(active.keyID))",
                               fix: "add drives with `sedlock array add`, change keys with `sedlock rekey`")
        }
        try validate(request, adoptionPassword: adoptionPassword)
        if request.fromPassphrase == true && passphrase == nil {
            throw ControlError(.badRequest, "setup from a passphrase needs the passphrase", fix: "give it with --passphrase-file (and --direct)")
        }
        if request.fromPassphrase == true && request.adoption != nil {
            throw ControlError(.badRequest, "an adoption and a passphrase cannot go together (one secret per command)",
                               fix: "set up adopting the drives, then `sedlock rekey --passphrase-file F`")
        }
        if request.provider == .kmip {
            let servers: [StoredKeyServer]
            do { servers = try store.keyServers() } catch { throw ControlError(error) }
            guard !servers.isEmpty else {
                throw ControlError(.badRequest, "the kmip provider needs a key server", fix: "add one with `sedlock keyserver add`")
            }
            if let k = request.threshold {
                guard k >= 2, k <= servers.count else {
                    throw ControlError(.badRequest, "a threshold of \(k) needs 2 ≤ k ≤ the \(servers.count) key servers configured")
                }
            }
        } else if request.threshold != nil {
            throw ControlError(.badRequest, "--threshold spreads key shares over key servers: it needs --provider kmip")
        }
        switch (request.provider, request.clevis) {
        case (.clevis, nil):
            throw ControlError(.badRequest, "a key kept by clevis needs its policy", fix: "give --clevis CONFIG (and --clevis-pin PIN)")
        case (.clevis, let policy?):
            if let problem = policy.problem { throw ControlError(.badRequest, problem) }
        case (_, .some):
            throw ControlError(.badRequest, "--clevis says how clevis seals the key: it needs --provider clevis")
        default:
            break
        }
        let existing: [StoredDrive]
        do { existing = try store.drives() } catch { throw ControlError(error) }
        let newDrives = try await newDriveRecords(request.drives, adoption: request.adoption,
                                                  allowUnencrypted: request.allowUnencrypted == true, existing: existing, store: store)
        if request.dryRun == true {
            let custody = switch request.provider {
            case .kmip: "on the key servers" + (request.threshold.map { " as \($0)-of-n shares" } ?? "")
            case .clevis: "sealed by clevis (\(request.clevis?.pin ?? "?"))"
            case .local: "in a local key file"
            }
            return try plan("setup", newDrives, joining: "a new key", store: store,
                            note: "dry run: nothing was changed and nothing presented to a drive; the new key would be kept \(custody)")
        }

        // The new key, stored before anything depends on it.
        let keyID = UUID().uuidString.lowercased()
        let ak = try newAuthenticationKey(keyID: keyID, passphrase: request.fromPassphrase == true ? passphrase : nil)
        let tag = request.keyTag ?? KeyTag.machineDefault(machineIDPath: configuration.machineIDPath)
        let keyStore = try keys.keyStore(provider: request.provider, threshold: request.threshold, previous: nil,
                                         keyDirectory: request.keyDirectory, clevis: request.clevis, store: store)
        if request.provider == .kmip {
            do { try store.setKeyShareThreshold(request.threshold) } catch { throw ControlError(error) }
        }
        let locations = try keyStore.store(keyID: keyID, tag: tag, ak: ak)
        let journal = try beginJournal(.setup, operation: "setup", target: request.drives.joined(separator: " "), from: nil,
                                       generation: StoredKeyGeneration(keyID: keyID, tag: tag, state: .pending,
                                                                       provider: request.provider.rawValue,
                                                                       locations: locations.map { $0.description }, createdAt: time.wallTime),
                                       newDrives: newDrives, material: ak, store: store, started: "started (key \(keyID)"
                                           + (request.fromPassphrase == true ? ", AK from the operator's passphrase: \(PassphraseKey.parameters))" : ")"))
        return try await runSetup(journal, store: store, request: request, adoptionPassword: adoptionPassword, resuming: false)
    }

    private func validate(_ request: SetupRequest, adoptionPassword: Secret?) throws(ControlError) {
        guard !request.drives.isEmpty else { throw ControlError(.badRequest, "name the drives to set up (--drives)") }
        guard Set(request.drives).count == request.drives.count else { throw ControlError(.badRequest, "a drive is named twice") }
        for address in request.drives {
            do { _ = try DeviceAddress.parse(address) } catch { throw ControlError(error) }
        }
        if let tag = request.keyTag, !KeyTag.isValid(tag) {
            throw ControlError(.badRequest, "a key tag is 1–64 letters, digits, '.', '-' or '_'")
        }
        try Self.validate(request.adoption, password: adoptionPassword)
    }

    /// An adoption names a known PIN derivation and comes with the drives' current password.
    static func validate(_ adoption: SetupRequest.Adoption?, password: Secret?) throws(ControlError) {
        guard let adoption else { return }
        guard PinDerivation(rawValue: adoption.derivation) != nil else {
            throw ControlError(.badRequest, "unknown PIN derivation '\(adoption.derivation)'")
        }
        if let salt = adoption.salt, SerialSalt(rawValue: salt) == nil {
            throw ControlError(.badRequest, "unknown serial salt '\(salt)'; one of "
                               + SerialSalt.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard password != nil else { throw ControlError(.badRequest, "adoption needs the drives' current password") }
    }

    /// Probes `addresses` without authenticating and makes them drive records, or refuses them all,
    /// changing nothing and naming every problem: a drive that cannot be probed, an owned drive
    /// without adoption, one drive behind two addresses (or already in the array), a state
    /// directory on one of them.
    func newDriveRecords(_ addresses: [String], adoption: SetupRequest.Adoption?, allowUnencrypted: Bool = false,
                         existing: [StoredDrive], store: any StateStore) async throws(ControlError) -> [StoredDrive] {
        let probes = await probeForSetup(addresses)
        let known = Dictionary(existing.map { ($0.identity, $0) }) { first, _ in first }
        // Drives that left the array with their PINs kept (and a live key to prove them by).
        let departed = try Self.departedIdentities(probes.compactMap(\.identity), store: store)
        var problems: [String] = []
        for probe in probes {
            if let error = probe.error {
                // A drive's own error names its address already.
                problems.append(error.hasPrefix(probe.address) ? error : "\(probe.address): \(error)")
                continue
            }
            if let reason = probe.unencrypted, !allowUnencrypted {
                problems.append("\(probe.address): \(reason); put an Opal or Enterprise drive in its place, or manage its locking only with --allow-unencrypted")
            }
            if probe.owned == true && adoption == nil && !departed.contains(probe.identity ?? "") {
                problems.append("\(probe.address) is already owned (SID is not the MSID): adopt it with --adopt-pin-file, or revert it")
            }
            // A drive without Block SID (owned unknown) may be the one to adopt as well.
            if probe.owned != false, let adoption, let problem = Self.saltProblem(adoption, probe: probe) {
                problems.append("\(probe.address): \(problem)")
            }
            if let identity = probe.identity, let known = known[identity] {
                problems.append("\(probe.address) is the drive already in the array as \(known.address)")
            }
        }
        let identities = probes.compactMap(\.identity)
        if Set(identities).count != identities.count {
            problems.append("two addresses lead to the same drive")
        }
        guard problems.isEmpty else {
            let shown = problems.prefix(5).joined(separator: "; ")
            throw ControlError(.badRequest, "nothing was changed: " + shown
                               + (problems.count > 5 ? "; and \(problems.count - 5) more" : ""), refusal: .drivesNotReady)
        }
        do {
            try configuration.stateDirectory.requireNotOn(disks: Set(addresses.flatMap { DiskNames.of($0, sysfs: configuration.sysfs) }),
                                                          sysfs: configuration.sysfs)
        } catch { throw ControlError(.badRequest, error.summary, fix: error.fix, reason: error.reason) }
        return probes.compactMap { probe in
            guard let identity = probe.identity else { return nil }
            var record = StoredDrive(address: probe.address, identity: identity, bus: probe.bus, model: probe.model,
                                     serial: probe.serial, addedAt: time.wallTime)
            if probe.owned != false, let adoption {
                let salted = PinDerivation(rawValue: adoption.derivation)?.isSalted == true
                let interface = DeviceIdentity.Interface(rawValue: probe.bus) ?? .simulated
                record.adoptedFrom = adoption.derivation
                    + (salted ? ", salt: \(adoption.salt ?? SerialSalt.sedutilDefault(for: interface).rawValue)" : "")
            }
            return record
        }
    }

    /// Adoption tries nothing it cannot verify: when the sedutil builds that could have set a
    /// salted password disagree on this drive's salt, the operator must say which one it was
    /// (the drive cannot tell, and each wrong guess would cost a try).
    static func saltProblem(_ adoption: SetupRequest.Adoption, probe: SetupProbe) -> String? {
        guard PinDerivation(rawValue: adoption.derivation)?.isSalted == true,
              let interface = DeviceIdentity.Interface(rawValue: probe.bus) else { return nil }
        let candidates = SerialSalt.distinctCandidates(serialNumberField: probe.serialField, vendorIdentification: probe.vendorField,
                                                       interface: interface)
        if let named = adoption.salt.flatMap(SerialSalt.init(rawValue:)) {
            guard SerialSalt.applicable(to: interface).contains(named) else {
                return "no sedutil build salts with '\(named.rawValue)' on a \(interface.rawValue) drive; it can be "
                    + SerialSalt.applicable(to: interface).map(\.rawValue).joined(separator: ", ")
            }
            return nil
        }
        // On SAS every sedutil release in use salts with the vendor identification: taken as given.
        guard candidates.count > 1, interface != .sas else { return nil }
        return "its serial gives \(candidates.count) different salts depending on the sedutil build ("
            + candidates.map(\.rawValue).joined(separator: ", ")
            + "); name the one with --pin-salt (nothing was tried: each wrong one would cost a try)"
    }

    struct SetupProbe: Sendable {
        var address: String
        var identity: String?
        var bus = ""
        var model = ""
        var serial = ""
        var serialField: [UInt8] = []
        var vendorField: [UInt8] = []
        var owned: Bool?
        /// Why the drive's data is not protected by encryption (nil: it encrypts).
        var unencrypted: String?
        var error: String?
    }

    /// Identity and ownership of each drive, read without authenticating, in parallel.
    func probeForSetup(_ addresses: [String]) async -> [SetupProbe] {
        await withTaskGroup(of: (Int, SetupProbe).self) { group in
            for (n, address) in addresses.enumerated() {
                let owner: DriveOwner
                do throws(ControlError) { owner = try self.owner(for: address) } catch {
                    group.addTask { (n, SetupProbe(address: address, error: error.description)) }
                    continue
                }
                group.addTask {
                    do {
                        let probe = try await owner.withDrive { (opal) throws(OpalError) -> SetupProbe in
                            var p = SetupProbe(address: address)
                            let id = opal.identity
                            p.identity = DrivePIN.driveIdentity(wwn: id.wwn, serial: id.serialNumber)
                            p.bus = id.interface.rawValue
                            p.model = id.model
                            p.serial = id.serialNumber
                            p.serialField = id.serialNumberField
                            p.vendorField = id.vendorIdentification ?? []
                            p.owned = try OpalDrive.readDiscovery(opal.transport).blockSID?.sidValueState
                            p.unencrypted = opal.encryptsMedia ? nil : opal.unencryptedReason
                            return p
                        }
                        return (n, probe)
                    } catch {
                        return (n, SetupProbe(address: address, error: "\(error)"))
                    }
                }
            }
            var out = [SetupProbe?](repeating: nil, count: addresses.count)
            for await (n, probe) in group { out[n] = probe }
            return out.compactMap { $0 }
        }
    }

    /// A dry run's report: what setup or `array add` would do to each drive, said from what the
    /// probe found (nothing but discovery and identity was asked of the drives).
    func plan(_ operation: String, _ drives: [StoredDrive], joining key: String, store: any StateStore,
              note: String) throws(ControlError) -> ArrayReport {
        let back = try Self.departedIdentities(drives.map(\.identity), store: store)
        let outcomes = drives.map { drive in
            let how = back.contains(drive.identity) ? "taken back with the PINs it kept (proven by their check values)"
                : drive.adoptedFrom.map { "adopted (its PINs now: \($0))" } ?? "taken from factory state, the global range set to lock on power loss"
            return DriveOutcome(address: drive.address, result: .wouldChange, detail: "would be \(how), then given \(key)'s PINs")
        }
        return ArrayReport(operation: operation + " --dry-run", drives: outcomes, note: note)
    }

    /// Of `identities`, those of drives that left the array keeping their PINs, whose key is still live.
    static func departedIdentities(_ identities: [String], store: any StateStore) throws(ControlError) -> Set<String> {
        var out: Set<String> = []
        for identity in identities where try keptGeneration(of: identity, store: store) != nil { out.insert(identity) }
        return out
    }

    /// The generation whose PINs a drive that left the array kept, when that generation is live
    /// (not destroyed): nil for a drive that never left, or left in factory state.
    static func keptGeneration(of identity: String, store: any StateStore) throws(ControlError) -> Int64? {
        do {
            guard let kept = try store.departedCheckValues(identity: identity).first else { return nil }
            let generation = try store.generations().first { $0.id == kept.generationID }
            return generation.map { $0.state != .destroyed } == true ? kept.generationID : nil
        } catch { throw ControlError(error) }
    }

    /// Runs (or resumes) the journaled setup: keys first, then every drive's remaining steps in parallel.
    func runSetup(_ journal: JournalEntry, store: StateDatabase, request: SetupRequest,
                  adoptionPassword: Secret?, resuming: Bool) async throws(ControlError) -> ArrayReport {
        let generationID = journal.toGenerationID
        let derivation = request.adoption.flatMap { PinDerivation(rawValue: $0.derivation) }
        let lockout = lockoutGuard(store)
        let time = self.time
        // Drives taken back after an `array remove` that kept their PINs: the generation they hold.
        let takenBack = try self.takenBack(journal, store: store)
        let change = ArrayChange(
            operation: "setup", generations: Swift.Set<Int64>(takenBack.values).union([generationID]),
            requireKeys: ("the setup's key cannot be used, so no drive was touched",
                          "make the key available again (the key file or credential), then rerun `sedlock setup`"),
            work: { (keys) throws(ControlError) in
                guard case .ready(let ak)? = keys[generationID] else { return [] }
                return try self.journaledWork(journal, store: store, done: .setUp) { drive, step, journalID in
                    let pins: VerifiedPINs
                    do { pins = try VerifiedPINs.verify(ak: ak, drive: drive, generationID: generationID, store: store) } catch {
                        return .decided(DriveOutcome(address: drive.address, result: .keyMismatch, detail: "\(error)"))
                    }
                    var held: VerifiedPINs?
                    if let driveID = drive.id, let oldID = takenBack[driveID] {
                        guard case .ready(let oldAK)? = keys[oldID] else {
                            return .decided(DriveOutcome(address: drive.address, result: .keyUnavailable,
                                                         detail: "the key whose PINs the drive kept is not available"))
                        }
                        do { held = try VerifiedPINs.verify(ak: oldAK, drive: drive, generationID: oldID, store: store) } catch {
                            return .decided(DriveOutcome(address: drive.address, result: .keyMismatch, detail: "\(error)"))
                        }
                    }
                    return .run(drive) { [held] opal in
                        var adoption = held
                        if adoption == nil, drive.adoptedFrom != nil, let derivation, let adoptionPassword {
                            let salt = request.adoption?.salt.flatMap(SerialSalt.init(rawValue:))
                                ?? .sedutilDefault(for: opal.identity.interface)
                            if let pin = try? derivation.pin(from: adoptionPassword, serialNumberField: opal.identity.serialNumberField,
                                                             vendorIdentification: opal.identity.vendorIdentification ?? [], salt: salt) {
                                adoption = VerifiedPINs(sid: pin, admin1: pin, user1: pin)
                            }
                        }
                        let journaled = JournaledRun(drive: drive, journalID: journalID, store: store, lockout: lockout, time: time)
                        return DriveSetupRun(journaled: journaled, startStep: step.step, pins: pins, adoption: adoption,
                                             resuming: resuming).run(opal)
                    }
                }
            },
            finish: { (report) throws(ControlError) in
                guard report.allSucceeded, let journalID = journal.id else { return report }
                do throws(StateError) {
                    for var drive in try store.drives() where drive.generationID == nil {
                        drive.generationID = generationID
                        try store.updateDrive(drive)
                    }
                    try store.setGenerationState(id: generationID, .active)
                    try store.finishJournal(id: journalID, state: .done, at: time.wallTime)
                    for drive in try store.drives() where takenBack[drive.id ?? -1] != nil {
                        try store.forgetDeparted(identity: drive.identity)
                    }
                } catch { throw ControlError(error) }
                return report
            })
        return try await run(change, store: store)
    }

    /// The drives of a setup journal that were in the array before and left it with their PINs,
    /// by drive id, with the generation whose PINs they kept (a live one: not destroyed).
    func takenBack(_ journal: JournalEntry, store: StateDatabase) throws(ControlError) -> [Int64: Int64] {
        guard let journalID = journal.id else { return [:] }
        let inJournal: Swift.Set<Int64>
        let drives: [StoredDrive]
        do {
            inJournal = Swift.Set(try store.journalSteps(journalID: journalID).map(\.driveID))
            drives = try store.drives()
        } catch { throw ControlError(error) }
        var out: [Int64: Int64] = [:]
        for drive in drives {
            guard let id = drive.id, inJournal.contains(id), let kept = try Self.keptGeneration(of: drive.identity, store: store) else { continue }
            out[id] = kept
        }
        return out
    }
}
