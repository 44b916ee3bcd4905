import Platform
import Foundation
import TCGStorage

/// One simulated Opal 2 self-encrypting drive: the TPer (session manager, Admin SP, Locking SP),
/// its persistent state, and its encrypted media.
///
/// All entry points take the drive's lock, so a drive can be shared by many host connections.
public final class SimulatedDrive: @unchecked Sendable {
    static let baseComID: UInt16 = 0x1000
    static let maximumSessions = 4
    /// What the TPer advertises in Properties; responses larger than a host's buffer use OutstandingData.
    static let maxComPacketSize = 65536

    public let directory: URL
    let lock = NSLock()
    var record: DriveRecord
    let media: SparseFile
    let mbrTable: SparseFile
    let dataStore: SparseFile

    // Volatile state: lost on power cycle exactly as on hardware.
    var sessions: [UInt32: DriveSession] = [:]
    var nextTSN: UInt32 = 0x100
    /// Per ComID: the response IF-RECV will take next.
    var pendingResponses: [UInt16: PendingResponse] = [:]
    /// Per ComID: the answer to the last ComID management request (protocol 0x02), until IF-RECV takes it.
    var pendingComIDResponses: [UInt16: [UInt8]] = [:]
    var mediaCiphers: [Int: XTSCipher] = [:]
    /// PIN stretches already computed (salt ‖ SHA-256 of the PIN → verifier and KEK), so a host
    /// that authenticates often does not pay PBKDF2 each time; volatile, bounded, like a drive's
    /// own hardware KDF being fast. Guarded by `lock` like the rest of the drive.
    var stretchCache: [Data: DriveCrypto.Stretched] = [:]
    /// The host's MaxComPacketSize as negotiated by Properties (Core's default until then); an
    /// answer that would not fit is replaced by RESPONSE_OVERFLOW.
    var hostMaxComPacketSize = 1024
    /// Whether the host has exchanged Properties since the last reset (quirk host-packet-size-unenforced).
    var hostSentProperties = false
    /// The host's MaxComPacketSize a TPer assumes until Properties says otherwise: Core's 1,024
    /// bytes, and 2,048 on Opalite (its SSC raises the initial assumption).
    var assumedHostComPacketSize: Int { (record.settings.ssc ?? .opal) == .opalite ? 2048 : 1024 }
    var blockSIDActive = false
    var blockSIDClearsOnHardwareReset = false
    public internal(set) var faults = FaultPlan()
    /// The clock idle sessions expire by (SessionTimeout): the system's, or a test's manual one,
    /// so that a test lets a timeout pass without sleeping.
    var clock: any TimeSource = SystemTime()

    struct PendingResponse {
        var bytes: [UInt8]
        var pollsBeforeReady: Int
    }

    var stateURL: URL { directory.appendingPathComponent("state.json") }

    /// Opens a drive directory and powers the drive on.
    public init(directory: URL) throws(SimulatorError) {
        self.directory = directory
        let stateURL = directory.appendingPathComponent("state.json")
        let data: Data
        do { data = try Data(contentsOf: stateURL) } catch {
            throw SimulatorError.invalidArray("cannot read \(stateURL.path): \(error.localizedDescription)")
        }
        do { record = try JSONDecoder().decode(DriveRecord.self, from: data) } catch {
            throw SimulatorError.invalidArray("\(stateURL.path) is not a drive state file: \(error)")
        }
        let identity = record.identity
        media = try SparseFile(url: directory.appendingPathComponent("media.img"),
                               size: UInt64(identity.blockSize) * identity.blockCount)
        mbrTable = try SparseFile(url: directory.appendingPathComponent("mbr.img"), size: UInt64(record.settings.mbrTableSize))
        dataStore = try SparseFile(url: directory.appendingPathComponent("datastore.img"),
                                   size: UInt64(record.settings.dataStoreSize))
        lock.withLock { powerOn() }
    }

