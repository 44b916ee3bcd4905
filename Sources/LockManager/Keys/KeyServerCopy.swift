import ControlAPI
import Keys
import KMIP
import LockState
import Platform

/// One object a key server of the array must hold: a live generation's AK (a full copy, or a
/// share), or the RDL security token.
struct KeyServerObject: Sendable {
    /// Its Name on the servers.
    let keyID: String
    /// Its Object Group.
    let tag: String
    /// The generation it belongs to; nil for the RDL token.
    let generationID: Int64?
    /// Where the existing copies are.
    let locations: [KeyLocation]
    /// What it is, for messages: "the AK of key generation …", "the RDL token …".
    let what: String

    var isShared: Bool { locations.contains { if case .keyServerShare = $0 { return true } else { return false } } }
}

/// A copy made on a new server: what, and where it went.
struct KeyServerCopy: Sendable {
    let object: KeyServerObject
    let location: KeyLocation
    let detail: String
}

extension KeyService {
    /// Every object of the array that lives on its key servers: each live kmip generation's AK
    /// and the RDL token.
    func objectsOnKeyServers(_ store: any StateStore) throws(ControlError) -> [KeyServerObject] {
        do {
            var objects: [KeyServerObject] = []
            let live = try store.generations().filter { $0.state == .active || $0.state == .pending }
            for generation in live where generation.provider == KeyProviderKind.kmip.rawValue {
                objects.append(KeyServerObject(keyID: generation.keyID, tag: generation.tag, generationID: generation.id,
                                               locations: generation.keyLocations, what: "the AK of key generation \(generation.keyID)"))
            }
            if let rdl = try store.rdl(), let tokenID = live.last(where: { $0.tokenID != nil })?.tokenID {
                objects.append(KeyServerObject(keyID: tokenID, tag: LockManager.tokenTag, generationID: nil,
                                               locations: KeyLocation.parse(rdl.tokenLocations), what: "the RDL token \(tokenID)"))
            }
            return objects
        } catch { throw ControlError(error) }
    }

    /// Copies `objects` onto `server`, from the array's `servers`: a full copy as it is; a
    /// share as a new share of the same split (made from the threshold's worth of the others,
    /// at an index none of them has — so every existing server must answer), each registered,
    /// activated and proven by a Get. A failure takes back every copy made here and says why.
    func copy(_ objects: [KeyServerObject], to server: StoredKeyServer, from servers: [StoredKeyServer]) throws(ControlError) -> [KeyServerCopy] {
        var made: [KeyServerCopy] = []
        do throws(ControlError) {
            for object in objects {
                let (material, detail) = try materialForNewServer(object, from: servers)
                let id = try register(material, as: object, on: server)
                let location: KeyLocation = object.isShared ? .keyServerShare(server: server.name, objectID: id)
                                                            : .keyServer(server: server.name, objectID: id)
                made.append(KeyServerCopy(object: object, location: location, detail: detail))
            }
            return made
        } catch {
            takeBack(made, from: server)
            throw error
        }
    }

    /// What the new server keeps of `object`, and how it was made.
    private func materialForNewServer(_ object: KeyServerObject, from servers: [StoredKeyServer]) throws(ControlError) -> (Secret, String) {
        let wanted = WantedKey(keyID: object.keyID, locations: object.locations, requireActive: object.generationID == nil)
        let deadline = Deadline.after(seconds: configuration.commandTimeout, time: time)
        guard object.isShared else {
            switch keyServers(servers, requireActive: wanted.requireActive).fetch(keyID: object.keyID, deadline: deadline) {
            case .found(let material): return (material, "a copy")
            case .notHere(let why), .refused(let why):
                throw ControlError(.unreachable, "\(object.what) could not be fetched to copy it: \(why)",
                                   fix: "bring the key servers back (`sedlock keyserver status`), then add the server again")
            }
        }
        // Every server's share, to learn every index in use.
        var shares: [ShamirSharing.Share] = []
        var threshold = 0
        for existing in servers {
            let assembly = keyServers([existing], requireActive: wanted.requireActive).assemble([wanted], deadline: deadline)[object.keyID]
            guard let share = assembly?.shares.first, let needed = assembly?.needed else {
                throw ControlError(.unreachable, "\(existing.name) did not give its share of \(object.what) (\(assembly?.lookup.reason ?? "no answer")): "
                                   + "a new share must not take an index another server holds",
                                   fix: "bring \(existing.name) back, or remove it first, then add the server again")
            }
            shares.append(share)
            threshold = needed
        }
        guard threshold >= 2, shares.count >= threshold, let top = shares.map(\.index).max(), top < 255 else {
            throw ControlError(.failed, "\(object.what): \(shares.count) shares of a \(threshold)-of-n split cannot be extended")
        }
        let share: ShamirSharing.Share
        do { share = try ShamirSharing.extend(Array(shares.prefix(threshold)), to: top + 1) } catch {
            throw ControlError(.failed, "\(object.what): a new share could not be made: \(error)")
        }
        return (KeyShareMaterial.encode(share, threshold: threshold), "share \(top + 1) of the \(threshold)-of-\(servers.count + 1) split")
    }

