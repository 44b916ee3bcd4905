import Keys
import Platform
import SecurityTransport
import TCGStorage

/// An open session with one security provider, authenticated as one authority (or Anybody).
public final class OpalSession {
    let channel: ComChannel
    public let securityProvider: UID
    public let authority: UID
    /// Opal names columns by number; Enterprise by name, with its own Get and Set.
    public let family: DriveFamily
    let tsn: UInt32
    let hsn: UInt32
    private var sequence: UInt32 = 0
    private(set) var isOpen = true

    private init(channel: ComChannel, securityProvider: UID, authority: UID, family: DriveFamily, tsn: UInt32, hsn: UInt32) {
        self.channel = channel
        self.securityProvider = securityProvider
        self.authority = authority
        self.family = family
        self.tsn = tsn
        self.hsn = hsn
    }

    /// StartSession → SyncSession. On Opal `credential` is presented as the host challenge; on
    /// Enterprise, whose StartSession takes no credential, by the Authenticate method in the new
    /// session (a refused PIN ends the session and is NOT_AUTHORIZED, as on Opal).
    static func start(channel: ComChannel, securityProvider: UID, authority: UID, credential: Secret?,
                      write: Bool, family: DriveFamily) throws(OpalError) -> OpalSession {
        let session = try startSession(channel: channel, securityProvider: securityProvider, authority: authority,
                                       credential: family == .enterprise ? nil : credential, write: write, family: family)
        guard family == .enterprise, authority != .anybody else { return session }
        do { try session.authenticate(credential) } catch {
            session.close()
            throw error
        }
        return session
    }

    /// ThisSP.Authenticate [ Authority, Challenge = PIN ] (Enterprise §10.3.3.4): False is a
    /// refused PIN, which the drive has counted as a try.
    private func authenticate(_ credential: Secret?) throws(OpalError) {
        let operation = "authenticate as \(AuthorityName.of(authority))"
        var pin = credential?.copyBytes() ?? []
        defer { pin.wipe() }
        let values: [TCGValue]
        do {
            values = try call(.thisSP, MethodID.enterpriseAuthenticate,
                              [.uid(authority), .named(.bytes(Array("Challenge".utf8)), .bytes(pin))], operation: operation)
        } catch {
            guard case .methodFailed(let status) = error.code, status == .authorityLockedOut else { throw error }
            throw Self.authenticationFailure(status, channel: channel, authority: authority, operation: operation)
        }
        let accepted = values.first?.strictBoolValue ?? values.first?.listValue?.first?.strictBoolValue
        guard let accepted else {
            throw OpalError(.malformedResponse, device: channel.device, operation: operation, "Authenticate returned no Boolean")
        }
        guard accepted else {
            throw Self.authenticationFailure(.notAuthorized, channel: channel, authority: authority, operation: operation)
        }
    }

