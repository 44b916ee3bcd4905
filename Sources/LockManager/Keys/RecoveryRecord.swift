import ControlAPI
import Foundation
import Keys
import KMIP
import LockState
import Platform

/// What a new host needs, besides the key, to take over an array whose state directory is lost:
/// for one key generation, each drive's identity and check values — nothing secret (a check value
/// is an HMAC of a PIN, not a PIN). Kept on every key server beside the key, as SecretData named
/// `sedlock-recovery:KEY-ID` in the key's Object Group, replaced whenever the drives change.
struct RecoveryRecord: Codable, Sendable {
    static let version = 1
    static let namePrefix = "sedlock-recovery:"

    struct Drive: Codable, Sendable {
        var identity: String
        var address: String
        var bus: String
        var model: String
        var serial: String
        var tryLimit: Int?
        /// Authority ("SID", "Admin1", "User1") → check value, hex.
        var checkValues: [String: String]
    }

    var version = RecoveryRecord.version
    /// When this record was put on the servers (the system clock): of several, the newest tells
    /// the generation the drives hold.
    var publishedAt = Date()
    var keyID: String
    var tag: String
    var createdAt: Date
    /// Where the generation's AK is kept: "kmip" (on the servers, as a key or as shares), "local"
    /// or "clevis" (a file on the host: the servers cannot give it, and a recover says so).
    /// Absent in records of older versions, which were all "kmip".
    var provider: String?
    /// The key servers' k of n, when the AK is kept as shares.
    var threshold: Int?
    /// The RDL security token the PINs also need, when under RDL, and its settings.
    var tokenID: String?
    var tokenThreshold: Int?
    var rdlServer: String?
    var lockOnLoss: Bool?
    var drives: [Drive]
    /// A rekey under way when the record was published (written before any drive moves): the
    /// generation the drives are moving to, so that a host lost in the middle of it can finish it.
    var next: NextKey?

    struct NextKey: Codable, Sendable {
        var keyID: String
        var tag: String
        var createdAt: Date
        var threshold: Int?
        var tokenID: String?
        /// Drive identity → authority → check value (hex) under the new generation.
        var checkValues: [String: [String: String]]
    }

    var name: String { Self.namePrefix + keyID }

    /// Where the key is kept when the key servers do not hold it ("in a local key file", "sealed
    /// by clevis"); nil when they do.
    var keptOnHost: String? {
        switch provider.flatMap(KeyProviderKind.init(rawValue:)) {
        case .local?: return "in a local key file"
        case .clevis?: return "sealed by clevis in a file"
        case .kmip?, nil: return nil
        }
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .secondsSince1970
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// A record read back from a key server, or nil when the bytes are not one (never trusted
    /// further than the check values it lets sedlock verify a key against).
    static func decode(_ bytes: [UInt8]) -> RecoveryRecord? {
        guard bytes.count < 4 << 20 else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        guard let record = try? decoder.decode(RecoveryRecord.self, from: Data(bytes)), record.version == version,
              UUID(uuidString: record.keyID) != nil else { return nil }
        return record
    }
}

extension KeyService {
    /// The recovery record of `generation` as the state has it now; with `next`, the rekey to it
    /// that is under way.
    func recoveryRecord(for generation: StoredKeyGeneration, next: StoredKeyGeneration? = nil,
                        store: any StateStore) throws(StateError) -> RecoveryRecord? {
        guard let id = generation.id else { return nil }
        let all = try store.drives()
        var drives: [RecoveryRecord.Drive] = []
        for drive in all where drive.generationID == id {
            guard let driveID = drive.id else { continue }
            drives.append(.init(identity: drive.identity, address: drive.address, bus: drive.bus, model: drive.model,
                                serial: drive.serial, tryLimit: drive.tryLimit,
                                checkValues: try Self.checkValues(driveID: driveID, generationID: id, store: store)))
        }
        let rdl = generation.tokenID == nil ? nil : try store.rdl()
        var record = RecoveryRecord(keyID: generation.keyID, tag: generation.tag, createdAt: generation.createdAt,
                                    provider: generation.provider, threshold: try store.keyShareThreshold(), tokenID: generation.tokenID,
                                    tokenThreshold: rdl?.tokenThreshold, rdlServer: rdl?.server, lockOnLoss: rdl?.lockOnLoss,
                                    drives: drives)
        if let next, let nextID = next.id {
            var values: [String: [String: String]] = [:]
            for drive in all {
                guard let driveID = drive.id else { continue }
                let held = try Self.checkValues(driveID: driveID, generationID: nextID, store: store)
                if !held.isEmpty { values[drive.identity] = held }
            }
            record.next = .init(keyID: next.keyID, tag: next.tag, createdAt: next.createdAt, threshold: try store.keyShareThreshold(),
                                tokenID: next.tokenID, checkValues: values)
        }
        return record
    }

    /// One drive's check values under one generation: authority → hex.
    private static func checkValues(driveID: Int64, generationID: Int64, store: any StateStore) throws(StateError) -> [String: String] {
        var values: [String: String] = [:]
        for authority in PINAuthority.allCases {
            if let value = try store.checkValue(driveID: driveID, generationID: generationID, authority: authority.rawValue) {
                values[authority.rawValue] = value.value.map { String(format: "%02x", $0) }.joined()
            }
        }
        return values
    }

