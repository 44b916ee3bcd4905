import Certificates
import ControlAPI
import Foundation
import Keys
import KMIP
import LockState
import Platform

extension LockManager {
    /// Adds a key server after testing it as the service will use it (TLS with the client's
    /// identity, authentication, a Locate), and gives it everything the array keeps on its key
    /// servers (each live generation's AK or a share of it, the RDL token), each proven by a
    /// Get, before recording it. A server that cannot take a copy is not added. At most four.
    public func keyServerAdd(_ request: KeyServerAddRequest) throws(ControlError) -> KeyServerReport {
        try checkServerSettings(addresses: request.addresses, certificatePath: request.certificatePath,
                                privateKeyPath: request.privateKeyPath, caPath: request.caPath, except: nil)
        let name = request.name ?? request.addresses[0]
        let candidate = StoredKeyServer(providerID: 0, name: name, addresses: request.addresses.compactMap { ServerAddress($0)?.description },
                                        position: 0, certificatePath: request.certificatePath, privateKeyPath: request.privateKeyPath,
                                        caPath: request.caPath, verifyServerName: request.verifyServerName)
        let tested = test(candidate)
        if let error = tested.error {
            throw ControlError(.unreachable, "\(name) failed its test, so it was not added: \(error)", refusal: .keyServerTestFailed)
        }
        let store = try openState(.write)
        let existing: [StoredKeyServer]
        do {
            if let busy = try store.pendingJournals().first {
                throw ControlError(.badRequest, "a \(busy.kind.rawValue) is unfinished, so no key server was added",
                                   fix: "finish it first (`sedlock \(busy.kind.rawValue)`)")
            }
            existing = try store.keyServers()
        } catch {
            throw ControlError(error)
        }
        guard existing.count < KeyServerPool.maximumServers else {
            throw ControlError(.badRequest, "\(KeyServerPool.maximumServers) key servers are configured already",
                               fix: "remove one first (`sedlock keyserver remove`)")
        }
        // Everything the array keeps on its key servers goes onto the new one, proven, before it
        // is recorded; the record of the server and of the copies is one transaction.
        let copies = try keys.copy(try keys.objectsOnKeyServers(store), to: candidate, from: existing)
        do {
            var byGeneration: [Int64: [String]] = [:]
            for copy in copies { if let id = copy.object.generationID { byGeneration[id, default: []].append(copy.location.description) } }
            try store.addKeyServer(name: name, addresses: candidate.addresses, certificatePath: candidate.certificatePath,
                                   privateKeyPath: candidate.privateKeyPath, caPath: candidate.caPath,
                                   verifyServerName: candidate.verifyServerName, copies: byGeneration,
                                   tokenCopies: copies.filter { $0.object.generationID == nil }.map(\.location.description))
        } catch {
            keys.takeBack(copies, from: candidate)
            throw ControlError(error)
        }
        recordCertificates(of: candidate, store: store)
        let note = copies.isEmpty ? "nothing to copy: the array keeps no key on key servers yet"
            : "copied onto \(name), each proven by a Get: " + copies.map { "\($0.object.what) (\($0.detail))" }.joined(separator: "; ")
        audit(store, "keyserver add", target: name, outcome: "done (\(tested.tls ?? "TLS")); \(note)")
        var report = try keyServerShow()
        report.note = note
        return report
    }

    /// Several servers at once, all or none: each is tested and given the array's objects in
    /// turn; when one fails, those already added are removed again (destroying what they were
    /// given) and the failure is reported.
    public func keyServersAdd(_ requests: [KeyServerAddRequest]) throws(ControlError) -> KeyServerReport {
        guard !requests.isEmpty else { throw ControlError(.badRequest, "give the servers to add") }
        let names = requests.map { $0.name ?? $0.addresses.first ?? "" }
        guard Set(names).count == names.count else { throw ControlError(.badRequest, "each server is added once") }
        var added: [String] = []
        var notes: [String] = []
        for (request, name) in zip(requests, names) {
            do throws(ControlError) {
                notes.append(try keyServerAdd(request).note ?? "\(name) added")
                added.append(name)
            } catch {
                let undone = added.isEmpty ? "" : (try? keyServerRemove(names: added)).map { _ in "; \(added.joined(separator: ", ")) removed again" }
                    ?? "; \(added.joined(separator: ", ")) could not be removed again: remove them with `sedlock keyserver remove`"
                throw ControlError(error.code, "\(name): \(error.message)\(undone)", fix: error.fix, reason: error.reason)
            }
        }
        var report = try keyServerShow()
        report.note = notes.joined(separator: "; ")
        return report
    }

