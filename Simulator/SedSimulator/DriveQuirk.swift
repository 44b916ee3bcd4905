import TCGStorage

/// Ways real firmware is more tolerant than the specification that some hosts rely on. A drive is
/// strict by default; `sedsim create --quirks …` builds one with any of these, so hosts of both
/// kinds can be tested.
public enum DriveQuirk: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// Session Manager calls (Properties, StartSession) are taken with TSN = 0 whatever the HSN;
    /// a strict drive takes them only with TSN = HSN = 0 and answers anything else as a packet
    /// for a session it does not know (CloseSession).
    case sessionManagerAnyHSN = "session-manager-any-hsn"
    /// A method call followed by EndOfSession in one subpacket is executed, then the session
    /// ends (the answer carries the results, then EndOfSession); a strict drive answers the
    /// malformed payload with INVALID_PARAMETER and keeps the session open.
    case methodThenEndOfSession = "method-then-end-of-session"
    /// Two statically allocated ComIDs (0x1000 and 0x1001), each with its own sessions and
    /// response buffer, as Level 0 then announces; a strict drive has one.
    case twoComIDs = "two-comids"
    /// Answers as large as the drive's own buffer even to a host that never raised Core's
    /// 1,024-byte default MaxComPacketSize with Properties (TCGstorageAPI's pysed sends no
    /// Properties and reads 1,000-byte DataStore blocks); a strict drive answers those
    /// RESPONSE_OVERFLOW.
    case hostPacketSizeUnenforced = "host-packet-size-unenforced"

    public var description: String { rawValue }

    /// What each quirk does, for `sedsim create --help` and README.
    public var explanation: String {
        switch self {
        case .sessionManagerAnyHSN: return "Session Manager calls accepted with TSN 0 and any HSN"
        case .methodThenEndOfSession: return "a method and EndOfSession in one subpacket: executed, then the session ends"
        case .twoComIDs: return "two ComIDs (0x1000, 0x1001), each with its own sessions and responses"
        case .hostPacketSizeUnenforced: return "answers beyond the host's 1,024-byte default MaxComPacketSize when it sent no Properties"
        }
    }
}

extension SimulatedDrive {
    func has(_ quirk: DriveQuirk) -> Bool { record.settings.quirks?.contains(quirk) == true }

    /// The ComIDs this drive answers on for protocols 1 and 2.
    var comIDs: [UInt16] { has(.twoComIDs) ? [Self.baseComID, Self.baseComID + 1] : [Self.baseComID] }

    /// Splits a trailing EndOfSession token off a method call's payload (quirk
    /// `method-then-end-of-session`); nil when the payload does not end that way.
    static func methodBeforeEndOfSession(_ bytes: [UInt8]) -> [UInt8]? {
        var end = bytes.count
        while end > 0 && bytes[end - 1] == 0 { end -= 1 }   // subpacket padding
        guard end > 1, bytes[end - 1] == ControlToken.endOfSession.rawValue else { return nil }
        return Array(bytes[..<(end - 1)])
    }
}
