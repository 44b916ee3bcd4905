import Foundation
import SedSimulator
import TCGStorage

/// Speaks raw ComPackets to a simulated drive, as a minimal host would.
struct RawHost {
    let drive: SimulatedDrive
    static let comID: UInt16 = 0x1000

    func send(_ payload: [UInt8], tsn: UInt32 = 0, hsn: UInt32 = 0) throws {
        let packet = ComPacket(comID: Self.comID, packets: [
            Packet(tperSessionNumber: tsn, hostSessionNumber: hsn, subpackets: [SubPacket(payload: payload)]),
        ]).encoded(padTo: 512)
        try drive.securityProtocolOut(protocolID: 1, spSpecific: Self.comID, payload: packet)
    }

    func receive(_ length: Int = 2048) throws -> ComPacket {
        try ComPacket.decode(drive.securityProtocolIn(protocolID: 1, spSpecific: Self.comID, allocationLength: length))
    }

    func call(_ call: MethodCall, tsn: UInt32 = 0, hsn: UInt32 = 0) throws -> MethodPayload {
        try send(call.encoded(), tsn: tsn, hsn: hsn)
        guard let payload = try receive().methodPayload else { throw TCGStorageError(.truncated, at: 0, "no response") }
        return try MethodPayload.decode(payload)
    }

    /// Reads C_PIN_MSID as Anybody, in a session of its own.
    func readMSID() throws -> [UInt8] {
        let (status, tsn) = try startSession(sp: .adminSP, write: false, hsn: 99)
        guard status == .success else { throw TCGStorageError(.truncated, at: 0, "no Anybody session: \(status)") }
        let reply = try call(MethodCall(invokingUID: .cPinMSID, methodUID: MethodID.get,
                                        arguments: [.list([.name(3, .unsigned(3)), .name(4, .unsigned(3))])]), tsn: tsn, hsn: 99)
        try send([ControlToken.endOfSession.rawValue], tsn: tsn, hsn: 99)
        _ = try receive()
        guard case .result(let values, .success) = reply, let msid = values.first?.field(3)?.bytesValue else {
            throw TCGStorageError(.truncated, at: 0, "no MSID in \(reply)")
        }
        return msid
    }

    /// StartSession; returns (status, tsn).
    func startSession(sp: UID, authority: UID? = nil, pin: [UInt8]? = nil, write: Bool, hsn: UInt32 = 77) throws -> (MethodStatus, UInt32) {
        var args: [TCGValue] = [.unsigned(UInt64(hsn)), .uid(sp), .bool(write)]
        if let authority {
            args.append(.name(0, .bytes(pin ?? [])))
            args.append(.name(3, .uid(authority)))
        }
        let reply = try call(MethodCall(invokingUID: .sessionManager, methodUID: MethodID.startSession, arguments: args))
        guard case .call(let sync, let status) = reply else { return (.fail, 0) }
        return (status, UInt32(sync.arguments.count > 1 ? sync.arguments[1].unsignedValue ?? 0 : 0))
    }
}

final class TempArray {
    let directory: URL
    let array: SimulatedArray

    init(settings: DriveSettings = DriveSettings(), kind: DriveKind = .nvme, blockSize: Int = 512) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sedsim-test-\(UUID().uuidString)")
        try SimulatedArray.create(at: directory, specification: ArraySpecification(drives: 1, sizeBytes: 8 << 20, kind: kind,
                                                                                    blockSize: blockSize, settings: settings))
        array = try SimulatedArray(directory: directory)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    var drive: SimulatedDrive { array.drives[0] }
    var host: RawHost { RawHost(drive: drive) }
    var stateFile: URL { directory.appendingPathComponent("drive-0/state.json") }
}