    /// What a server's certificates are, for the record (fingerprints and expiry; never the
    /// private key); with `unless`, only the files that differ from that server's.
    private func recordCertificates(of server: StoredKeyServer, store: StateDatabase, unless previous: StoredKeyServer? = nil) {
        for (role, path, before) in [("client", server.certificatePath, previous?.certificatePath), ("ca", server.caPath, previous?.caPath)]
            where path != before {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let records = ((try? Certificate.all(pem: text)) ?? []).map {
                StoredCertificate(role: role, path: path, fingerprint: $0.fingerprint,
                                  notAfter: $0.notAfter.map { Date(timeIntervalSince1970: Double($0)) })
            }
            try? store.recordCertificates(records, role: role, path: path)
        }
    }

    /// The addresses and identity files a server is given, checked before it is tested: each
    /// address HOST[:PORT], each file readable, and no address another configured server (other
    /// than `except`) has — one server under two names would count twice against the four-server
    /// limit and could hold two shares of one key.
    private func checkServerSettings(addresses: [String], certificatePath: String, privateKeyPath: String, caPath: String,
                                     except: String?) throws(ControlError) {
        guard !addresses.isEmpty else { throw ControlError(.badRequest, "give the server's HOST[:PORT]") }
        for text in addresses where ServerAddress(text) == nil {
            throw ControlError(.badRequest, "'\(text)' is not HOST[:PORT]")
        }
        for (option, path) in [("--cert", certificatePath), ("--key", privateKeyPath), ("--ca", caPath)]
            where !FileManager.default.isReadableFile(atPath: path) {
            throw ControlError(.badRequest, "\(option) \(path): cannot read the file")
        }
        let asked = Set(addresses.compactMap { ServerAddress($0)?.description })
        // No state yet (the first server of a new array): nothing to clash with.
        let configured = ((try? openState(.read).keyServers()) ?? []).filter { $0.name != except }
        if let twin = configured.first(where: { !asked.isDisjoint(with: $0.addresses.compactMap { ServerAddress($0)?.description }) }) {
            throw ControlError(.badRequest, "\(twin.name) already has the address \(asked.intersection(twin.addresses).sorted().joined(separator: ", "))",
                               fix: "a server is added once; give its other cluster members with it (`keyserver add HOST --cluster HOST2,HOST3`)",
                               refusal: .duplicateAddress)
        }
    }