    private static func startSession(channel: ComChannel, securityProvider: UID, authority: UID, credential: Secret?,
                                     write: Bool, family: DriveFamily) throws(OpalError) -> OpalSession {
        let operation = "start session as \(AuthorityName.of(authority))"
        let hsn = UInt32.random(in: 1...0x7FFF_FFFF)
        var encoded = startSessionCall(hsn: hsn, securityProvider: securityProvider,
                                       authority: family == .enterprise ? .anybody : authority,
                                       credential: credential, write: write)
        defer { encoded.wipe() }
        // SP_BUSY is answered before any credential is checked: another session (often one a
        // crashed host left open) holds the SP. Wait for the drive to time it out, within the
        // command timeout, rather than fail the operation.
        let deadline = Deadline.after(seconds: channel.timeout, time: channel.time)
        var pause: UInt64 = 50_000_000
        var reply: MethodPayload
        while true {
            do { reply = try channel.exchange(encoded, tsn: 0, hsn: 0, sequence: 0, operation: operation) } catch {
                // The drive may have opened the session and its SyncSession been lost on the way:
                // nobody could ever end that session, so reset the ComID's stack.
                if error.code == .timedOut || error.code == .malformedResponse { try? channel.stackReset() }
                throw error
            }
            guard case .call(_, .spBusy) = reply, !deadline.hasPassed else { break }
            channel.time.sleep(nanoseconds: min(pause, deadline.remainingNanoseconds))
            pause = min(pause * 2, 500_000_000)
        }
        guard case .call(let sync, let status) = reply, sync.methodUID == MethodID.syncSession else {
            throw OpalError(.malformedResponse, device: channel.device, operation: operation,
                            "the drive did not answer StartSession with SyncSession")
        }
        guard status == .success else {
            throw authenticationFailure(status, channel: channel, authority: authority, operation: operation)
        }
        guard sync.arguments.count >= 2, sync.arguments[0].unsignedValue == UInt64(hsn),
              let tsn = sync.arguments[1].unsignedValue, tsn != 0, tsn <= UInt64(UInt32.max) else {
            try? channel.stackReset()
            throw OpalError(.malformedResponse, device: channel.device, operation: operation,
                            "SyncSession carries wrong session numbers")
        }
        return OpalSession(channel: channel, securityProvider: securityProvider, authority: authority, family: family,
                           tsn: UInt32(tsn), hsn: hsn)
    }

    /// The encoded StartSession call. The credential's transient copy is shared by the arguments
    /// until they are gone, so it is cleared after them, here, where its buffer is the only one left.
    private static func startSessionCall(hsn: UInt32, securityProvider: UID, authority: UID, credential: Secret?,
                                         write: Bool) -> [UInt8] {
        var challenge = credential?.copyBytes() ?? []
        defer { challenge.wipe() }
        var arguments: [TCGValue] = [.unsigned(UInt64(hsn)), .uid(securityProvider), .bool(write)]
        if authority != .anybody {
            arguments.append(.name(Column.StartSession.hostChallenge, .bytes(challenge)))
            arguments.append(.name(Column.StartSession.hostSigningAuthority, .uid(authority)))
        }
        let encoded = MethodCall(invokingUID: .sessionManager, methodUID: MethodID.startSession, arguments: arguments).encoded()
        arguments = []
        return encoded
    }

    /// A refused StartSession, with the real cause where the drive reports it: a drive that counts
    /// consecutive failed authentications drive-wide (Level 0 feature 0xC0A5) says how close it is
    /// to erasing itself, or that it has — then no PIN, the PSID included, will ever open it.
    static func authenticationFailure(_ status: MethodStatus, channel: ComChannel, authority: UID, operation: String) -> OpalError {
        let plain = OpalError.from(status, device: channel.device, operation: operation)
        guard authority != .anybody, status == .notAuthorized || status == .authorityLockedOut,
              let lifetime = (try? OpalDrive.readDiscovery(channel.transport))?.lifetimeFailures else { return plain }
        if lifetime.erased {
            return OpalError(.authorityLockedOut, device: channel.device, operation: operation,
                             "the drive erased itself for good after \(lifetime.limit) consecutive failed authentications: "
                                + "every media key is gone and it accepts no PIN, the PSID included",
                             fix: "the data cannot be recovered; stop retrying and replace the drive")
        }
        return OpalError(plain.code, device: plain.device, operation: plain.operation,
                         plain.message + " (the drive has counted \(lifetime.consecutiveFailures) consecutive failed authentications; "
                            + "at \(lifetime.limit) it erases itself for good)",
                         fix: plain.fix)
    }

