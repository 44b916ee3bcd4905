import Foundation
import KMIPCodec
import SecurityTransport
import SedSimulator
import SimulatorLink
import TCGStorage

/// The decoders that read bytes from outside — a drive's answers, a key server's, a host's
/// requests to the simulator — each fed arbitrary bytes. Any input may be refused with an error;
/// none may trap, hang or read out of bounds (AddressSanitizer watches the fuzzing build).
enum FuzzTarget: String, CaseIterable {
    /// ComPacket/Packet/SubPacket framing and the tokens inside.
    case tokens
    /// Level 0 Discovery, features and all.
    case level0
    /// Method results and calls (status lists, names, nested lists).
    case methods
    /// KMIP TTLV and response messages.
    case ttlv
    /// SCSI sense, NVMe status, INQUIRY/VPD/READ CAPACITY/ATA IDENTIFY data.
    case sense
    /// The simulator's request path: link frames, and IF-SEND payloads a drive must survive.
    case simulator

    func run(_ bytes: [UInt8]) {
        switch self {
        case .tokens:
            _ = try? TokenDecoder.decode(bytes)
            if let packet = try? ComPacket.decode(bytes), let payload = packet.methodPayload { _ = try? MethodPayload.decode(payload) }
        case .level0:
            _ = try? Level0Discovery.decode(bytes)
        case .methods:
            _ = try? MethodPayload.decode(bytes)
        case .ttlv:
            if let item = try? TTLVCodec.decode(bytes) { _ = TTLVCodec.encode(item) }
            _ = try? ResponseMessage(decoding: bytes)
        case .sense:
            _ = SenseData(bytes)
            if bytes.count >= 2 { _ = NVMeStatus(UInt16(bytes[0]) << 8 | UInt16(bytes[1])).description }
            _ = IdentityPages.standardInquiry(bytes)
            _ = IdentityPages.supportedPages(bytes)
            _ = IdentityPages.naaIdentifier(bytes)
            _ = IdentityPages.readCapacity16(bytes)
            _ = IdentityPages.ataIdentify(bytes)
            _ = IdentityPages.ataIdentifyFromInformationPage(bytes)
        case .simulator:
            // A drive of a scratch array: first byte picks the protocol (and with its top bits the
            // drive that has every quirk, 10, or the Enterprise SSC drive, 11), the rest is the payload.
            let selector = (bytes.first ?? 0) >> 6
            guard let drive = selector == 3 ? Self.enterpriseDrive : selector == 2 ? Self.quirkyDrive : Self.drive else { return }
            if let request = try? LinkRequest.decode(bytes) { _ = Self.array?.handle(request) }
            let protocolID: UInt8 = bytes.first.map { ($0 & 0x7F) % 3 } ?? 1
            let comID: UInt16 = protocolID == 1 ? 0x1000 : (bytes.count > 1 && bytes[1] & 1 == 1 ? 0x1000 : 0x0004)
            try? drive.securityProtocolOut(protocolID: protocolID, spSpecific: comID, payload: Array(bytes.dropFirst()))
            _ = try? drive.securityProtocolIn(protocolID: 1, spSpecific: 0x1000, allocationLength: 2048)
        }
    }

    /// One scratch array for the simulator target, made at first use and kept for the process.
    nonisolated(unsafe) static var array: SimulatedArray? = {
        let directory = scratchDirectories[0]
        try? FileManager.default.removeItem(at: directory)
        var settings = DriveSettings()
        settings.lifetimeFailureLimit = 1_000_000
        try? SimulatedArray.create(at: directory, specification: ArraySpecification(drives: 1, sizeBytes: 1 << 20, settings: settings))
        return try? SimulatedArray(directory: directory)
    }()

    static var drive: SimulatedDrive? { try? array?.drive(0) }

    /// A second scratch array whose drive has every quirk (`sedsim create --quirks`).
    nonisolated(unsafe) static var quirkyArray: SimulatedArray? = {
        let directory = scratchDirectories[1]
        try? FileManager.default.removeItem(at: directory)
        var settings = DriveSettings()
        settings.lifetimeFailureLimit = 1_000_000
        settings.quirks = DriveQuirk.allCases
        try? SimulatedArray.create(at: directory, specification: ArraySpecification(drives: 1, sizeBytes: 1 << 20, settings: settings))
        return try? SimulatedArray(directory: directory)
    }()

    static var quirkyDrive: SimulatedDrive? { try? quirkyArray?.drive(0) }

    /// A third scratch array: one Enterprise SSC drive (its Get/Set by names, Authenticate, Erase).
    nonisolated(unsafe) static var enterpriseArray: SimulatedArray? = {
        let directory = scratchDirectories[2]
        try? FileManager.default.removeItem(at: directory)
        var settings = DriveSettings()
        settings.lifetimeFailureLimit = 1_000_000
        settings.ssc = .enterprise
        try? SimulatedArray.create(at: directory, specification: ArraySpecification(drives: 1, sizeBytes: 1 << 20, settings: settings))
        return try? SimulatedArray(directory: directory)
    }()

    static var enterpriseDrive: SimulatedDrive? { try? enterpriseArray?.drive(0) }

    /// Where this process keeps its scratch arrays; removed when it exits.
    static let scratchDirectories = ["sedlock-fuzz-\(getpid())", "sedlock-fuzz-quirks-\(getpid())", "sedlock-fuzz-enterprise-\(getpid())"]
        .map { FileManager.default.temporaryDirectory.appendingPathComponent($0) }

    static func removeScratchArrays() {
        for directory in scratchDirectories { try? FileManager.default.removeItem(at: directory) }
    }
}