    /// Changes a configured server's addresses or identity files (a renewed client certificate,
    /// a new CA, a moved cluster): the server as it would be is tested first (TLS with the new
    /// identity, authentication) and must still hold every object the array keeps there, found
    /// by its recorded identifier; only then is the change kept.
    public func keyServerModify(_ request: KeyServerModifyRequest) throws(ControlError) -> KeyServerReport {
        guard !request.changesNothing else {
            throw ControlError(.badRequest, "say what changes: --address/--cluster, --cert, --key, --ca or --verify-name")
        }
        let store = try openState(.write)
        let current: StoredKeyServer
        let objects: [KeyServerObject]
        do {
            let servers = try store.keyServers()
            guard let found = servers.first(where: { $0.name == request.name }) else {
                throw ControlError(.badRequest, "no key server named \(request.name)",
                                   fix: servers.isEmpty ? "none is configured" : "one of: \(servers.map(\.name).joined(separator: ", "))")
            }
            current = found
        } catch { throw ControlError(error) }
        objects = try keys.objectsOnKeyServers(store)
        var candidate = current
        if let addresses = request.addresses { candidate.addresses = addresses.compactMap { ServerAddress($0)?.description } }
        if let path = request.certificatePath { candidate.certificatePath = path }
        if let path = request.privateKeyPath { candidate.privateKeyPath = path }
        if let path = request.caPath { candidate.caPath = path }
        if let verify = request.verifyServerName { candidate.verifyServerName = verify }
        try checkServerSettings(addresses: request.addresses ?? current.addresses, certificatePath: candidate.certificatePath,
                                privateKeyPath: candidate.privateKeyPath, caPath: candidate.caPath, except: current.name)
        let tested = test(candidate)
        if let error = tested.error {
            throw ControlError(.unreachable, "\(current.name) as modified failed its test, so nothing was changed: \(error)",
                               refusal: .keyServerTestFailed)
        }
        // The same server, seen through the new settings: everything it holds for the array is there.
        guard let missing = keys.missingObjects(on: candidate, objects) else {
            throw ControlError(.unreachable, "\(current.name) as modified could not be asked for the array's objects, so nothing was changed",
                               refusal: .keyServerTestFailed)
        }
        guard missing.isEmpty else {
            throw ControlError(.badRequest, "\(current.name) as modified does not hold \(missing.joined(separator: "; ")), so nothing was changed",
                               fix: "check that the new addresses reach the same key server (cluster) and the new identity is the same client there",
                               refusal: .keyServerTestFailed)
        }
        do { try store.updateKeyServer(candidate) } catch { throw ControlError(error) }
        recordCertificates(of: candidate, store: store, unless: current)
        let changed = [request.addresses.map { "addresses \($0.joined(separator: ", "))" }, request.certificatePath.map { "client certificate \($0)" },
                       request.privateKeyPath.map { "private key \($0)" }, request.caPath.map { "CA \($0)" },
                       request.verifyServerName.map { $0 ? "server name verified" : "server name not verified" }].compactMap { $0 }
        let note = "\(current.name): \(changed.joined(separator: ", ")); tested (\(tested.tls ?? "TLS")) and holding the array's \(objects.count) object(s)"
        audit(store, "keyserver modify", target: current.name, outcome: "done; \(note)")
        var report = try keyServerShow()
        report.note = note
        return report
    }

    /// Removes a key server, unless a live key generation or the RDL token could then no longer
    /// be put together from the servers that remain (a full copy on one of them, or as many
    /// shares as the threshold) — that removal is refused, naming what would be stranded. The
    /// objects the removed server held for the array are then destroyed there when it can be
    /// reached, else listed for the operator.
    public func keyServerRemove(name: String) throws(ControlError) -> KeyServerReport {
        try keyServerRemove(names: [name])
    }

    /// Several servers at once, checked as a set: refused unless every live generation and the
    /// token can still be put together from the servers left after all of them go.
    public func keyServerRemove(names: [String]) throws(ControlError) -> KeyServerReport {
        guard !names.isEmpty, Set(names).count == names.count else {
            throw ControlError(.badRequest, "name the key servers to remove, each once")
        }
        let store = try openState(.write)
        let servers: [StoredKeyServer]
        var held: [String: [KeyLocation]] = [:]
        do {
            servers = try store.keyServers()
            let known = Set(servers.map(\.name))
            if let unknown = names.first(where: { !known.contains($0) }) {
                throw ControlError(.badRequest, "no key server named \(unknown); nothing was changed",
                                   fix: servers.isEmpty ? "none is configured" : "one of: \(servers.map(\.name).joined(separator: ", "))")
            }
            let leaving = Set(names)
            let remaining = known.subtracting(leaving)
            let threshold = try store.keyShareThreshold()
            let rdl = try store.rdl()
            var stranded: [String] = []
            var objects: [KeyLocation] = []
            for generation in try store.generations() where generation.state == .active || generation.state == .pending {
                let locations = generation.keyLocations
                objects += locations.filter { $0.server.map(leaving.contains) == true }
                if generation.provider == KeyProviderKind.kmip.rawValue,
                   let short = Self.shortfall(locations, remaining: remaining, threshold: threshold) {
                    stranded.append("key generation \(generation.keyID) (\(short))")
                }
                if let tokenID = generation.tokenID, let rdl {
                    let tokenLocations = KeyLocation.parse(rdl.tokenLocations)
                    objects += tokenLocations.filter { $0.server.map(leaving.contains) == true && !objects.contains($0) }
                    if let short = Self.shortfall(tokenLocations, remaining: remaining, threshold: rdl.tokenThreshold) {
                        stranded.append("the Rapid Data Locking token \(tokenID) (\(short))")
                    }
                }
            }
            guard stranded.isEmpty else {
                throw ControlError(.badRequest, "removing \(names.joined(separator: " and ")) would strand \(stranded.joined(separator: " and ")): nothing was changed",
                                   fix: "add another key server first (`sedlock keyserver add`), which receives the keys, or rekey to fewer shares",
                                   refusal: .removalStrands)
            }
            for location in objects { if let server = location.server { held[server, default: []].append(location) } }
            // One at a time is safe: each step leaves more than the set's removal does.
            for name in names { try store.removeKeyServer(name: name) }
        } catch {
            throw ControlError(error)
        }
        let notes = names.map { name in "\(name): " + destroyObjects(held[name] ?? [], on: servers.first { $0.name == name }) }
        let note = notes.joined(separator: "; ")
        audit(store, "keyserver remove", target: names.joined(separator: " "), outcome: "done; \(note)")
        var report = try keyServerShow()
        report.note = note
        return report
    }

