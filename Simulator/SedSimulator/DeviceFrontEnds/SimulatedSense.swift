/// Sense data a simulated SCSI target returns with CHECK CONDITION (SPC-4 §4.4; SAT-4 for ATA).
enum SenseKey: UInt8 {
    case noSense = 0x00
    case recoveredError = 0x01
    case notReady = 0x02
    case mediumError = 0x03
    case hardwareError = 0x04
    case illegalRequest = 0x05
    case dataProtect = 0x07
    case abortedCommand = 0x0B
}

/// An additional sense code and qualifier, named for what the target reports.
struct AdditionalSense: Equatable {
    var code: UInt8
    var qualifier: UInt8

    static let none = AdditionalSense(code: 0x00, qualifier: 0x00)
    static let ataPassThroughInformationAvailable = AdditionalSense(code: 0x00, qualifier: 0x1D)
    static let invalidCommandOperationCode = AdditionalSense(code: 0x20, qualifier: 0x00)
    static let lbaOutOfRange = AdditionalSense(code: 0x21, qualifier: 0x00)
    static let invalidFieldInCDB = AdditionalSense(code: 0x24, qualifier: 0x00)
    static let parameterListLengthError = AdditionalSense(code: 0x1A, qualifier: 0x00)
    static let invalidFieldInParameterList = AdditionalSense(code: 0x26, qualifier: 0x00)
    static let savingParametersNotSupported = AdditionalSense(code: 0x39, qualifier: 0x00)
    static let internalTargetFailure = AdditionalSense(code: 0x44, qualifier: 0x00)
    /// What a self-encrypting drive reports for media access to a locked range.
    static let logicalUnitAccessNotAuthorized = AdditionalSense(code: 0x74, qualifier: 0x71)
}

/// The ATA registers a SAT layer returns in the ATA Status Return sense descriptor.
struct ATARegisters: Equatable {
    var error: UInt8 = 0
    var count: UInt16 = 0
    var lba: UInt64 = 0
    var device: UInt8 = 0x40
    var status: UInt8 = ATARegisters.ready

    /// DRDY | DSC: the command completed.
    static let ready: UInt8 = 0x50
    /// DRDY | DSC | ERR, with ABRT in the error register: the device refused the command.
    static let aborted = ATARegisters(error: 0x04, status: 0x51)
}

enum SimulatedSense {
    /// Fixed-format sense (response code 0x70), 18 bytes.
    static func fixed(_ key: SenseKey, _ asc: AdditionalSense) -> [UInt8] {
        var sense = [UInt8](repeating: 0, count: 18)
        sense[0] = 0x70
        sense[2] = key.rawValue
        sense[7] = 10
        sense[12] = asc.code
        sense[13] = asc.qualifier
        return sense
    }

    /// Descriptor-format sense (0x72) carrying the ATA Status Return descriptor (code 0x09), as SAT
    /// layers answer ATA PASS-THROUGH with CK_COND or an ATA error.
    static func ataStatus(_ key: SenseKey, _ asc: AdditionalSense, registers r: ATARegisters, extended: Bool) -> [UInt8] {
        var descriptor = [UInt8](repeating: 0, count: 14)
        descriptor[0] = 0x09
        descriptor[1] = 0x0C
        descriptor[2] = extended ? 0x01 : 0x00
        descriptor[3] = r.error
        descriptor[4] = UInt8(truncatingIfNeeded: r.count >> 8)
        descriptor[5] = UInt8(truncatingIfNeeded: r.count)
        descriptor[6] = UInt8(truncatingIfNeeded: r.lba >> 24)
        descriptor[7] = UInt8(truncatingIfNeeded: r.lba)
        descriptor[8] = UInt8(truncatingIfNeeded: r.lba >> 32)
        descriptor[9] = UInt8(truncatingIfNeeded: r.lba >> 8)
        descriptor[10] = UInt8(truncatingIfNeeded: r.lba >> 40)
        descriptor[11] = UInt8(truncatingIfNeeded: r.lba >> 16)
        descriptor[12] = r.device
        descriptor[13] = r.status
        return [0x72, key.rawValue, asc.code, asc.qualifier, 0, 0, 0, UInt8(descriptor.count)] + descriptor
    }
}