    /// Creates a factory-new drive in `directory`.
    public static func manufacture(in directory: URL, identity: DriveIdentity, settings: DriveSettings) throws(SimulatorError) {
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw SimulatorError.storage("cannot create \(directory.path): \(error.localizedDescription)")
        }
        guard chmod(directory.path, 0o700) == 0 else {
            throw SimulatorError.storage("cannot restrict \(directory.path) to its owner: \(errnoText())")
        }
        let msid = Array(identity.msid.utf8)
        let psid = Array(identity.psid.utf8)
        var ranges: [RangeRecord] = []
        let extraRanges = (settings.ssc ?? .opal).hasExtraRanges ? max(1, settings.lockingRanges) : 0
        for _ in 0...extraRanges { ranges.append(try Self.factoryRange()) }
        let record = DriveRecord(
            identity: identity, settings: settings,
            sid: try Self.credential(pin: msid, settings: settings),
            psid: try Self.credential(pin: psid, settings: settings),
            // Opalite's Locking SP has Admin1, User1 and User2 alone.
            lockingAdmins: Self.factoryAuthorities(count: settings.ssc == .opalite ? 1 : 4, settings: settings),
            // One user per range at least, so every range can be handed to a user in Single User Mode.
            lockingUsers: Self.factoryAuthorities(count: settings.ssc == .opalite ? 2 : max(8, ranges.count), settings: settings),
            ranges: ranges)
        var made = record
        if settings.ssc == .enterprise { try Self.enterpriseFactoryState(&made) }
        try Self.save(made, to: directory.appendingPathComponent("state.json"))
    }

    static func credential(pin: [UInt8], settings: DriveSettings) throws(SimulatorError) -> CredentialRecord {
        let salt = try DriveCrypto.randomBytes(16)
        let stretched = try DriveCrypto.stretch(pin: pin, salt: salt)
        return CredentialRecord(enabled: true, salt: Data(salt), verifier: Data(stretched.verifier),
                                tryLimit: settings.tryLimit, persistence: settings.triesPersistent)
    }

    static func factoryAuthorities(count: Int, settings: DriveSettings) -> [CredentialRecord] {
        (0..<count).map { _ in
            CredentialRecord(enabled: false, tryLimit: settings.tryLimit, persistence: settings.triesPersistent)
        }
    }

    static func factoryRange() throws(SimulatorError) -> RangeRecord {
        var range = RangeRecord()
        range.openMediaKey = Data(try newMediaKey())
        return range
    }

    static func newMediaKey() throws(SimulatorError) -> [UInt8] {
        while true {
            let key = try DriveCrypto.randomBytes(XTSCipher.keySize)
            // OpenSSL refuses XTS keys whose halves are equal.
            if key[0..<32] != key[32..<64] { return key }
        }
    }

    static func save(_ record: DriveRecord, to url: URL, crashHalfway: Bool = false) throws(SimulatorError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(record) } catch { throw SimulatorError.storage("cannot encode drive state: \(error)") }
        // Fault injection: die like a power loss in the middle of persisting a command's effect.
        let crash: (() -> Void)? = crashHalfway ? { _exit(86) } : nil
        // Atomic against a crash of the simulator (what the crash tests inject), not of the host: a
        // real drive commits its state in firmware in microseconds, and an fsync per command here
        // would make the simulated bus, not the host software, what benchmarks measure.
        do { try AtomicFile.write(Array(data), to: url.path, syncing: false, beforeCommit: crash) } catch {
            throw SimulatorError.storage("cannot save drive state: \(error)")
        }
    }

    /// Persists the record; the crash fault fires here, in the middle of a command.
    func persist() throws(SimulatorError) {
        let crash = faults.crashDuringNextCommand
        try Self.save(record, to: stateURL, crashHalfway: crash)
    }

    public var identity: DriveIdentity { lock.withLock { record.identity } }

    // MARK: Resets

    /// Power-on after a power cycle (also what opening the drive does).
    func powerOn() {
        applyReset(.powerCycle)
    }

    public func powerCycle() throws(SimulatorError) {
        try withLockedPersist { applyReset(.powerCycle) }
    }

    public func hardwareReset() throws(SimulatorError) {
        try withLockedPersist { applyReset(.hardware) }
    }

    func withLockedPersist(_ body: () -> Void) throws(SimulatorError) {
        lock.lock()
        defer { lock.unlock() }
        body()
        try persist()
    }

    /// Applies one reset event's effects on sessions, ranges, MBR, tries and Block SID.
    func applyReset(_ reset: ResetType) {
        sessions.removeAll()
        pendingResponses.removeAll()
        hostMaxComPacketSize = assumedHostComPacketSize
        hostSentProperties = false
        // A listed reset locks each direction whose locking is enabled.
        for i in record.ranges.indices where record.ranges[i].lockOnReset.contains(reset) {
            if record.ranges[i].readLockEnabled { record.ranges[i].readLocked = true }
            if record.ranges[i].writeLockEnabled { record.ranges[i].writeLocked = true }
        }
        if record.mbr.doneOnReset.contains(reset) { record.mbr.done = false }
        let clearsTries = reset == .powerCycle || (reset == .hardware && record.settings.hardwareResetClearsTries)
        if clearsTries {
            forEachCredential { cred in if !cred.persistence { cred.tries = 0 } }
        }
        if reset == .powerCycle || (reset == .hardware && blockSIDClearsOnHardwareReset) {
            blockSIDActive = false
        }
        if reset == .powerCycle {
            mediaCiphers.removeAll()
            for i in record.ranges.indices {
                if let key = record.ranges[i].openMediaKey { mediaCiphers[i] = try? XTSCipher(key: Array(key)) }
            }
        } else {
            for i in record.ranges.indices where isFullyLocked(i) { mediaCiphers[i] = nil }
        }
    }

    func forEachCredential(_ body: (inout CredentialRecord) -> Void) {
        body(&record.sid)
        body(&record.psid)
        for i in record.lockingAdmins.indices { body(&record.lockingAdmins[i]) }
        for i in record.lockingUsers.indices { body(&record.lockingUsers[i]) }
    }

    func isFullyLocked(_ range: Int) -> Bool {
        let r = record.ranges[range]
        return r.readLockEnabled && r.readLocked && r.writeLockEnabled && r.writeLocked
    }

    // MARK: Faults

    public func setFaults(_ plan: FaultPlan) {
        lock.withLock { faults = plan }
    }

    /// Sessions time out by `clock` from now on (a test's `ManualTime`).
    public func useClock(_ clock: any TimeSource) {
        lock.withLock { self.clock = clock }
    }

    // MARK: Media

    public enum MediaError: Error, Sendable, Equatable {
        /// The LBA lies in a locked range (SCSI DATA PROTECT / NVMe Access Denied).
        case dataProtect(range: Int)
        case outOfRange
        case failed(String)
    }

    /// The range an LBA belongs to: the first non-empty range that contains it, else the global range.
    func rangeIndex(of lba: UInt64) -> Int {
        for i in record.ranges.indices.dropFirst() where record.ranges[i].contains(lba) { return i }
        return 0
    }

    var mbrShadowActive: Bool { record.mbr.enable && !record.mbr.done && record.lockingLifeCycle == .manufactured }
    var mbrShadowBlocks: UInt64 { UInt64(record.settings.mbrTableSize / record.identity.blockSize) }

    public func read(lba: UInt64, count: Int) throws(MediaError) -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        let bs = record.identity.blockSize
        guard count >= 0, lba <= record.identity.blockCount, UInt64(count) <= record.identity.blockCount - lba else {
            throw MediaError.outOfRange
        }
        var out: [UInt8] = []
        out.reserveCapacity(count * bs)
        var block = lba
        let end = lba + UInt64(count)
        while block < end {
            if mbrShadowActive && block < mbrShadowBlocks {
                let n = Int(min(end, mbrShadowBlocks) - block)
                do { out += try mbrTable.read(at: block * UInt64(bs), count: n * bs) } catch { throw .failed("\(error)") }
                block += UInt64(n)
                continue
            }
            let r = rangeIndex(of: block)
            let range = record.ranges[r]
            guard !(range.readLockEnabled && range.readLocked), let cipher = mediaCiphers[r] else {
                throw MediaError.dataProtect(range: r)
            }
            // Stay within one range per transform.
            var n = UInt64(1)
            while block + n < end && rangeIndex(of: block + n) == r && !(mbrShadowActive && block + n < mbrShadowBlocks) { n += 1 }
            var data: [UInt8]
            do { data = try media.read(at: block * UInt64(bs), count: Int(n) * bs) } catch { throw .failed("\(error)") }
            // A Pyrite drive keeps the media in clear: the lock is the only protection.
            for s in 0..<Int(n) where record.settings.ssc?.encryptsMedia ?? true {
                let slice = data[(s * bs)..<((s + 1) * bs)]
                // Never-written sectors read as zeros, as deallocated blocks do on real drives.
                if slice.allSatisfy({ $0 == 0 }) { continue }
                var sector = Array(slice)
                do { try cipher.apply(encrypt: false, buffer: &sector, sectorSize: bs, lba: block + UInt64(s)) } catch {
                    throw .failed("\(error)")
                }
                data.replaceSubrange((s * bs)..<((s + 1) * bs), with: sector)
            }
            out += data
            block += n
        }
        return out
    }

    public func write(lba: UInt64, data: [UInt8]) throws(MediaError) {
        lock.lock()
        defer { lock.unlock() }
        let bs = record.identity.blockSize
        guard data.count % bs == 0 else { throw MediaError.failed("write length \(data.count) is not a multiple of \(bs)") }
        let count = UInt64(data.count / bs)
        guard lba <= record.identity.blockCount, count <= record.identity.blockCount - lba else { throw MediaError.outOfRange }
        // Check every block first so a refused write changes nothing.
        for block in lba..<(lba + count) {
            if mbrShadowActive && block < mbrShadowBlocks { throw MediaError.dataProtect(range: 0) }
            let r = rangeIndex(of: block)
            let range = record.ranges[r]
            if (range.writeLockEnabled && range.writeLocked) || mediaCiphers[r] == nil { throw MediaError.dataProtect(range: r) }
        }
        var block = lba
        var offset = 0
        while block < lba + count {
            let r = rangeIndex(of: block)
            var n = UInt64(1)
            while block + n < lba + count && rangeIndex(of: block + n) == r { n += 1 }
            var chunk = Array(data[offset..<(offset + Int(n) * bs)])
            guard let cipher = mediaCiphers[r] else { throw MediaError.dataProtect(range: r) }
            do {
                if record.settings.ssc?.encryptsMedia ?? true { try cipher.apply(encrypt: true, buffer: &chunk, sectorSize: bs, lba: block) }
                try media.write(chunk, at: block * UInt64(bs))
            } catch { throw .failed("\(error)") }
            offset += Int(n) * bs
            block += n
        }
    }
}