    /// Why `locations` could not be put together from `remaining` servers (nil when they can):
    /// a full copy needs one holder left, shares need `threshold` of them.
    static func shortfall(_ locations: [KeyLocation], remaining: Set<String>, threshold: Int?) -> String? {
        let shares = locations.contains { if case .keyServerShare = $0 { return true } else { return false } }
        let needed = shares ? max(1, threshold ?? 1) : 1
        let left = Set(locations.compactMap(\.server)).intersection(remaining).count
        guard left < needed else { return nil }
        return shares ? "\(left) of the \(needed) shares it needs would be left" : "no copy would be left on a configured server"
    }

    /// Revokes and destroys `objects` on the server just removed; says what was done or what is left there.
    private func destroyObjects(_ objects: [KeyLocation], on server: StoredKeyServer?) -> String {
        guard let server, !objects.isEmpty else { return "it held nothing of this array's" }
        let left = keys.destroy(objects.compactMap(\.objectID), on: server, message: "sedlock: key server removed from the array")
        if left.isEmpty { return "the \(objects.count) object(s) it held for this array were destroyed there" }
        return "\(server.name) could not destroy object(s) \(left.keys.sorted().map { String($0.prefix(64)) }.joined(separator: ", ")); destroy them on the server by hand"
    }

    public func keyServerShow() throws(ControlError) -> KeyServerReport {
        let store = try openState(.read)
        do {
            return KeyServerReport(servers: try store.keyServers().map(Self.entry))
        } catch { throw ControlError(error) }
    }

    /// Each configured server as last tested: from the key-server monitor's latest results in
    /// sedlockd (a read never opens a connection), tested now otherwise.
    public func keyServerStatus() throws(ControlError) -> KeyServerReport {
        guard configuration.readsFromMonitors else { return try probeKeyServers() }
        let store = try openState(.read)
        do { return KeyServerReport(servers: try store.keyServers().map { keys.health.latest(for: Self.entry($0)) }) } catch {
            throw ControlError(error)
        }
    }

