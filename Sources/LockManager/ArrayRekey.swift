import ControlAPI
import Foundation
import Keys
import LockState
import Opal
import Platform

extension LockManager {
    /// NetApp allows 128 key generations; here 128 live ones (retired generations that are
    /// destroyed no longer count).
    public static let keyGenerationCreationLimit = 128

    /// A new key generation for the whole array, journaled in two phases: the new AK stored on its
    /// provider and every drive's new check values recorded → journal pending → per drive: new
    /// PINs set and proven in a fresh session → all done: the new generation is active and the
    /// old one retired (kept while any drive may still use it). After a crash, the next rekey,
    /// unlock or boot rolls it forward.
    public func rekey(_ request: RekeyRequest, passphrase: Secret? = nil) async throws(ControlError) -> ArrayReport {
        if request.fromPassphrase == true && passphrase == nil {
            throw ControlError(.badRequest, "a rekey from a passphrase needs the passphrase", fix: "give it with --passphrase-file (and --direct)")
        }
        return try await rekey(request, token: .keep, passphrase: request.fromPassphrase == true ? passphrase : nil)
    }

    /// A new generation's AK: 32 random bytes from OpenSSL, or made from the operator's passphrase.
    func newAuthenticationKey(keyID: String, passphrase: Secret?) throws(ControlError) -> Secret {
        if let passphrase { return try PassphraseKey.derive(passphrase, keyID: keyID) }
        guard let ak = Secret.random(count: 32) else { throw ControlError(.failed, "OpenSSL's random generator failed") }
        return ak
    }

    /// What a rekey does with Rapid Data Locking's security token.
    enum TokenChange {
        /// The current generation's token, if any, carries over (RDL is permanent).
        case keep
        /// The new generation's PINs need this token besides the new AK (RDL enable and rotate).
        case new(id: String, secret: Secret)
        /// The new generation needs no token (RDL disable, after every drive was erased).
        case drop
    }

