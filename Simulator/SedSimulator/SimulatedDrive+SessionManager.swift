import Platform
import SimulatorLink
import TCGStorage

/// The session manager (SMUID): Properties, StartSession → SyncSession, and in-session dispatch.
extension SimulatedDrive {
    static let tperProperties: [(String, UInt64)] = [
        ("MaxComPacketSize", UInt64(maxComPacketSize)), ("MaxResponseComPacketSize", UInt64(maxComPacketSize)),
        ("MaxPacketSize", UInt64(maxComPacketSize - 20)), ("MaxIndTokenSize", UInt64(maxComPacketSize - 76)),
        ("MaxPackets", 1), ("MaxSubpackets", 1), ("MaxMethods", 1), ("MaxSessions", UInt64(maximumSessions)),
        // Transactions (StartTransaction/EndTransaction tokens) are not implemented, so none are offered.
        ("MaxAuthentications", 2), ("MaxTransactionLimit", 0), ("DefSessionTimeout", 30000),
        ("MaxSessionTimeout", maximumSessionTimeoutMs), ("MinSessionTimeout", minimumSessionTimeoutMs),
    ]

    /// The SessionTimeout a StartSession may ask for, in milliseconds (one second to one hour).
    static let minimumSessionTimeoutMs: UInt64 = 1000
    static let maximumSessionTimeoutMs: UInt64 = 3_600_000

    /// The host properties a TPer assumes until Properties says otherwise, and the least it
    /// accepts (Core §5.2.2.1.2): a host cannot ask for buffers smaller than these.
    static let hostPropertyMinimums: [String: UInt64] = [
        "MaxComPacketSize": 1024, "MaxResponseComPacketSize": 1024, "MaxPacketSize": 1004, "MaxIndTokenSize": 968,
        "MaxPackets": 1, "MaxSubpackets": 1, "MaxMethods": 1,
    ]