    /// The key-server monitor: each configured server tested as the boot service would reach
    /// it (bounded by the command timeout); a failing server raises KmipServerFault, a passing
    /// one clears it; the results are kept for reads.
    public func probeKeyServers() throws(ControlError) -> KeyServerReport {
        let store = try openState(.write)
        let servers: [StoredKeyServer]
        do { servers = try store.keyServers() } catch { throw ControlError(error) }
        let objects = (try? keys.objectsOnKeyServers(store)) ?? []
        var faults: [StoredFault] = []
        let report = KeyServerReport(servers: servers.map { server in
            var entry = test(server)
            guard entry.reachable == true else {
                faults.append(fault("KmipServerFault", "critical", server.name,
                                    action: "check the server is up and reachable, trusts this client's certificate, and answers KMIP",
                                    detail: entry.error ?? "the test failed"))
                return entry
            }
            // Reachable: it must still hold, Active, every object the array keeps on it.
            if let missing = keys.missingObjects(on: server, objects), !missing.isEmpty {
                entry.error = "the required key is unavailable: " + missing.joined(separator: "; ")
                faults.append(fault("KmipServerFault", "critical", server.name,
                                    action: "restore the object on the key server (or reactivate it), or remove the server and add it again "
                                        + "so that it receives the keys (`sedlock keyserver remove`, `sedlock keyserver add`)",
                                    detail: entry.error ?? ""))
            }
            return entry
        })
        keys.health.record(report.servers)
        recordFaults(store, faults, scope: ["KmipServerFault"], objects: Set(report.servers.map(\.name)))
        return report
    }

    /// Loads the keytable with the keys of every live generation (and their RDL token), verified,
    /// as sedlockd does when it starts: from then on it can lock and unlock on demand even while
    /// key servers are away, as NetApp's key managers and Pure's RDL keep data available until a
    /// restart. Nothing is presented to any drive; what cannot be had now is named.
    public func loadKeytable() throws(ControlError) -> [String] {
        let store = try openState(.write)
        do {
            let live = try store.generations().filter { $0.state == .active || $0.state == .pending }
            let keys = try loadKeys(generationIDs: Set(live.compactMap(\.id)), drives: try store.drives(), store: store)
            return keys.values.compactMap(\.reason)
        } catch {
            throw ControlError(error)
        }
    }

    /// The key IDs each server holds (SecretData named by a key ID), marked when the keytable lacks
    /// them; the keytable is first loaded with the keys of the state's generations.
    public func keyServerQuery() throws(ControlError) -> KeyServerReport {
        let store = try openState(.read)
        let servers: [StoredKeyServer]
        let generations: [StoredKeyGeneration]
        do {
            servers = try store.keyServers()
            generations = try store.generations()
            // sedlockd fills its keytable in the background; a one-shot run loads it here.
            if !configuration.readsFromMonitors {
                _ = try loadKeys(generationIDs: Set(generations.filter { $0.state != .destroyed }.compactMap(\.id)),
                                 drives: try store.drives(), store: store)
            }
        } catch {
            throw ControlError(error)
        }
        let held = Set(keytable.keyIDs)
        return KeyServerReport(servers: servers.map { server in
            // One live question to a server at a time, however many readers ask.
            keys.health.oneAtATime(server.name) { heldKeys(on: server, keytable: held) } ?? {
                var busy = Self.entry(server)
                busy.error = "a query of \(server.name) is in flight already; ask again in a moment"
                return busy
            }()
        })
    }

    /// The SecretData objects named by a key ID that `server` holds.
    private func heldKeys(on server: StoredKeyServer, keytable held: Set<String>) -> KeyServerReport.Server {
        var entry = Self.entry(server)
        do throws(KeyServerError) {
            entry.keys = try keys.pool(server).read { (client) throws(KeyServerError) -> [KeyServerReport.HeldKey] in
                try client.negotiateVersion()
                var keys: [KeyServerReport.HeldKey] = []
                for id in try client.locate([.objectType(.secretData)]) {
                    var keyID: String?
                    var tag = ""
                    for attribute in try client.getAttributes(id, names: ["Name", "Object Group"]) {
                        switch attribute {
                        case .name(let value) where UUID(uuidString: value) != nil: keyID = value.lowercased()
                        case .objectGroup(let value): tag = value
                        default: break
                        }
                    }
                    if let keyID { keys.append(.init(keyID: keyID, tag: tag, inKeytable: held.contains(keyID))) }
                }
                return keys.sorted { $0.keyID < $1.keyID }
            }
            entry.reachable = true
        } catch {
            entry.reachable = false
            entry.error = error.description
        }
        entry.checkedAt = time.wallTime
        return entry
    }