    /// Invokes a method and returns its results, throwing on any non-success status.
    @discardableResult
    public func call(_ invoking: UID, _ method: UID, _ arguments: [TCGValue] = [],
                     operation: String) throws(OpalError) -> [TCGValue] {
        guard isOpen else {
            throw OpalError(.invalidState, device: channel.device, operation: operation, "the session is already closed")
        }
        sequence &+= 1
        var encoded = MethodCall(invokingUID: invoking, methodUID: method, arguments: arguments).encoded()
        defer { encoded.wipe() }
        var delivered = false
        let reply: MethodPayload
        do { reply = try channel.exchange(encoded, tsn: tsn, hsn: hsn, sequence: sequence, operation: operation, delivered: &delivered) } catch {
            // A change the drive received but whose answer was lost may have been made: say so, never "nothing happened".
            guard delivered, MethodID.changingState.contains(method), error.code == .timedOut || error.code == .malformedResponse
                    || { if case .transport = error.code { return true } else { return false } }() else { throw error }
            throw OpalError(.outcomeUnknown, device: channel.device, operation: operation,
                            "the drive received it, but its answer was lost (\(error.message)): it may or may not have been done",
                            fix: "read the drive's state before retrying")
        }
        switch reply {
        case .result(let values, let status):
            guard status == .success else { throw OpalError.fromMethod(status, device: channel.device, operation: operation) }
            return values
        case .call(let call, _) where call.methodUID == MethodID.closeSession:
            isOpen = false
            throw OpalError(.invalidState, device: channel.device, operation: operation,
                            "the drive closed the session (CloseSession): it timed out or was aborted",
                            fix: "retry the operation in a new session")
        case .endOfSession:
            isOpen = false
            throw OpalError(.invalidState, device: channel.device, operation: operation, "the drive ended the session")
        case .call:
            throw OpalError(.malformedResponse, device: channel.device, operation: operation,
                            "the drive answered a method with an unexpected call")
        }
    }

    /// Get a cell block of an object's columns.
    public func get(_ object: UID, columns: ClosedRange<UInt64>, operation: String) throws(OpalError) -> [UInt64: TCGValue] {
        if family == .enterprise { return try enterpriseGet(object, columns: columns, operation: operation) }
        let cells: TCGValue = .list([.name(Column.CellBlock.startColumn, .unsigned(columns.lowerBound)),
                                     .name(Column.CellBlock.endColumn, .unsigned(columns.upperBound))])
        let values = try call(object, MethodID.get, [cells], operation: operation)
        // Opal returns [ [ name=value … ] ]; some drives omit the outer list.
        let row: [TCGValue]
        if values.count == 1, case .list(let inner) = values[0] { row = inner } else { row = values }
        var out: [UInt64: TCGValue] = [:]
        for case .named(let name, let value) in row {
            if let column = name.unsignedValue { out[column] = value }
        }
        return out
    }

    /// Get a byte range of a byte table (MBR, DataStore).
    public func getBytes(_ table: UID, from start: UInt64, count: Int, operation: String) throws(OpalError) -> [UInt8] {
        let cells: TCGValue = .list([.name(Column.CellBlock.startRow, .unsigned(start)),
                                     .name(Column.CellBlock.endRow, .unsigned(start + UInt64(max(1, count)) - 1))])
        let values = try call(table, MethodID.get, [cells], operation: operation)
        guard let bytes = values.first?.bytesValue ?? values.first?.listValue?.first?.bytesValue else {
            throw OpalError(.malformedResponse, device: channel.device, operation: operation, "byte table Get returned no bytes")
        }
        return bytes
    }

    /// Set columns of an object.
    public func set(_ object: UID, _ values: [(UInt64, TCGValue)], operation: String) throws(OpalError) {
        if family == .enterprise { return try enterpriseSet(object, values, operation: operation) }
        let list = TCGValue.list(values.map { .name($0.0, $0.1) })
        try call(object, MethodID.set, [.name(Column.SetParameter.values, list)], operation: operation)
    }