    /// Puts the active generation's recovery record on every key server (the new one registered
    /// before the old one is destroyed); names the servers it could not reach. Also when the
    /// active key is local: the record then says so, and no older record is left to name a
    /// generation the drives have left.
    /// With `next`, the rekey to it that is about to move the drives (published before any does);
    /// without, the rekey the state has unfinished, if any, so a record never forgets one.
    /// With `onlyIfStale`, nothing goes out when this very record already went to these very
    /// servers (the state remembers what it last published everywhere): for commands that change
    /// nothing themselves but follow one a crash may have cut off before it published.
    @discardableResult
    func publishRecoveryRecord(store: any StateStore, next asked: StoredKeyGeneration? = nil, onlyIfStale: Bool = false) -> [String] {
        let unfinished = (try? store.pendingJournals())?.first { $0.kind == .rekey }
        let next = asked ?? unfinished.flatMap { journal in (try? store.generations())?.first { $0.id == journal.toGenerationID } }
        let onServers = { (generation: StoredKeyGeneration) in
            generation.provider == KeyProviderKind.kmip.rawValue || generation.tokenID != nil
        }
        guard let servers = try? store.keyServers(), !servers.isEmpty,
              let active = try? store.generations().first(where: { $0.state == .active }),
              let record = try? recoveryRecord(for: active, next: next.flatMap { onServers($0) ? $0 : nil }, store: store) else { return [] }
        let content = Self.publishedContent(record, servers: servers)
        if onlyIfStale, let published = try? store.publishedRecoveryRecord(), published == content { return [] }
        let bytes = record.encoded()
        let tags = Set(((try? store.generations()) ?? []).map(\.tag)).union([record.tag]).sorted()
        var failed: [String] = []
        for server in servers {
            do throws(KeyServerError) {
                try pool(server).on(server: server.name) { (client) throws(KeyServerError) in
                    try client.negotiateVersion()
                    // Every earlier record of this array (any of its tags), replaced once the new one is in:
                    // a record of a generation the drives have left must not be there to be chosen.
                    var previous: [String] = []
                    for tag in tags {
                        for id in try client.locate([.objectGroup(tag)]) {
                            let names = try client.getAttributes(id, names: ["Name"])
                            if names.contains(where: { if case .name(let n) = $0 { return n.hasPrefix(RecoveryRecord.namePrefix) } else { return false } }) {
                                previous.append(id)
                            }
                        }
                    }
                    let id = try client.registerSecret(Secret(bytes), attributes: [.name(record.name), .objectGroup(record.tag)])
                    try client.activate(id)
                    for old in previous where old != id {
                        try? client.revoke(old, reason: .cessationOfOperation, message: "sedlock: recovery record replaced")
                        try? client.destroy(old)
                    }
                }
            } catch {
                failed.append(server.name)
            }
        }
        // Remembered only once on every server; else the next command that compares sends it again.
        try? store.setPublishedRecoveryRecord(failed.isEmpty ? content : nil)
        return failed
    }

    /// What a published record is compared by: its content without the moment of publishing,
    /// and the servers it went to.
    private static func publishedContent(_ record: RecoveryRecord, servers: [StoredKeyServer]) -> String {
        var timeless = record
        timeless.publishedAt = Date(timeIntervalSince1970: 0)
        let names = servers.map { "\($0.name)=\($0.addresses.joined(separator: ","))" }.sorted()
        return String(decoding: timeless.encoded(), as: UTF8.self) + "\n" + names.joined(separator: "\n")
    }

    /// Every recovery record the servers hold in `tag` (or any tag), newest first.
    func recoveryRecords(on servers: [StoredKeyServer], tag: String?) -> [RecoveryRecord] {
        var found: [String: RecoveryRecord] = [:]
        for server in servers {
            do throws(KeyServerError) {
                let records = try pool(server).on(server: server.name) { (client) throws(KeyServerError) -> [RecoveryRecord] in
                    try client.negotiateVersion()
                    var out: [RecoveryRecord] = []
                    for id in try client.locate(tag.map { [.objectGroup($0)] } ?? [.objectType(.secretData)]) {
                        let names = try client.getAttributes(id, names: ["Name"]).compactMap { attribute -> String? in
                            if case .name(let name) = attribute { return name } else { return nil }
                        }
                        guard names.contains(where: { $0.hasPrefix(RecoveryRecord.namePrefix) }) else { continue }
                        var bytes = try client.get(id).material.copyBytes()
                        defer { bytes.wipe() }
                        if let record = RecoveryRecord.decode(bytes) { out.append(record) }
                    }
                    return out
                }
                for record in records where (found[record.keyID]?.publishedAt ?? .distantPast) < record.publishedAt {
                    found[record.keyID] = record
                }
            } catch {
                continue
            }
        }
        return found.values.sorted { $0.publishedAt > $1.publishedAt }
    }
}
