import Foundation
import Platform
import CSGUtils
#if canImport(Glibc)
import Glibc
#endif

/// One open device node driven through libsgutils2's pass-through layer (sg_pt): SG_IO for SCSI
/// and SATA (sg, bsg or block nodes), NVMe admin pass-through for NVMe controller and namespace nodes.
/// Immutable after opening; the kernel serialises pass-through on one descriptor, and a drive's
/// owner (one per drive) orders the send/receive pairs.
final class PassThroughDevice: Sendable {
    enum NodeType: Sendable { case scsi, nvme }

    let path: String
    let nodeType: NodeType
    private let fd: Int32
    /// Retries of a command interrupted by a signal before giving up.
    private static let interruptRetries = 5

    init(path: String) throws(TransportError) {
        self.path = path
        // One open at a time: libsgutils2 looks up the bsg and NVMe character majors once (in
        // scsi_pt_open_device and check_pt_file_handle) and keeps them in unguarded statics, so
        // drives opened in parallel could see them half-made and take an NVMe controller for a
        // SCSI node (seen in the tests, about one run in three).
        let (rc, kind) = Self.classification.withLock { () -> (Int32, Int32) in
            let rc = scsi_pt_open_device(path, false, 0)
            guard rc >= 0 else { return (rc, 0) }
            // 3: NVMe controller (char) node, 4: NVMe namespace (block) node; anything else speaks SCSI.
            return (rc, check_pt_file_handle(rc, path, 0))
        }
        guard rc >= 0 else { throw Self.osError(-rc, path: path, during: "open") }
        fd = rc
        nodeType = kind == 3 || kind == 4 ? .nvme : .scsi
    }

    deinit { scsi_pt_close_device(fd) }

    private static let classification = NSLock()

    struct SCSIOutcome {
        var dataIn: [UInt8]
        /// Sense data when the device answered CHECK CONDITION.
        var sense: SenseData?
        var status: Int32
    }

    /// Runs one CDB. Transport failures throw; a device that answered (even CHECK CONDITION) returns.
    func scsi(_ cdb: [UInt8], dataOut: [UInt8] = [], dataInLength: Int = 0, timeoutSeconds: Int) throws(TransportError) -> SCSIOutcome {
        try submit(cdb, dataOut: dataOut, dataInLength: dataInLength, responseLength: 64,
                   timeoutSeconds: timeoutSeconds) { (obj, rc, dataIn, sense) throws(TransportError) in
            try checkSubmission(rc, obj: obj, command: "SCSI opcode 0x\(format2(cdb.first ?? 0))", timeoutSeconds: timeoutSeconds)
            let category = get_scsi_pt_result_category(obj)
            if category == SCSI_PT_RESULT_TRANSPORT_ERR {
                throw TransportError(.ioFailure, device: path, "transport error 0x\(String(get_scsi_pt_transport_err(obj), radix: 16)) (host or driver status); check the cabling and the HBA")
            }
            if category == SCSI_PT_RESULT_OS_ERR {
                throw Self.osError(get_scsi_pt_os_err(obj), path: path, during: "SG_IO")
            }
            var outcome = SCSIOutcome(dataIn: [], sense: nil, status: get_scsi_pt_status_response(obj))
            outcome.dataIn = Array(dataIn.prefix(max(0, dataInLength - Int(get_scsi_pt_resid(obj)))))
            let senseLength = Int(get_scsi_pt_sense_len(obj))
            if category == SCSI_PT_RESULT_SENSE, senseLength > 0 {
                outcome.sense = SenseData(Array(sense.prefix(min(senseLength, sense.count))))
            }
            if category == SCSI_PT_RESULT_STATUS {
                throw TransportError(.ioFailure, device: path, "the device answered SCSI status 0x\(format2(UInt8(truncatingIfNeeded: outcome.status))) (busy or reservation conflict); retry")
            }
            return outcome
        }
    }

    /// Runs one NVMe admin command given as its 64-byte submission queue entry; returns the data
    /// received, or throws the NVMe status as a typed error.
    func nvmeAdmin(_ entry: [UInt8], dataOut: [UInt8] = [], dataInLength: Int = 0, timeoutSeconds: Int) throws(TransportError) -> [UInt8] {
        // For NVMe, sg_pt's "sense" buffer receives the completion queue entry.
        try submit(entry, dataOut: dataOut, dataInLength: dataInLength, responseLength: 32,
                   timeoutSeconds: timeoutSeconds) { (obj, rc, dataIn, _) throws(TransportError) in
            if rc == SCSI_PT_DO_NVME_STATUS {
                throw NVMeStatus(UInt16(truncatingIfNeeded: get_scsi_pt_status_response(obj))).transportError(device: path)
            }
            try checkSubmission(rc, obj: obj, command: "NVMe admin opcode 0x\(format2(entry.first ?? 0))", timeoutSeconds: timeoutSeconds)
            if get_scsi_pt_result_category(obj) == SCSI_PT_RESULT_OS_ERR {
                throw Self.osError(get_scsi_pt_os_err(obj), path: path, during: "NVMe admin pass-through")
            }
            return dataIn
        }
    }

