import Keys
import Platform
import SecurityTransport
import TCGStorage

/// A drive reached through a transport, with its identity and Level 0 Discovery read.
/// Compound operations (in `OpalDrive+Operations.swift`) are written as their spec steps.
/// Not Sendable: a drive's sessions are a conversation on one ComID, so one owner at a time
/// drives it (`DriveOwner` in concurrent code).
public final class OpalDrive {
    public let transport: any SecurityTransport
    public let identity: DeviceIdentity
    public let discovery: Level0Discovery
    /// The security subsystem class feature the drive is driven by (Opal's, or Enterprise's).
    public let opal: SSCFeature
    /// How operations written in Opal's terms reach this drive (see `DriveFamily`).
    public let family: DriveFamily
    let channel: ComChannel

    public var device: String { transport.address.description }

    /// Reads identity and discovery; fails with `.unsupportedDrive` when the drive has neither an
    /// Opal-family nor the Enterprise SSC.
    public init(transport: any SecurityTransport, timeout: Double = 10, time: any TimeSource = SystemTime()) throws(OpalError) {
        self.transport = transport
        do { identity = try transport.identify() } catch {
            throw OpalError(error.code == .timedOut ? .timedOut : .transport(error.code),
                            device: transport.address.description, operation: "identify", error.message)
        }
        discovery = try Self.readDiscovery(transport)
        // Pyrite drives are driven as Opal ones (its tables and methods, without media keys);
        // whether to manage a drive that does not encrypt is the caller's decision (`encryptsMedia`).
        // Opalite is Opal with the global range alone (all sedlock uses): driven as Opal too.
        guard let opal = discovery.opal ?? discovery.subsystemClasses.first(where: { $0.kind == .enterprise })
            ?? discovery.subsystemClasses.first(where: { $0.kind == .opalite })
            ?? discovery.subsystemClasses.first(where: { $0.kind == .pyriteV2 || $0.kind == .pyriteV1 }) else {
            throw Self.unsupported(discovery, device: transport.address.description)
        }
        family = opal.kind == .enterprise ? .enterprise : .opal
        guard discovery.tper?.syncSupported ?? false else {
            throw OpalError(.unsupportedDrive, device: transport.address.description, operation: "discovery",
                            "the TPer does not support synchronous communication")
        }
        self.opal = opal
        channel = ComChannel(transport: transport, comID: opal.baseComID, timeout: timeout, time: time)
    }

    /// Whether the drive encrypts its media (Level 0 Discovery's Locking feature): false for
    /// Pyrite, whose locking is the data's only protection.
    public var encryptsMedia: Bool { discovery.locking?.mediaEncryption ?? false }

    /// Why a drive that does not encrypt is not managed unless asked (nothing has been sent to it
    /// but Level 0 Discovery).
    public var unencryptedReason: String {
        "\(opal.kind.name): the drive locks but does not encrypt (no media encryption), so its data would be readable by anyone who takes it out"
    }

    /// Why a drive without an Opal-family or Enterprise SSC is refused; nothing has been sent to
    /// it but Level 0 Discovery.
    static func unsupported(_ discovery: Level0Discovery, device: String) -> OpalError {
        let kinds = discovery.subsystemClasses.map(\.kind)
        let found = kinds.map(\.name).joined(separator: ", ")
        return OpalError(.unsupportedDrive, device: device, operation: "discovery",
                         "the drive reports no Opal-family (Opal, Ruby, Opalite), Enterprise or Pyrite SSC" + (found.isEmpty ? "" : " (it reports \(found))"),
                         fix: "sedlock manages Opal 1 and 2, Ruby, Opalite and Enterprise SSC drives (Pyrite ones for their locking only)")
    }

    /// Level 0 Discovery (protocol 0x01, ComID 0x0001), usable on any drive.
    public static func readDiscovery(_ transport: any SecurityTransport) throws(OpalError) -> Level0Discovery {
        let device = transport.address.description
        let bytes: [UInt8]
        do {
            bytes = try transport.securityProtocolIn(protocolID: 0x01, spSpecific: Level0Discovery.comID,
                                                     allocationLength: Level0Discovery.transferLength)
        } catch {
            if error.code == .illegalRequest {
                throw OpalError(.unsupportedDrive, device: device, operation: "discovery",
                                "the drive does not support TCG security protocol 0x01: \(error.message)")
            }
            throw OpalError(error.code == .timedOut ? .timedOut : .transport(error.code), device: device,
                            operation: "discovery", error.message)
        }
        do { return try Level0Discovery.decode(bytes) } catch {
            throw OpalError(.malformedResponse, device: device, operation: "discovery",
                            "Level 0 Discovery does not parse: \(error)")
        }
    }

    /// Runs `body` in a session and always ends it; a failure to end is reported only if `body` succeeded.
    public func withSession<R>(_ sp: UID, as authority: UID = .anybody, credential: Secret? = nil, write: Bool = false,
                               _ body: (OpalSession) throws(OpalError) -> R) throws(OpalError) -> R {
        let session = try OpalSession.start(channel: channel, securityProvider: sp, authority: authority,
                                            credential: credential, write: write, family: family)
        let result: R
        do { result = try body(session) } catch {
            session.close()
            throw error
        }
        do { try session.end() } catch {
            try? channel.stackReset()
            throw error
        }
        return result
    }

    /// Properties exchange where the drive takes it. Some drives reject Properties and work without
    /// it, so only failures that show the drive cannot communicate at all are thrown.
    public func exchangePropertiesIfSupported() throws(OpalError) {
        do { _ = try exchangeProperties() } catch {
            if error.code == .timedOut || error.code == .malformedResponse { throw error }
            if case .transport = error.code { throw error }
        }
    }

    /// Properties exchange (session manager), which real drives expect before the first session.
    public func exchangeProperties() throws(OpalError) -> [String: UInt64] {
        let hostProperties: TCGValue = .list([
            .named(.bytes(Array("MaxComPacketSize".utf8)), .unsigned(UInt64(ComChannel.initialTransferLength))),
            .named(.bytes(Array("MaxPacketSize".utf8)), .unsigned(UInt64(ComChannel.initialTransferLength - 20))),
            .named(.bytes(Array("MaxIndTokenSize".utf8)), .unsigned(UInt64(ComChannel.initialTransferLength - 76))),
        ])
        // Enterprise SSC names the parameter by its name; Opal by its number (0).
        let parameter: TCGValue = family == .enterprise ? .bytes(Array("HostProperties".utf8)) : .unsigned(0)
        let call = MethodCall(invokingUID: .sessionManager, methodUID: MethodID.properties,
                              arguments: [.named(parameter, hostProperties)])
        let reply = try channel.exchange(call.encoded(), tsn: 0, hsn: 0, sequence: 0, operation: "properties")
        guard case .call(let answer, let status) = reply, answer.methodUID == MethodID.properties else {
            throw OpalError(.malformedResponse, device: device, operation: "properties", "unexpected Properties answer")
        }
        guard status == .success else { throw OpalError.from(status, device: device, operation: "properties") }
        var out: [String: UInt64] = [:]
        for case .named(let name, let value) in answer.arguments.first?.listValue ?? [] {
            if let n = name.bytesValue, let v = value.unsignedValue { out[String(decoding: n, as: UTF8.self)] = v }
        }
        return out
    }
}
