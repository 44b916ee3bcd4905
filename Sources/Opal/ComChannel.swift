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
    func exchange(_ payload: [UInt8], tsn: UInt32, hsn: UInt32, sequence: UInt32,
                  operation: String) throws(OpalError) -> MethodPayload {
        let request = ComPacket(comID: comID, packets: [
            Packet(tperSessionNumber: tsn, hostSessionNumber: hsn, sequenceNumber: sequence,
                   subpackets: [SubPacket(payload: payload)]),
        ]).encoded(padTo: Self.sendAlignment)
        do {
            try transport.securityProtocolOut(protocolID: 0x01, spSpecific: comID, payload: request)
        } catch {
            throw transportFailure(error, operation: operation)
        }
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

    func transportFailure(_ error: TransportError, operation: String) -> OpalError {
        if error.code == .timedOut {
            return OpalError(.timedOut, device: device, operation: operation, error.message)
        }
        return OpalError(.transport(error.code), device: device, operation: operation, error.message)
    }
}
