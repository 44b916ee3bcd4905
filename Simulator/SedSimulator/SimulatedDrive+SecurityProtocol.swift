import Platform
import Foundation
import SimulatorLink
import TCGStorage

/// IF-SEND / IF-RECV: what the drive does with security protocol commands.
extension SimulatedDrive {
    public enum SecurityCommandError: Error, Sendable, Equatable {
        /// The command itself is refused (bad protocol, ComID or length): ILLEGAL REQUEST.
        case illegalRequest(String)
    }

    public func securityProtocolOut(protocolID: UInt8, spSpecific: UInt16, payload: [UInt8]) throws(SecurityCommandError) {
        lock.lock()
        defer { lock.unlock() }
        switch (protocolID, spSpecific) {
        case (0x01, let comID) where comIDs.contains(comID):
            handleComPacket(payload, comID: comID)
        case (0x02, 0x0004):
            // TPER_RESET: a programmatic reset, honoured only once SID has enabled it in TPerInfo.
            guard record.programmaticResetEnable == true else {
                throw .illegalRequest("TPER_RESET is disabled: TPerInfo ProgrammaticResetEnable is False (SID can set it)")
            }
            applyReset(.programmatic)
            try? persist()
        case (0x02, let comID) where comIDs.contains(comID):
            try handleComIDRequest(payload, on: comID)
        case (0x02, 0x0005):
            // Block SID: authentication as SID refused until the next power cycle (or hardware reset if asked).
            blockSIDActive = true
            blockSIDClearsOnHardwareReset = (payload.first ?? 0) & 0x01 != 0
        case (0x01, _), (0x02, _):
            throw .illegalRequest("ComID 0x\(String(spSpecific, radix: 16)) is not valid for protocol \(protocolID)")
        default:
            throw .illegalRequest("security protocol 0x\(String(protocolID, radix: 16)) is not supported")
        }
    }

    public func securityProtocolIn(protocolID: UInt8, spSpecific: UInt16, allocationLength: Int) throws(SecurityCommandError) -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        let response: [UInt8]
        switch (protocolID, spSpecific) {
        case (0x00, 0x0000):
            // Supported security protocol list (SPC-4 §7.7.1).
            let protocols: [UInt8] = [0x00, 0x01, 0x02]
            response = [0, 0, 0, 0, 0, 0, 0, UInt8(protocols.count)] + protocols
        case (0x00, 0x0001):
            // Certificate data (SPC-4 §7.7.2): reserved (2), certificate length (2), certificate.
            // This drive has no device certificate, so the length is zero.
            response = [0, 0, 0, 0]
        case (0x01, Level0Discovery.comID):
            response = discovery().encoded()
        case (0x01, let comID) where comIDs.contains(comID):
            return takeResponse(comID, allocationLength: allocationLength)
        case (0x02, 0x0000):
            // GET_COMID: the statically allocated base ComID.
            response = [UInt8(Self.baseComID >> 8), UInt8(Self.baseComID & 0xFF), 0, 0]
        case (0x02, let comID) where comIDs.contains(comID):
            response = takeComIDResponse(comID)
        default:
            throw .illegalRequest("protocol 0x\(String(protocolID, radix: 16)) ComID 0x\(String(spSpecific, radix: 16)) cannot be received")
        }
        return fit(response, to: allocationLength)
    }

    private func fit(_ bytes: [UInt8], to length: Int) -> [UInt8] {
        let n = max(0, length)
        return bytes.count >= n ? Array(bytes.prefix(n)) : bytes + [UInt8](repeating: 0, count: n - bytes.count)
    }

    /// The next ComPacket for the host: the response, "still processing", or "nothing outstanding".
    private func takeResponse(_ comID: UInt16, allocationLength: Int) -> [UInt8] {
        guard var pending = pendingResponses[comID] else {
            return fit(ComPacket(comID: comID).encoded(), to: allocationLength)
        }
        if pending.pollsBeforeReady > 0 {
            pending.pollsBeforeReady -= 1
            pendingResponses[comID] = pending
            return fit(ComPacket(comID: comID, outstandingData: 1).encoded(), to: allocationLength)
        }
        guard pending.bytes.count <= allocationLength else {
            // Too small a buffer: say how much is waiting and the transfer that will receive it.
            let size = UInt32(clamping: pending.bytes.count)
            return fit(ComPacket(comID: comID, outstandingData: size, minTransfer: size).encoded(), to: allocationLength)
        }
        pendingResponses[comID] = nil
        return fit(pending.bytes, to: allocationLength)
    }

    private func queue(_ response: [UInt8], comID: UInt16) {
        var bytes = response
        if faults.droppedResponses > 0 {
            if faults.dropAfterResponses > 0 {
                faults.dropAfterResponses -= 1
            } else {
                faults.droppedResponses -= 1
                pendingResponses[comID] = nil
                return
            }
        }
        if faults.corruptedResponses > 0 {
            faults.corruptedResponses -= 1
            // Flip the bytes that matter most: the lengths and the first tokens.
            for i in [19, 43, 55, 56, 57] where i < bytes.count { bytes[i] ^= 0xA5 }
        }
        var polls = 0
        if faults.delayedResponses > 0 {
            faults.delayedResponses -= 1
            polls = faults.delayPolls
        }
        pendingResponses[comID] = PendingResponse(bytes: bytes, pollsBeforeReady: polls)
    }

    private func handleComPacket(_ bytes: [UInt8], comID: UInt16) {
        // A ComPacket the drive cannot parse gets no response, as on hardware.
        guard let comPacket = try? ComPacket.decode(bytes), let packet = comPacket.packets.first,
              let payloadBytes = comPacket.methodPayload else { return }
        expireIdleSessions()
        let reply: MethodPayload?
        var endOfSessionFollows = false
        if packet.tperSessionNumber == 0 && (packet.hostSessionNumber == 0 || has(.sessionManagerAnyHSN)) {
            reply = sessionManagerCall(payloadBytes, comID: comID)
        } else {
            let answer = sessionCall(tsn: packet.tperSessionNumber, hsn: packet.hostSessionNumber, comID: comID, payloadBytes)
            reply = answer?.payload
            endOfSessionFollows = answer?.endOfSessionFollows ?? false
        }
        guard var reply else { return }
        func framed(_ reply: MethodPayload) -> ComPacket {
            ComPacket(comID: comID, packets: [
                Packet(tperSessionNumber: packet.tperSessionNumber, hostSessionNumber: packet.hostSessionNumber,
                       subpackets: [SubPacket(payload: reply.encoded() + (endOfSessionFollows ? [ControlToken.endOfSession.rawValue] : []))]),
            ])
        }
        var response = framed(reply).encoded()
        // A host that never sent Properties is held to Core's default, unless the drive is one
        // that does not enforce it (only its own buffer, MaxComPacketSize, then limits answers).
        let hostLimit = has(.hostPacketSizeUnenforced) && !hostSentProperties ? Self.maxComPacketSize : hostMaxComPacketSize
        if response.count > hostLimit {
            // Larger than the host said it can take: the results are dropped, the status says why.
            switch reply {
            case .call(let call, _):
                reply = .call(MethodCall(invokingUID: call.invokingUID, methodUID: call.methodUID, arguments: []),
                              status: .responseOverflow)
            default: reply = .result([], status: .responseOverflow)
            }
            response = framed(reply).encoded()
        }
        queue(response, comID: comID)
    }

    func expireIdleSessions() {
        let now = clock.uptimeNanoseconds
        sessions = sessions.filter { now - $0.value.lastActivity < $0.value.timeoutNanoseconds }
    }
}