    func rekey(_ request: RekeyRequest, token change: TokenChange, passphrase: Secret? = nil) async throws(ControlError) -> ArrayReport {
        let store = try openState(.write)
        let pending: [JournalEntry]
        let generations: [StoredKeyGeneration]
        let drives: [StoredDrive]
        do {
            pending = try store.pendingJournals()
            generations = try store.generations()
            drives = try store.drives()
        } catch { throw ControlError(error) }
        if let journal = pending.first(where: { $0.kind == .rekey }) {
            if request.dryRun == true {
                return ArrayReport(operation: "rekey --dry-run", drives: [],
                                   note: "dry run: an unfinished rekey is in the state; `sedlock rekey` would finish it first. Nothing was changed")
            }
            return try await runRekey(journal, store: store, resuming: true)
        }
        if let busy = pending.first {
            throw ControlError(.badRequest, "a \(busy.kind.rawValue) is unfinished", fix: "finish it first (`sedlock \(busy.kind.rawValue)`)")
        }
        guard let active = generations.first(where: { $0.state == .active }), let activeID = active.id else {
            throw ControlError(.badRequest, "the array has no active key", fix: "run `sedlock setup` first")
        }
        if let unfinished = drives.first(where: { $0.generationID != activeID }) {
            throw ControlError(.badRequest, "\(unfinished.address) does not hold the active key", fix: "finish its setup first")
        }
        if let guarded = drives.first(where: { $0.isGuarded }) {
            throw ControlError(.held, "\(guarded.address) is guarded (\(guarded.guardReason ?? "")); nothing was changed",
                               fix: "find the cause, then `sedlock guard reset \(guarded.address) --yes`", refusal: .driveGuarded)
        }
        // The limit is on live generations: destroyed ones no longer count.
        guard generations.filter({ $0.state != .destroyed }).count < Self.keyGenerationCreationLimit else {
            throw ControlError(.badRequest, "\(Self.keyGenerationCreationLimit) key generations are kept; no more can be created",
                               fix: "destroy retired ones no drive needs (`sedlock keys destroy KEY-ID --yes`), or set [keys] keep_retired",
                               refusal: .generationLimit)
        }
        if let tag = request.keyTag, !KeyTag.isValid(tag) {
            throw ControlError(.badRequest, "a key tag is 1–64 letters, digits, '.', '-' or '_'")
        }
        let (provider, threshold) = try custody(of: request, active: active, store: store)
        // Keys first: the current key must be in hand and proven before anything changes.
        let current = try loadKeys(generationIDs: [activeID], drives: drives, store: store)
        guard case .ready(let currentAK)? = current[activeID] else {
            throw ControlError(.held, "the current key is not available, so nothing was changed: \(current[activeID]?.reason ?? "no key")",
                               fix: "check `sedlock keyserver status` (or the key file), then rekey again")
        }
        if request.dryRun == true {
            // Each drive's PINs derived from the key just fetched and checked against its check values.
            let outcomes = drives.map { drive in
                do throws(VerifiedPINs.Failure) {
                    _ = try VerifiedPINs.verify(ak: currentAK, drive: drive, generationID: activeID, store: store)
                    return DriveOutcome(address: drive.address, result: .wouldChange,
                                        detail: "would move from key \(active.keyID) to a new key (\(provider.rawValue)\(threshold.map { ", \($0)-of-n" } ?? ""))")
                } catch {
                    return DriveOutcome(address: drive.address, result: .keyMismatch, detail: "\(error)")
                }
            }
            return ArrayReport(operation: "rekey --dry-run", drives: outcomes,
                               note: "dry run: the current key was fetched and every drive's PINs checked; no key was made, nothing presented to a drive")
        }

        let token: (id: String, secret: Secret)?
        if case .new(let id, let secret) = change {
            token = (id, secret)
        } else if case .keep = change, let tokenID = active.tokenID {
            switch securityToken(tokenID, store: store, deadline: Deadline.after(seconds: configuration.commandTimeout, time: time)) {
            case .found(let secret): token = (tokenID, secret)
            case .notHere(let why), .refused(let why):
                throw ControlError(.held, "the Rapid Data Locking security token is unavailable (\(why)), so nothing was changed",
                                   fix: "check `sedlock rdl test --kmip SERVER`, then rekey again")
            }
        } else {
            token = nil
        }

        let keyID = UUID().uuidString.lowercased()
        let ak = try newAuthenticationKey(keyID: keyID, passphrase: passphrase)
        // The PIN input: the AK, followed by the security token under RDL.
        let material = token.map { ak.appending($0.secret) } ?? ak
        let tag = request.keyTag ?? active.tag
        let keyStore = try keys.keyStore(provider: provider, threshold: threshold, previous: active, clevis: request.clevis, store: store)
        if provider == .kmip {
            do { try store.setKeyShareThreshold(threshold) } catch { throw ControlError(error) }
        }
        let locations = try keyStore.store(keyID: keyID, tag: tag, ak: ak)
        let custody = provider.rawValue + (threshold.map { " \($0)-of-n" } ?? "")
        let journal = try beginJournal(.rekey, operation: "rekey", target: "all", from: activeID,
                                       generation: StoredKeyGeneration(keyID: keyID, tag: tag, state: .pending, provider: provider.rawValue,
                                                                       locations: locations.map { $0.description }, createdAt: time.wallTime,
                                                                       tokenID: token?.id),
                                       newDrives: [], material: material, store: store,
                                       started: "started (key \(active.keyID) → \(keyID), \(active.provider) → \(custody)"
                                           + "\(token.map { ", token \($0.id)" } ?? "")"
                                           + (passphrase != nil ? ", AK from the operator's passphrase: \(PassphraseKey.parameters))" : ")"))
        // Before any drive moves: a host lost from here on can still finish the rekey from the key servers.
        if let next = (try? store.generations())?.first(where: { $0.id == journal.toGenerationID }) {
            keys.publishRecoveryRecord(store: store, next: next)
        }
        return try await runRekey(journal, store: store, resuming: false)
    }

