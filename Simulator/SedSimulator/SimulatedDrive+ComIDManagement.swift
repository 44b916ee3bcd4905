import Foundation
import TCGStorage

/// ComID management (security protocol 0x02 on the ComID itself, TCG Core §3.3.4.7.5): the host
/// asks with IF-SEND — ComID (2), extended ComID (2), request code (4) — and takes the answer
/// with IF-RECV — the same 8 bytes, 2 reserved, the available data length (2), then the data.
/// VERIFY_COMID_VALID answers the ComID's state; STACK_RESET aborts every session open on the
/// ComID and drops a response not yet taken, so a host that lost track of a session can start
/// over without a power cycle. Anything else is an ILLEGAL REQUEST.
extension SimulatedDrive {
    enum ComIDRequest: UInt32 {
        case verifyComIDValid = 1
        case stackReset = 2
    }

    /// ComID states (Core Table 37).
    enum ComIDState: UInt32 {
        case invalid = 0, inactive = 1, issued = 2, associated = 3
    }

    func handleComIDRequest(_ payload: [UInt8], on target: UInt16) throws(SecurityCommandError) {
        guard payload.count >= 8 else {
            throw .illegalRequest("a ComID request needs 8 bytes (ComID, extension, request code), got \(payload.count)")
        }
        let comID = UInt16(payload[0]) << 8 | UInt16(payload[1])
        let extensionID = UInt16(payload[2]) << 8 | UInt16(payload[3])
        let code = payload[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard comID == target, extensionID == 0 else {
            throw .illegalRequest("ComID 0x\(String(comID, radix: 16)) extension \(extensionID) is not this drive's ComID")
        }
        guard let request = ComIDRequest(rawValue: code) else {
            throw .illegalRequest("ComID request code \(code) is not VERIFY_COMID_VALID (1) or STACK_RESET (2)")
        }
        switch request {
        case .verifyComIDValid:
            expireIdleSessions()
            let state: ComIDState = sessions.values.contains { $0.comID == comID } ? .associated : .issued
            // State, then the times of allocation, expiry and now: all zero for a static ComID.
            var data: [UInt8] = []
            data.appendBigEndian(state.rawValue)
            data.appendZeros(30)
            pendingComIDResponses[comID] = Self.comIDResponse(comID, request, data: data)
        case .stackReset:
            sessions = sessions.filter { $0.value.comID != comID }
            pendingResponses[comID] = nil
            hostMaxComPacketSize = assumedHostComPacketSize
            hostSentProperties = false
            pendingComIDResponses[comID] = Self.comIDResponse(comID, request, data: [0, 0, 0, 0])  // status 0: success
        }
    }

    /// The pending answer, or NO_RESPONSE_AVAILABLE (request code 0, no data).
    func takeComIDResponse(_ comID: UInt16) -> [UInt8] {
        defer { pendingComIDResponses[comID] = nil }
        return pendingComIDResponses[comID] ?? Self.comIDResponse(comID, nil, data: [])
    }

    private static func comIDResponse(_ comID: UInt16, _ request: ComIDRequest?, data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.appendBigEndian(comID)
        out.appendZeros(2)                                  // extended ComID
        out.appendBigEndian(request?.rawValue ?? 0)
        out.appendZeros(2)
        out.appendBigEndian(UInt16(clamping: data.count))
        return out + data
    }
}
