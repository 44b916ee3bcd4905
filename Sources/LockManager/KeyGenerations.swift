import ControlAPI
import Foundation
import Keys
import KMIP
import LockState
import Platform

extension LockManager {
    /// Takes a generation no drive and no unfinished change needs out of use: it leaves the
    /// keytable and is marked retired; its key stays on its key servers and files (`keys
    /// restore` brings it back, `keys destroy` ends it).
    public func keysRetire(keyID: String) throws(ControlError) -> KeysReport {
        let store = try openState(.write)
        let generation = try unneededGeneration(keyID, store: store, destroying: false)
        if generation.state != .retired, let id = generation.id {
            do { try store.setGenerationState(id: id, .retired) } catch { throw ControlError(error) }
        }
        keytable.remove(generation.keyID)
        audit(store, "keys retire", target: generation.keyID, outcome: "done")
        return try keysList()
    }

    /// Destroys a generation no drive and no unfinished change needs, everywhere: Revoke and
    /// Destroy on every key server holding a copy or share, its key files removed, the keytable
    /// entry dropped, the state's record marked destroyed (it no longer counts against the 128).
    /// A drive taken out of the array with its PINs kept (`array remove` without `--revert`)
    /// can then come back only through a PSID revert.
    public func keysDestroy(keyID: String) throws(ControlError) -> KeysReport {
        let store = try openState(.write)
        let generation = try unneededGeneration(keyID, store: store, destroying: true)
        // The servers' recovery record must name the active generation before an older key goes:
        // one left behind by a cut-off change would name a key that is about to be gone.
        let behind = keys.publishRecoveryRecord(store: store, onlyIfStale: true)
        guard behind.isEmpty else {
            throw ControlError(.unreachable, "the recovery record on \(behind.joined(separator: ", ")) could not be brought up to date, so key generation \(generation.keyID) was not destroyed",
                               fix: "bring the key servers back (`sedlock keyserver status`), then destroy it again; nothing else changed")
        }
        let left = destroyEverywhere(generation, store: store)
        guard left.isEmpty else {
            audit(store, "keys destroy", target: generation.keyID, outcome: "unfinished: \(left.joined(separator: "; "))")
            throw ControlError(.unreachable, "key generation \(generation.keyID) was not destroyed everywhere: \(left.joined(separator: "; "))",
                               fix: "bring the key servers back (`sedlock keyserver status`), then destroy it again; nothing else changed")
        }
        if let id = generation.id {
            do { try store.setGenerationState(id: id, .destroyed) } catch { throw ControlError(error) }
        }
        keytable.remove(generation.keyID)
        audit(store, "keys destroy", target: generation.keyID, outcome: "destroyed on its key servers and in its key files")
        return try keysList()
    }

    /// After a finished rekey: the retired generations beyond the newest `keepRetiredGenerations`
    /// that nothing needs are destroyed. What cannot be destroyed now is left retired.
    func applyRetentionPolicy(store: any StateStore) {
        guard let keep = configuration.keepRetiredGenerations,
              let retired = try? store.generations().filter({ $0.state == .retired }).sorted(by: { $0.createdAt > $1.createdAt }),
              retired.count > keep, keys.publishRecoveryRecord(store: store, onlyIfStale: true).isEmpty else { return }
        for generation in retired.dropFirst(keep) {
            guard (try? unneededGeneration(generation.keyID, store: store, destroying: true)) != nil,
                  destroyEverywhere(generation, store: store).isEmpty, let id = generation.id else { continue }
            try? store.setGenerationState(id: id, .destroyed)
            keytable.remove(generation.keyID)
            audit(store, "keys destroy", target: generation.keyID, outcome: "by the retention policy (keep \(keep) retired)")
        }
    }

    /// The generation `keyID`, when no drive holds it and no unfinished change needs it; else why not.
    private func unneededGeneration(_ keyID: String, store: any StateStore, destroying: Bool) throws(ControlError) -> StoredKeyGeneration {
        do {
            let generations = try store.generations()
            guard let generation = generations.first(where: { $0.keyID == keyID.lowercased() }), let id = generation.id else {
                throw ControlError(.badRequest, "no key generation \(keyID)", fix: "see `sedlock keys list`")
            }
            guard generation.state != .destroyed else { throw ControlError(.badRequest, "key generation \(keyID) is destroyed already") }
            guard generation.state != .active else {
                throw ControlError(.badRequest, "key generation \(keyID) is the active one: the drives use it",
                                   fix: "rekey first (`sedlock rekey`); the old generation is then retired")
            }
            if let journal = try store.pendingJournals().first(where: { $0.fromGenerationID == id || $0.toGenerationID == id }) {
                throw ControlError(.badRequest, "an unfinished \(journal.kind.rawValue) needs key generation \(keyID)",
                                   fix: "finish it first (`sedlock \(journal.kind.rawValue)`)")
            }
            if let drive = try store.drives().first(where: { $0.generationID == id }) {
                throw ControlError(.badRequest, "\(drive.address) holds PINs of key generation \(keyID)", fix: "rekey the array first")
            }
            if destroying && generation.state != .retired {
                throw ControlError(.badRequest, "key generation \(keyID) is \(generation.state.rawValue); only a retired one is destroyed",
                                   fix: "retire it first (`sedlock keys retire \(keyID)`)")
            }
            return generation
        } catch {
            throw ControlError(error)
        }
    }

    /// Revoke and Destroy of every key-server copy or share, and removal of the key files; what could not be done.
    private func destroyEverywhere(_ generation: StoredKeyGeneration, store: any StateStore) -> [String] {
        var left: [String] = []
        let servers = (try? store.keyServers()) ?? []
        for location in generation.keyLocations {
            switch location {
            case .localFile(let path), .clevisFile(let path, _):
                if unlink(path) != 0 && errno != ENOENT { left.append("\(path): \(errnoText())") }
            case .keyServer(let name, let id), .keyServerShare(let name, let id):
                guard let server = servers.first(where: { $0.name == name }) else { continue }  // removed since: destroyed then
                left += keys.destroy([id], on: server, message: "sedlock: key generation destroyed").values.map { "\(name): \($0)" }
            }
        }
        return left
    }
}