    /// Properties: the TPer's own, then the host's as the TPer will use them — each size the
    /// smaller of what the host offered and what the TPer can do, never below the minimum;
    /// features this TPer lacks (ContinuedTokens, SequenceNumbers, AckNak, Asynchronous) off.
    private func properties(_ call: MethodCall) -> MethodPayload {
        var offered: [(String, UInt64)] = []
        // HostProperties: parameter 0 on Opal; named by its name on Enterprise (§9.2.1 there).
        let hostPropertiesName: TCGValue = isEnterprise ? .bytes(Array("HostProperties".utf8)) : .unsigned(0)
        for argument in call.arguments {
            guard case .named(let name, let list) = argument, name == hostPropertiesName, case .list(let items) = list else {
                return .call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.properties, arguments: []),
                             status: .invalidParameter)
            }
            for case .named(let key, let value) in items {
                guard let key = key.bytesValue, let value = value.unsignedValue else { continue }
                offered.append((String(decoding: key, as: UTF8.self), value))
            }
        }
        let tper = Dictionary(Self.tperProperties, uniquingKeysWith: { a, _ in a })
        var accepted: [(String, UInt64)] = []
        for (name, value) in offered {
            if var minimum = Self.hostPropertyMinimums[name] {
                // Opalite allows no host MaxComPacketSize below its initial assumption (2,048).
                if name == "MaxComPacketSize" { minimum = max(minimum, UInt64(assumedHostComPacketSize)) }
                accepted.append((name, max(minimum, min(value, tper[name] ?? value))))
            } else if ["ContinuedTokens", "SequenceNumbers", "AckNak", "Asynchronous"].contains(name) {
                accepted.append((name, 0))
            }
        }
        if let size = accepted.first(where: { $0.0 == "MaxComPacketSize" })?.1 { hostMaxComPacketSize = Int(size) }
        hostSentProperties = true
        let encode = { (properties: [(String, UInt64)]) in
            TCGValue.list(properties.map { .named(.bytes(Array($0.0.utf8)), .unsigned($0.1)) })
        }
        var results = [encode(Self.tperProperties)]
        if !offered.isEmpty { results.append(.named(hostPropertiesName, encode(accepted))) }
        return .call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.properties, arguments: results), status: .success)
    }

    func sessionManagerCall(_ bytes: [UInt8], comID: UInt16) -> MethodPayload? {
        guard case .call(let call, _)? = try? MethodPayload.decode(bytes), call.invokingUID == .sessionManager else {
            return nil
        }
        switch call.methodUID {
        case MethodID.properties:
            return properties(call)
        case MethodID.startSession:
            return startSession(call, comID: comID)
        default:
            return syncSessionFailure(hsn: 0, .invalidParameter)
        }
    }

    private func syncSessionFailure(hsn: UInt64, _ status: MethodStatus) -> MethodPayload {
        .call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.syncSession, arguments: []), status: status)
    }

    private func startSession(_ call: MethodCall, comID: UInt16) -> MethodPayload {
        let args = call.arguments
        guard args.count >= 3, let hsnValue = args[0].unsignedValue, hsnValue <= UInt64(UInt32.max),
              let spUID = args[1].uidValue, let write = args[2].strictBoolValue else {
            return syncSessionFailure(hsn: 0, .invalidParameter)
        }
        var challenge: [UInt8]?
        var authority: UID?
        var timeoutMs: UInt64?
        for case .named(let name, let value) in args.dropFirst(3) {
            // The Enterprise SSC names SessionTimeout by its name.
            if name.bytesValue == Array("SessionTimeout".utf8) { timeoutMs = value.unsignedValue; continue }
            switch name.unsignedValue {
            case Column.StartSession.hostChallenge: challenge = value.bytesValue
            case Column.StartSession.hostSigningAuthority: authority = value.uidValue
            case Column.StartSession.sessionTimeout: timeoutMs = value.unsignedValue
            default: break
            }
        }
        guard let sp = SecurityProvider(spUID), spUID != (isEnterprise ? .lockingSP : .enterpriseLockingSP) else {
            return syncSessionFailure(hsn: hsnValue, .invalidParameter)
        }
        // Enterprise §9.2.2.2: HostSessionID, SPID and Write only (authentication is the
        // Authenticate method's); anything else is INVALID_PARAMETER.
        if isEnterprise && (challenge != nil || authority != nil) { return syncSessionFailure(hsn: hsnValue, .invalidParameter) }
        if sp == .locking && record.lockingLifeCycle != .manufactured {
            return syncSessionFailure(hsn: hsnValue, .invalidParameter)
        }
        if faults.busySessions > 0 {
            faults.busySessions -= 1
            return syncSessionFailure(hsn: hsnValue, .spBusy)
        }
        if sessions.count >= Self.maximumSessions { return syncSessionFailure(hsn: hsnValue, .noSessionsAvailable) }
        if write && sessions.values.contains(where: { $0.sp == sp && $0.write }) {
            return syncSessionFailure(hsn: hsnValue, .spBusy)
        }
        // A SessionTimeout outside MinSessionTimeout…MaxSessionTimeout fails the StartSession.
        let defaultMs = UInt64(record.settings.sessionTimeoutSeconds * 1000)
        let milliseconds = timeoutMs ?? defaultMs
        guard timeoutMs == nil || (Self.minimumSessionTimeoutMs...Self.maximumSessionTimeoutMs).contains(milliseconds) else {
            return syncSessionFailure(hsn: hsnValue, .invalidParameter)
        }
        let timeout = milliseconds.multipliedReportingOverflow(by: 1_000_000).overflow ? UInt64.max : milliseconds * 1_000_000
        var session = DriveSession(comID: comID, tsn: nextTSN, hsn: UInt32(hsnValue), sp: sp, write: write,
                                   lastActivity: clock.uptimeNanoseconds, timeoutNanoseconds: max(timeout, 1_000_000_000))
        if let authority, authority != .anybody {
            let outcome = authenticate(authority, in: sp, challenge: challenge ?? [])
            guard case .success(let lockingKey) = outcome else {
                if case .failure(let status) = outcome { return syncSessionFailure(hsn: hsnValue, status) }
                return syncSessionFailure(hsn: hsnValue, .notAuthorized)
            }
            session.authorities.insert(authority)
            session.presentedPINs[authority] = challenge ?? []
            if let lockingKey { session.lockingKey = lockingKey }
        }
        sessions[session.tsn] = session
        nextTSN = nextTSN &+ 1
        if nextTSN == 0 { nextTSN = 0x100 }
        return .call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.syncSession,
                                arguments: [.unsigned(hsnValue), .unsigned(UInt64(session.tsn))]), status: .success)
    }

    /// The answer to a session's packet, and whether EndOfSession follows it in the same
    /// subpacket (quirk `method-then-end-of-session`).
    struct SessionReply {
        var payload: MethodPayload
        var endOfSessionFollows = false
    }

    /// A packet for an open session: a method call, or EndOfSession.
    func sessionCall(tsn: UInt32, hsn: UInt32, comID: UInt16, _ bytes: [UInt8]) -> SessionReply? {
        guard var session = sessions[tsn], session.hsn == hsn, session.comID == comID else {
            // The TPer aborted (or timed out) this session: tell the host with CloseSession.
            return SessionReply(payload: .call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.closeSession,
                                                          arguments: [.unsigned(UInt64(hsn)), .unsigned(UInt64(tsn))]),
                                               status: .success))
        }
        var endsAfterCall = false
        var decoded = try? MethodPayload.decode(bytes)
        if decoded == nil, has(.methodThenEndOfSession), let method = Self.methodBeforeEndOfSession(bytes),
           let call = try? MethodPayload.decode(method), case .call = call {
            decoded = call
            endsAfterCall = true
        }
        guard let payload = decoded else {
            return SessionReply(payload: .result([], status: .invalidParameter))
        }
        switch payload {
        case .endOfSession:
            sessions[tsn] = nil
            return SessionReply(payload: .endOfSession)
        case .result:
            return SessionReply(payload: .result([], status: .invalidParameter))
        case .call(let call, let hostStatus):
            session.lastActivity = clock.uptimeNanoseconds
            // The host aborted its own call (a non-zero status in its status list): not executed.
            guard hostStatus == .success else {
                sessions[tsn] = endsAfterCall ? nil : session
                return SessionReply(payload: .result([], status: .fail), endOfSessionFollows: endsAfterCall)
            }
            sessions[tsn] = session
            let outcome = execute(call, session: &session)
            // Revert and RevertSP end the session from the TPer side.
            if outcome.endsSession || endsAfterCall {
                sessions[tsn] = nil
            } else if sessions[tsn] != nil {
                sessions[tsn] = session
            }
            return SessionReply(payload: .result(outcome.values, status: outcome.status),
                                endOfSessionFollows: endsAfterCall && !outcome.endsSession)
        }
    }
}

/// What a method did: its results and status, and whether the TPer closes the session afterwards.
struct MethodOutcome {
    var values: [TCGValue] = []
    var status: MethodStatus = .success
    var endsSession = false

    static func fail(_ status: MethodStatus) -> MethodOutcome { MethodOutcome(status: status) }
    static let ok = MethodOutcome()
}