    /// The state's key generations and whether the keytable holds each.
    public func keysList() throws(ControlError) -> KeysReport {
        let store = try openState(.read)
        do {
            let held = Set(keytable.keyIDs)
            return KeysReport(keys: try store.generations().map {
                KeysReport.Key(keyID: $0.keyID, tag: $0.tag, state: $0.state.rawValue, provider: $0.provider,
                               inKeytable: held.contains($0.keyID))
            })
        } catch { throw ControlError(error) }
    }

    /// `--all`: rebuilds the keytable from the key servers, dropping keys none of them holds any
    /// more (the only way besides a restart). `--server S`: adds what that server holds.
    public func keysRestore(_ request: KeysRestoreRequest) throws(ControlError) -> KeysReport {
        guard request.all != (request.server != nil) else {
            throw ControlError(.badRequest, "restore takes --all or --server NAME")
        }
        let configured: [StoredKeyServer]
        do { configured = try openState(.read).keyServers() } catch { throw ControlError(error) }
        let chosen = request.server.map { name in configured.filter { $0.name == name } } ?? configured
        if let name = request.server, chosen.isEmpty { throw ControlError(.badRequest, "no key server named \(name)") }
        let adopted = try adoptNewerGeneration(recordsOn: chosen, servers: configured, tag: request.keyTag)
        let store = try openState(.read)
        let servers: [StoredKeyServer]
        let generations: [StoredKeyGeneration]
        let drives: [StoredDrive]
        do {
            servers = try store.keyServers()
            generations = try store.generations().filter {
                $0.state != .destroyed && $0.provider == KeyProviderKind.kmip.rawValue && (request.keyTag == nil || $0.tag == request.keyTag)
            }
            drives = try store.drives()
        } catch { throw ControlError(error) }
        let source = keys.keyServers(chosen.isEmpty ? servers : chosen)
        var keys: [KeysReport.Key] = []
        for generation in generations {
            guard let id = generation.id else { continue }
            if request.all { keytable.remove(generation.keyID) }
            var detail: String
            switch source.fetch(keyID: generation.keyID, deadline: Deadline.after(seconds: configuration.commandTimeout, time: time)) {
            case .found(let ak):
                let verified = drives.contains { drive in
                    (try? VerifiedPINs.verify(ak: ak, drive: drive, generationID: id, store: store)) != nil
                }
                let checkable = drives.contains { $0.generationID == id }
                if verified || !checkable {
                    keytable.insert(ak, keyID: generation.keyID)
                    detail = verified ? "loaded and verified" : "loaded (no drive to verify it against)"
                } else {
                    detail = "refused: it does not match the drives' check values"
                }
            case .notHere(let why), .refused(let why):
                detail = "not on \(request.server ?? "any key server"): \(why)"
            }
            if let adopted, adopted.keyID == generation.keyID { detail = adopted.detail + "; " + detail }
            keys.append(KeysReport.Key(keyID: generation.keyID, tag: generation.tag, state: generation.state.rawValue,
                                       provider: generation.provider, inKeytable: keytable.key(generation.keyID) != nil,
                                       detail: detail))
        }
        // A record naming an unknown generation that was not adopted: said, with why.
        if let adopted, !keys.contains(where: { $0.keyID == adopted.keyID }) { keys.append(adopted) }
        return KeysReport(keys: keys)
    }

    // MARK: Helpers

    static func entry(_ server: StoredKeyServer) -> KeyServerReport.Server {
        KeyServerReport.Server(name: server.name, addresses: server.addresses, certificatePath: server.certificatePath,
                               caPath: server.caPath)
    }

    /// TLS handshake with the client identity, authentication, and a Locate, on each cluster member in turn.
    func test(_ server: StoredKeyServer) -> KeyServerReport.Server {
        var entry = Self.entry(server)
        switch keys.probe(server) {
        case .success(let tested):
            entry.tls = tested.tls
            entry.roundTripSeconds = tested.roundTripSeconds
            entry.reachable = true
        case .failure(let error):
            entry.reachable = false
            entry.error = error.description
        }
        entry.checkedAt = time.wallTime
        return entry
    }
}