    /// Runs (or resumes) a journaled rekey: both keys first, then every drive's remaining steps in parallel.
    func runRekey(_ journal: JournalEntry, store: StateDatabase, resuming: Bool) async throws(ControlError) -> ArrayReport {
        guard let fromID = journal.fromGenerationID else { throw ControlError(.failed, "the rekey journal entry is incomplete") }
        let toID = journal.toGenerationID
        let lockout = lockoutGuard(store)
        let time = self.time
        let change = ArrayChange(
            operation: "rekey", auditTarget: "all", generations: [fromID, toID],
            requireKeys: ("the rekey's keys are not both available, so no drive was touched",
                          "make both keys available (key servers or key files), then run `sedlock rekey` again"),
            work: { (keys) throws(ControlError) in
                guard case .ready(let oldAK)? = keys[fromID], case .ready(let newAK)? = keys[toID] else { return [] }
                return try self.journaledWork(journal, store: store, done: .rekeyed) { drive, step, journalID in
                    let old: VerifiedPINs, new: VerifiedPINs
                    do {
                        old = try VerifiedPINs.verify(ak: oldAK, drive: drive, generationID: fromID, store: store)
                        new = try VerifiedPINs.verify(ak: newAK, drive: drive, generationID: toID, store: store)
                    } catch {
                        return .decided(DriveOutcome(address: drive.address, result: .keyMismatch, detail: "\(error)"))
                    }
                    return .run(drive) { opal in
                        let journaled = JournaledRun(drive: drive, journalID: journalID, store: store, lockout: lockout, time: time)
                        return DriveRekeyRun(journaled: journaled, startStep: step.step, startPINChangeSent: step.pinChangeSent,
                                             old: old, new: new, resuming: resuming).run(opal)
                    }
                }
            },
            finish: { (report) throws(ControlError) in
                guard report.allSucceeded, let journalID = journal.id else { return report }
                do throws(StateError) {
                    for var drive in try store.drives() {
                        drive.generationID = toID
                        try store.updateDrive(drive)
                    }
                    try store.setGenerationState(id: toID, .active)
                    try store.setGenerationState(id: fromID, .retired)
                    try store.finishJournal(id: journalID, state: .done, at: time.wallTime)
                } catch { throw ControlError(error) }
                self.applyRetentionPolicy(store: store)
                return report
            })
        return try await run(change, store: store)
    }

    /// Where the new generation's AK goes, and whether as shares: as now unless the request
    /// converts it, checked against the configured key servers before anything changes.
    private func custody(of request: RekeyRequest, active: StoredKeyGeneration,
                         store: any StateStore) throws(ControlError) -> (KeyProviderKind, Int?) {
        let provider = request.provider ?? KeyProviderKind(rawValue: active.provider) ?? .local
        if request.clevis != nil && provider != .clevis {
            throw ControlError(.badRequest, "--clevis says how clevis seals the key: it needs --provider clevis")
        }
        if let problem = request.clevis?.problem { throw ControlError(.badRequest, problem) }
        guard provider == .kmip else {
            guard request.threshold == nil else {
                throw ControlError(.badRequest, "--threshold spreads key shares over key servers: it needs --provider kmip")
            }
            return (provider, nil)
        }
        let servers: [StoredKeyServer]
        let current: Int?
        do {
            servers = try store.keyServers()
            current = try store.keyShareThreshold()
        } catch { throw ControlError(error) }
        guard !servers.isEmpty else {
            throw ControlError(.badRequest, "keeping the key on key servers needs one", fix: "add one with `sedlock keyserver add`")
        }
        // A conversion from local keys names its own custody; a rekey on the key servers keeps
        // theirs. A threshold of 1 (any one server rebuilds it) is a full copy on every server.
        let asked = request.threshold ?? (request.provider == nil || active.provider == KeyProviderKind.kmip.rawValue ? current : nil)
        let threshold = asked == 1 ? nil : asked
        if let k = threshold, !(2...max(2, servers.count)).contains(k) || servers.count < 2 {
            throw ControlError(.badRequest, "a threshold of \(k) needs 2 ≤ k ≤ the \(servers.count) key servers configured")
        }
        return (.kmip, threshold)
    }

    /// The generation whose Admin1 PIN a drive holds now: during an unfinished rekey, the new one
    /// once the drive's Admin1 has moved.
    func admin1Generation(of drive: StoredDrive, rekey: (journal: JournalEntry, steps: [JournalDriveStep])?) -> Int64? {
        guard let rekey, let step = rekey.steps.first(where: { $0.driveID == drive.id }) else { return drive.generationID }
        return step.step >= .admin1Set ? rekey.journal.toGenerationID : (rekey.journal.fromGenerationID ?? drive.generationID)
    }
}