    /// One pass-through submission with its buffers; retried when a signal interrupts it. `interpret`
    /// reads the outcome from the pass-through object while it still exists.
    private func submit<T>(_ command: [UInt8], dataOut: [UInt8], dataInLength: Int, responseLength: Int, timeoutSeconds: Int,
                           _ interpret: (OpaquePointer, Int32, [UInt8], [UInt8]) throws(TransportError) -> T) throws(TransportError) -> T {
        for attempt in 0...Self.interruptRetries {
            var dataIn = [UInt8](repeating: 0, count: dataInLength)
            var response = [UInt8](repeating: 0, count: responseLength)
            guard let obj = construct_scsi_pt_obj_with_fd(fd, 0) else {
                throw TransportError(.ioFailure, device: path, "out of memory for a pass-through object")
            }
            defer { destruct_scsi_pt_obj(obj) }
            let rc: Int32 = command.withUnsafeBufferPointer { commandPtr in
                dataOut.withUnsafeBufferPointer { outPtr in
                    dataIn.withUnsafeMutableBufferPointer { inPtr in
                        response.withUnsafeMutableBufferPointer { responsePtr in
                            set_scsi_pt_cdb(obj, commandPtr.baseAddress, Int32(command.count))
                            set_scsi_pt_sense(obj, responsePtr.baseAddress, Int32(responsePtr.count))
                            if !dataOut.isEmpty { set_scsi_pt_data_out(obj, outPtr.baseAddress, Int32(dataOut.count)) }
                            if dataInLength > 0 { set_scsi_pt_data_in(obj, inPtr.baseAddress, Int32(dataInLength)) }
                            return do_scsi_pt(obj, -1, Int32(max(1, timeoutSeconds)), 0)
                        }
                    }
                }
            }
            if rc == -EINTR && attempt < Self.interruptRetries { continue }
            return try interpret(obj, rc, dataIn, response)
        }
        throw TransportError(.ioFailure, device: path, "interrupted by signals \(Self.interruptRetries + 1) times")
    }

    private func checkSubmission(_ rc: Int32, obj: OpaquePointer, command: String, timeoutSeconds: Int) throws(TransportError) {
        if rc < 0 { throw Self.osError(-rc, path: path, during: command) }
        switch rc {
        case 0: return
        case SCSI_PT_DO_TIMEOUT:
            throw TransportError(.timedOut, device: path, "\(command) did not complete within \(timeoutSeconds) s")
        case SCSI_PT_DO_BAD_PARAMS:
            throw TransportError(.illegalRequest, device: path, "\(command): the pass-through layer refused its parameters")
        case SCSI_PT_DO_NOT_SUPPORTED:
            throw TransportError(.unsupportedProtocol, device: path, "\(command) is not supported on this kind of device node")
        default:
            throw TransportError(.ioFailure, device: path, "\(command) failed (pass-through result \(rc))")
        }
    }

    /// An operating-system error, with the capability to grant when it is a permission problem.
    static func osError(_ code: Int32, path: String, during operation: String) -> TransportError {
        switch code {
        case EACCES, EPERM:
            return TransportError(.permissionDenied, device: path,
                                  "\(operation): \(errnoText(code)); security commands need root with CAP_SYS_RAWIO (SCSI/ATA pass-through) or CAP_SYS_ADMIN (NVMe admin commands), and inside a container the device must be allowed too")
        case ENOENT, ENXIO, ENODEV:
            return TransportError(.unreachable, device: path, "\(operation): \(errnoText(code)); check the device node (`sedlock drive list`)")
        case ETIMEDOUT:
            return TransportError(.timedOut, device: path, "\(operation): \(errnoText(code))")
        case ENOTTY, EINVAL, ENOSYS:
            return TransportError(.unsupportedProtocol, device: path, "\(operation): \(errnoText(code)); the node does not take this pass-through")
        default:
            return TransportError(.ioFailure, device: path, "\(operation): \(errnoText(code))")
        }
    }
}
