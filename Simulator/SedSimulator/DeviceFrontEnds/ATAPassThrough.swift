import SimulatorLink

/// ATA PASS-THROUGH(12/16) on a simulated SATA drive (SAT-4 §12.2): IDENTIFY DEVICE and the
/// TRUSTED SEND/RECEIVE/NON-DATA commands, with the ATA registers returned as a SAT layer returns them.
struct ATAPassThrough {
    let drive: SimulatedDrive

    /// The taskfile the CDB carries.
    struct Taskfile {
        var protocolField: UInt8
        var checkCondition: Bool
        var extended: Bool
        var features: UInt16
        var count: UInt16
        var lbaLow: UInt8
        var lbaMid: UInt8
        var lbaHigh: UInt8
        var command: UInt8
        var device: UInt8

        init(_ cdb: [UInt8]) {
            protocolField = (cdb.byte(1) >> 1) & 0x0F
            checkCondition = cdb.byte(2) & 0x20 != 0
            if cdb.byte(0) == 0x85 {
                extended = cdb.byte(1) & 0x01 != 0
                features = UInt16(cdb.byte(4)) | (extended ? UInt16(cdb.byte(3)) << 8 : 0)
                count = UInt16(cdb.byte(6)) | (extended ? UInt16(cdb.byte(5)) << 8 : 0)
                lbaLow = cdb.byte(8); lbaMid = cdb.byte(10); lbaHigh = cdb.byte(12)
                device = cdb.byte(13)
                command = cdb.byte(14)
            } else {
                extended = false
                features = UInt16(cdb.byte(3))
                count = UInt16(cdb.byte(4))
                lbaLow = cdb.byte(5); lbaMid = cdb.byte(6); lbaHigh = cdb.byte(7)
                device = cdb.byte(8)
                command = cdb.byte(9)
            }
        }

        /// TRUSTED SEND/RECEIVE (ACS-4 §7.57-7.60): length in 512-byte blocks in count and LBA (7:0).
        var trustedLengthBytes: Int { (Int(count & 0xFF) | Int(lbaLow) << 8) * 512 }
        var trustedSPSpecific: UInt16 { UInt16(lbaMid) | UInt16(lbaHigh) << 8 }
        /// TRUSTED NON-DATA: LBA bit 24 (the device register's bit 0) chooses receive (1) or send (0).
        var trustedNonDataIsReceive: Bool { device & 0x01 != 0 }
    }

    func execute(_ command: LinkSCSICommand) -> LinkSCSIResult {
        let tf = Taskfile(command.cdb)
        switch tf.command {
        case 0xEC: // IDENTIFY DEVICE
            return completed(tf, data: ATAIdentifyData.build(drive.identity))
        case 0x5C, 0x5D: // TRUSTED RECEIVE (PIO / DMA)
            do {
                let data = try drive.securityProtocolIn(protocolID: UInt8(truncatingIfNeeded: tf.features),
                                                        spSpecific: tf.trustedSPSpecific, allocationLength: tf.trustedLengthBytes)
                return completed(tf, data: data)
            } catch { return aborted(tf) }
        case 0x5B: // TRUSTED NON-DATA (ACS-4 §7.56): a send or receive of no data, e.g. TPER_RESET
            guard tf.count == 0, tf.lbaLow == 0 else { return aborted(tf) }
            let protocolID = UInt8(truncatingIfNeeded: tf.features)
            do {
                if tf.trustedNonDataIsReceive {
                    _ = try drive.securityProtocolIn(protocolID: protocolID, spSpecific: tf.trustedSPSpecific, allocationLength: 0)
                } else {
                    try drive.securityProtocolOut(protocolID: protocolID, spSpecific: tf.trustedSPSpecific, payload: [])
                }
                return completed(tf, data: [])
            } catch { return aborted(tf) }
        case 0x5E, 0x5F: // TRUSTED SEND (PIO / DMA)
            let length = tf.trustedLengthBytes
            guard command.dataOut.count >= length else { return aborted(tf) }
            do {
                try drive.securityProtocolOut(protocolID: UInt8(truncatingIfNeeded: tf.features),
                                              spSpecific: tf.trustedSPSpecific, payload: Array(command.dataOut.prefix(length)))
                return completed(tf, data: [])
            } catch { return aborted(tf) }
        default:
            return aborted(tf)
        }
    }

    private func completed(_ tf: Taskfile, data: [UInt8]) -> LinkSCSIResult {
        guard tf.checkCondition else { return LinkSCSIResult(dataIn: data) }
        // CK_COND: the registers come back even on success.
        return LinkSCSIResult(status: LinkSCSIResult.checkCondition,
                              sense: SimulatedSense.ataStatus(.recoveredError, .ataPassThroughInformationAvailable,
                                                              registers: ATARegisters(), extended: tf.extended),
                              dataIn: data)
    }

    private func aborted(_ tf: Taskfile) -> LinkSCSIResult {
        LinkSCSIResult(status: LinkSCSIResult.checkCondition,
                       sense: SimulatedSense.ataStatus(.abortedCommand, .none, registers: .aborted, extended: tf.extended))
    }
}
