/// What a device said when a command failed: SCSI sense data (fixed or descriptor format, with
/// the ATA status a SAT layer returns) or an NVMe completion status. Decoders take untrusted
/// bytes and never trap.
public struct SenseData: Hashable, Sendable, CustomStringConvertible {
    public var senseKey: UInt8
    public var additionalSenseCode: UInt8
    public var qualifier: UInt8
    /// ATA Status and Error registers when an ATA Status Return descriptor (09h) is present.
    public var ataStatus: UInt8?
    public var ataError: UInt8?

    /// Parses fixed (70h/71h) or descriptor (72h/73h) sense data; nil when it is neither.
    public init?(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return nil }
        func at(_ i: Int) -> UInt8 { i < bytes.count ? bytes[i] : 0 }
        switch first & 0x7F {
        case 0x70, 0x71:
            guard bytes.count >= 3 else { return nil }
            senseKey = at(2) & 0x0F
            additionalSenseCode = at(12)
            qualifier = at(13)
        case 0x72, 0x73:
            guard bytes.count >= 2 else { return nil }
            senseKey = at(1) & 0x0F
            additionalSenseCode = at(2)
            qualifier = at(3)
            // Walk the descriptors (length at byte 7), each: type, additional length, body.
            let end = min(bytes.count, 8 + Int(at(7)))
            var offset = 8
            while offset + 1 < end {
                let type = bytes[offset], length = Int(bytes[offset + 1])
                if type == 0x09 && offset + 13 < end {
                    ataError = bytes[offset + 3]
                    ataStatus = bytes[offset + 13]
                }
                offset += 2 + length
            }
        default:
            return nil
        }
    }

    public enum Condition: Hashable, Sendable {
        case noSense, recovered, notReady, mediumError, hardwareError, illegalRequest, unitAttention,
             dataProtect, abortedCommand, other(UInt8)
    }

    public var condition: Condition {
        switch senseKey {
        case 0x0: return .noSense
        case 0x1: return .recovered
        case 0x2: return .notReady
        case 0x3: return .mediumError
        case 0x4: return .hardwareError
        case 0x5: return .illegalRequest
        case 0x6: return .unitAttention
        case 0x7: return .dataProtect
        case 0xB: return .abortedCommand
        default: return .other(senseKey)
        }
    }

    /// What went wrong, in words an operator can act on.
    public var description: String {
        let code = String(format2(additionalSenseCode)) + "/" + String(format2(qualifier))
        switch (senseKey, additionalSenseCode, qualifier) {
        case (0x5, 0x20, 0x00): return "ILLEGAL REQUEST: invalid command operation code (\(code)) — the device does not support this command"
        case (0x5, 0x24, 0x00): return "ILLEGAL REQUEST: invalid field in CDB (\(code)) — security protocol or ComID not supported"
        case (0x5, 0x26, _): return "ILLEGAL REQUEST: invalid field in parameter list (\(code))"
        case (0x5, 0x21, 0x00): return "ILLEGAL REQUEST: LBA out of range (\(code))"
        case (0x7, _, _): return "DATA PROTECT (\(code)) — the LBA range is locked"
        case (0x2, _, _): return "NOT READY (\(code)) — the device is not ready; retry or check it"
        case (0x6, _, _): return "UNIT ATTENTION (\(code)) — the device was reset; retry"
        case (0xB, _, _): return "ABORTED COMMAND (\(code))"
        default: return "sense key \(format2(senseKey)) ASC/ASCQ \(code)"
        }
    }

    /// The transport error this sense data means.
    public func transportError(device: String) -> TransportError {
        let code: TransportError.Code
        switch condition {
        case .dataProtect: code = .dataProtect
        case .illegalRequest:
            code = additionalSenseCode == 0x24 || additionalSenseCode == 0x20 ? .unsupportedProtocol : .illegalRequest
        default: code = .ioFailure
        }
        return TransportError(code, device: device, description)
    }
}

func format2(_ v: UInt8) -> String {
    let hex = String(v, radix: 16, uppercase: true)
    return hex.count == 1 ? "0" + hex : hex
}

/// An NVMe completion status (the 15 bits above the phase tag).
public struct NVMeStatus: Hashable, Sendable, CustomStringConvertible {
    public var statusCodeType: UInt8
    public var statusCode: UInt8
    public var doNotRetry: Bool

    /// From the status field as Linux returns it from the ioctl (phase bit already stripped).
    public init(_ field: UInt16) {
        statusCode = UInt8(truncatingIfNeeded: field & 0xFF)
        statusCodeType = UInt8(truncatingIfNeeded: (field >> 8) & 0x7)
        doNotRetry = field & 0x4000 != 0
    }

    public var isSuccess: Bool { statusCodeType == 0 && statusCode == 0 }

    public var description: String {
        switch (statusCodeType, statusCode) {
        case (0, 0x00): return "success"
        case (0, 0x01): return "invalid command opcode — the controller does not support this command"
        case (0, 0x02): return "invalid field in command — security protocol or ComID not supported"
        case (0, 0x04): return "data transfer error"
        case (0, 0x06): return "internal error"
        case (0, 0x0B): return "invalid namespace or format"
        case (0, 0x80): return "LBA out of range"
        case (2, 0x86): return "access denied — the LBA range is locked"
        case (2, 0x81): return "unrecovered read error"
        default: return "status code type \(statusCodeType) status code 0x\(format2(statusCode))"
        }
    }

    public func transportError(device: String) -> TransportError {
        let code: TransportError.Code
        switch (statusCodeType, statusCode) {
        case (2, 0x86): code = .dataProtect
        case (0, 0x01), (0, 0x02): code = .unsupportedProtocol
        default: code = .ioFailure
        }
        return TransportError(code, device: device, "NVMe \(description)")
    }
}