    /// Registers `material` on `server` as SecretData named as the object, activates it, and
    /// proves it by a Get; returns its identifier.
    private func register(_ material: Secret, as object: KeyServerObject, on server: StoredKeyServer) throws(ControlError) -> String {
        do throws(KeyServerError) {
            return try pool(server).on(server: server.name) { (client) throws(KeyServerError) -> String in
                try client.negotiateVersion()
                let id = try client.registerSecret(material, attributes: [.name(object.keyID), .objectGroup(object.tag)])
                try client.activate(id)
                guard try client.get(id).material == material else {
                    try? client.revoke(id, reason: .cessationOfOperation, message: "sedlock: the copy did not read back")
                    try? client.destroy(id)
                    throw KeyServerError(.keyServerFailed, server: server.name, cause: "the copy of \(object.what) read back different",
                                         fix: "check the key server")
                }
                return id
            }
        } catch {
            let unreachable = error.code == .keyServerUnavailable || error.code == .keyServerSslError
            throw ControlError(unreachable ? .unreachable : .failed,
                               "\(server.name) could not keep \(object.what), so it was not added: \(error.cause)", fix: error.fix)
        }
    }

    /// Revokes and destroys copies made on `server` (a failed add); names what could not be.
    @discardableResult
    func takeBack(_ copies: [KeyServerCopy], from server: StoredKeyServer) -> [String] {
        Array(destroy(copies.compactMap(\.location.objectID), on: server, message: "sedlock: the key server was not added").keys)
    }

    /// Revokes and destroys each object `ids` names on `server`, one connection for all: an
    /// object gone already counts as destroyed, one revoked before is destroyed as usual.
    /// Returns, for each that could not be destroyed, why.
    func destroy(_ ids: [String], on server: StoredKeyServer, message: String) -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        var left: [String: String] = [:]
        do throws(KeyServerError) {
            try pool(server).on(server: server.name) { (client) throws(KeyServerError) in
                try client.negotiateVersion()
                for id in ids {
                    do throws(KeyServerError) {
                        do throws(KeyServerError) {
                            try client.revoke(id, reason: .cessationOfOperation, message: message)
                        } catch {
                            if error.resultReason == .itemNotFound { continue }
                        }
                        do throws(KeyServerError) { try client.destroy(id) } catch {
                            if error.resultReason != .itemNotFound { throw error }
                        }
                    } catch {
                        left[id] = error.cause
                    }
                }
            }
        } catch {
            for id in ids { left[id] = error.cause }
        }
        return left
    }
}

extension KeyService {
    /// What `server` should hold of `objects` and does not: missing, or not Active (a key a
    /// server lost, destroyed or revoked behind sedlock's back). Empty when it holds them all;
    /// nil when it could not be asked.
    func missingObjects(on server: StoredKeyServer, _ objects: [KeyServerObject]) -> [String]? {
        let mine = objects.filter { object in object.locations.contains { $0.server == server.name } }
        guard !mine.isEmpty else { return [] }
        do throws(KeyServerError) {
            return try pool(server).on(server: server.name) { (client) throws(KeyServerError) -> [String] in
                try client.negotiateVersion()
                var missing: [String] = []
                for object in mine {
                    guard let id = object.locations.objectID(on: server.name) else { continue }
                    do throws(KeyServerError) {
                        let state = try client.state(of: id)
                        if state != .active { missing.append("\(object.what) is \(state?.name ?? "in no state") there") }
                    } catch {
                        guard error.resultReason == .itemNotFound else { throw error }
                        missing.append("\(object.what) is missing there")
                    }
                }
                return missing
            }
        } catch {
            return nil
        }
    }
}