    /// Write bytes into a byte table at `offset`.
    public func setBytes(_ table: UID, at offset: UInt64, _ bytes: [UInt8], operation: String) throws(OpalError) {
        try call(table, MethodID.set, [.name(Column.SetParameter.where, .unsigned(offset)),
                                       .name(Column.SetParameter.values, .bytes(bytes))], operation: operation)
    }

    /// Ends the session (EndOfSession). A TPer that already dropped the session is not an error.
    public func end() throws(OpalError) {
        guard isOpen else { return }
        isOpen = false
        sequence &+= 1
        let reply = try channel.exchange([ControlToken.endOfSession.rawValue], tsn: tsn, hsn: hsn, sequence: sequence,
                                         operation: "end session")
        if case .call(let call, _) = reply, call.methodUID == MethodID.closeSession { return }
        guard reply == .endOfSession else {
            throw OpalError(.malformedResponse, device: channel.device, operation: "end session",
                            "the drive did not acknowledge EndOfSession")
        }
    }

    /// Refuses a locking range the drive does not have (LockingInfo's MaxRanges) before anything is
    /// done to it: a Set on a missing range comes back NOT_AUTHORIZED, which reads like a wrong PIN.
    public func requireRange(_ range: Int, operation: String) throws(OpalError) {
        guard range != 0 else { return }
        let info = try get(family.lockingInfo, columns: Column.LockingInfo.maxRanges...Column.LockingInfo.maxRanges, operation: "read LockingInfo")
        let maxRanges = Int(clamping: info[Column.LockingInfo.maxRanges]?.unsignedValue ?? 0)
        guard range >= 1 && range <= maxRanges else {
            throw OpalError(.noSuchObject, device: channel.device, operation: operation,
                            "the drive has no locking range \(range): its ranges are 0 (global) to \(maxRanges)",
                            fix: "choose a range from 0 to \(maxRanges) (`sedlock drive ranges` lists them)")
        }
    }

    /// Refuses `byteCount` bytes for a byte table (MBR, DataStore) that cannot hold them, before
    /// anything is written: its size is column Rows of the Table table's row for it, as the
    /// kernel reads it. A drive that does not let this session read the size is not refused here.
    public func requireFits(_ byteCount: Int, in table: UID, what: String, operation: String) throws(OpalError) {
        let size: UInt64
        do {
            guard let rows = try get(.tableTableRow(describing: table), columns: 7...7, operation: "read the \(what) size")[7]?
                .unsignedValue else { return }
            size = rows
        } catch {
            // A drive that does not let this session read the size (refused or failed): not refused here.
            if error.code == .notAuthorized { return }
            if case .methodFailed = error.code { return }
            throw error
        }
        guard UInt64(byteCount) <= size else {
            throw OpalError(.doesNotFit, device: channel.device, operation: operation,
                            "the image is \(byteCount) bytes and the drive's \(what) holds \(size); nothing was written",
                            fix: "use an image of at most \(size) bytes")
        }
    }

    /// Marks the session closed without telling the drive (after Revert, the TPer drops it itself).
    func abandon() { isOpen = false }

    /// Ends the session on an error path: EndOfSession, and where the drive does not acknowledge
    /// it (the reply that failed may still be on its way, or lost), a ComID stack reset, so that
    /// no session of ours keeps the SP busy after we have given up on it.
    func close() {
        guard isOpen else { return }
        do { try end() } catch {
            try? channel.stackReset()
        }
    }
}

/// Human names for authorities in messages.
public enum AuthorityName {
    public static func of(_ uid: UID) -> String {
        switch uid {
        case .anybody: return "Anybody"
        case .sid: return "SID"
        case .psid: return "PSID"
        default:
            for n in 1...4 where uid == UID.lockingAdmin(n) { return "Admin\(n)" }
            for n in 1...8 where uid == UID.user(n) { return "User\(n)" }
            if uid == .eraseMaster { return "EraseMaster" }
            if let n = uid.bandMasterIndex { return "BandMaster\(n)" }
            return "authority \(uid)"
        }
    }
}
