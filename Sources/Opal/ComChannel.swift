import Platform
import SecurityTransport
import TCGStorage

/// Sends ComPackets on a drive's ComID and collects the responses, polling while the TPer is
/// still processing (OutstandingData ≠ 0, MinTransfer = 0) and growing the buffer when asked.
final class ComChannel {
    /// sedutil and the kernel start with 2048-byte receive buffers.
    static let initialTransferLength = 2048
    static let maximumTransferLength = 1 << 20
    static let sendAlignment = 512

    let transport: any SecurityTransport
    let comID: UInt16
    let timeout: Double
    let time: any TimeSource
    var device: String { transport.address.description }

    init(transport: any SecurityTransport, comID: UInt16, timeout: Double, time: any TimeSource) {
        self.transport = transport
        self.comID = comID
        self.timeout = timeout
        self.time = time
    }

    /// One request/response exchange; returns the response's method payload and its packet.
    /// `delivered` is set once the request has gone out: a failure after that leaves the drive's
    /// side unknown.
    func exchange(_ payload: [UInt8], tsn: UInt32, hsn: UInt32, sequence: UInt32,
                  operation: String, delivered: UnsafeMutablePointer<Bool>? = nil) throws(OpalError) -> MethodPayload {
        // The request may carry a PIN: cleared once sent.
        var request = ComPacket(comID: comID, packets: [
            Packet(tperSessionNumber: tsn, hostSessionNumber: hsn, sequenceNumber: sequence,
                   subpackets: [SubPacket(payload: payload)]),
        ]).encoded(padTo: Self.sendAlignment)
        defer { request.wipe() }
        do {
            try transport.securityProtocolOut(protocolID: 0x01, spSpecific: comID, payload: request)
        } catch {
            throw transportFailure(error, operation: operation)
        }
        delivered?.pointee = true
        let deadline = Deadline.after(seconds: timeout, time: time)
        var length = Self.initialTransferLength
        var pause = 0.001
        while true {
            let bytes: [UInt8]
            do {
                bytes = try transport.securityProtocolIn(protocolID: 0x01, spSpecific: comID, allocationLength: length)
            } catch {
                throw transportFailure(error, operation: operation)
            }
            let response: ComPacket
            do { response = try ComPacket.decode(bytes) } catch {
                throw OpalError(.malformedResponse, device: device, operation: operation,
                                "the drive's response ComPacket is malformed: \(error)",
                                fix: "retry once; if it persists the drive or its firmware is faulty")
            }
            if let packet = response.packets.first, let body = response.methodPayload {
                guard response.comID == comID, packet.tperSessionNumber == tsn || tsn == 0,
                      packet.hostSessionNumber == hsn else {
                    throw OpalError(.malformedResponse, device: device, operation: operation,
                                    "the response belongs to another ComID or session")
                }
                do { return try MethodPayload.decode(body) } catch {
                    throw OpalError(.malformedResponse, device: device, operation: operation,
                                    "the drive's method response does not parse: \(error)",
                                    fix: "retry once; if it persists the drive or its firmware is faulty")
                }
            }
            if response.minTransfer > UInt32(length) {
                guard Int(response.minTransfer) <= Self.maximumTransferLength else {
                    throw OpalError(.malformedResponse, device: device, operation: operation,
                                    "the drive asks for a \(response.minTransfer)-byte transfer, beyond the \(Self.maximumTransferLength)-byte limit")
                }
                length = Int(response.minTransfer)
                continue
            }
            guard !deadline.hasPassed else {
                throw OpalError(.timedOut, device: device, operation: operation,
                                response.outstandingData == 0
                                    ? "the drive sent no response within \(timeout) s (response lost)"
                                    : "the drive was still processing after \(timeout) s",
                                fix: "retry; if the drive keeps not answering, power-cycle it")
            }
            time.sleep(nanoseconds: UInt64(pause * 1e9))
            pause = min(pause * 2, 0.025)
        }
    }

    /// STACK_RESET (ComID management, protocol 0x02 on the ComID): the TPer aborts every session
    /// open on this ComID and drops any response not yet taken. For a session sedlock opened and
    /// could not close (its reply lost, garbled or late), so that the next command does not meet
    /// SP_BUSY until the drive times the session out. The answer: ComID, extension, request code,
    /// 2 reserved bytes, the data length, then 4 bytes of status (0 = success).
    func stackReset() throws(OpalError) {
        let operation = "ComID stack reset"
        let request = [UInt8(comID >> 8), UInt8(comID & 0xFF), 0, 0, 0, 0, 0, 2]
        do {
            try transport.securityProtocolOut(protocolID: 0x02, spSpecific: comID,
                                              payload: request + [UInt8](repeating: 0, count: Self.sendAlignment - request.count))
        } catch {
            throw transportFailure(error, operation: operation)
        }
        let deadline = Deadline.after(seconds: timeout, time: time)
        while true {
            let bytes: [UInt8]
            do { bytes = try transport.securityProtocolIn(protocolID: 0x02, spSpecific: comID, allocationLength: Self.sendAlignment) } catch {
                throw transportFailure(error, operation: operation)
            }
            guard bytes.count >= 12, UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == comID else {
                throw OpalError(.malformedResponse, device: device, operation: operation, "the answer is not for ComID \(comID)")
            }
            let code = bytes[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            if code == 2 {
                let length = Int(bytes[10]) << 8 | Int(bytes[11])
                guard length >= 4, bytes.count >= 16 else {
                    throw OpalError(.malformedResponse, device: device, operation: operation, "the STACK_RESET answer carries no status")
                }
                guard bytes[12..<16].allSatisfy({ $0 == 0 }) else {
                    throw OpalError(.invalidState, device: device, operation: operation, "the drive reports that the stack reset failed")
                }
                return
            }
            // Request code 0: NO_RESPONSE_AVAILABLE yet.
            guard code == 0, !deadline.hasPassed else {
                throw OpalError(.timedOut, device: device, operation: operation, "no STACK_RESET answer within \(timeout) s")
            }
            time.sleep(nanoseconds: 5_000_000)
        }
    }

    func transportFailure(_ error: TransportError, operation: String) -> OpalError {
        if error.code == .timedOut {
            return OpalError(.timedOut, device: device, operation: operation, error.message)
        }
        return OpalError(.transport(error.code), device: device, operation: operation, error.message)
    }
}
