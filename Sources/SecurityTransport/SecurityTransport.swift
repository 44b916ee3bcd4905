/// IF-SEND / IF-RECV to one device: SCSI SECURITY PROTOCOL OUT/IN, ATA TRUSTED SEND/RECEIVE,
/// NVMe Security Send/Receive, or the simulator's link. Everything above talks only to this.
public protocol SecurityTransport: AnyObject, Sendable {
    /// Where the device is (a `/dev` path or `sim:DIR/N`).
    var address: DeviceAddress { get }

    /// The device's identity (model, raw serial number, WWN, capacity).
    func identify() throws(TransportError) -> DeviceIdentity

    /// IF-SEND: `payload` to security protocol `protocolID`, protocol-specific field `spSpecific` (the ComID).
    func securityProtocolOut(protocolID: UInt8, spSpecific: UInt16, payload: [UInt8]) throws(TransportError)

    /// IF-RECV: up to `allocationLength` bytes from security protocol `protocolID`.
    func securityProtocolIn(protocolID: UInt8, spSpecific: UInt16, allocationLength: Int) throws(TransportError) -> [UInt8]
}

/// What a device says about itself.
public struct DeviceIdentity: Sendable, Hashable, Codable {
    public enum Interface: String, Sendable, Codable {
        case nvme, sas, sata, simulated
    }

    public var interface: Interface
    public var model: String
    /// The serial number field exactly as reported (20 bytes for ATA/NVMe), used as the sedutil salt.
    public var serialNumberField: [UInt8]
    public var firmware: String
    public var wwn: UInt64?
    public var blockSize: Int
    public var blockCount: UInt64
    /// SAS: the INQUIRY vendor identification as reported (8 bytes), which sedutil salts with there.
    public var vendorIdentification: [UInt8]?

    public init(interface: Interface, model: String, serialNumberField: [UInt8], firmware: String, wwn: UInt64?,
                blockSize: Int, blockCount: UInt64, vendorIdentification: [UInt8]? = nil) {
        self.vendorIdentification = vendorIdentification
        self.interface = interface
        self.model = model
        self.serialNumberField = serialNumberField
        self.firmware = firmware
        self.wwn = wwn
        self.blockSize = blockSize
        self.blockCount = blockCount
    }

    /// The serial number without padding, for display.
    public var serialNumber: String {
        String(decoding: serialNumberField, as: UTF8.self).trimmingCharacters(in: " \0")
    }

    public var capacityBytes: UInt64 { UInt64(blockSize) &* blockCount }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
