/// IF-SEND / IF-RECV to a real device node, on the bus it was found to speak:
/// SCSI SECURITY PROTOCOL IN/OUT (SAS, and SATA through the kernel's SAT layer), ATA TRUSTED
/// SEND/RECEIVE in ATA PASS-THROUGH(16) or (12) (SATA the SAT layer does not translate), or NVMe
/// Security Send/Receive.
public final class PassThroughTransport: SecurityTransport {
    public enum Bus: String, Sendable, Codable {
        case scsiSecurityProtocol = "scsi"
        case ataPassThrough16 = "ata16"
        case ataPassThrough12 = "ata12"
        case nvme
    }

    public let address: DeviceAddress
    public let bus: Bus
    public let identity: DeviceIdentity
    public let commandTimeoutSeconds: Int
    private let device: PassThroughDevice

    /// Opens `path`, identifies the device and finds which security transport reaches it.
    public static func open(path: String, commandTimeout: Double = 10) throws(TransportError) -> PassThroughTransport {
        let device = try PassThroughDevice(path: path)
        let timeout = max(1, Int(commandTimeout.rounded(.up)))
        switch device.nodeType {
        case .nvme:
            let identity = try nvmeIdentity(device, timeout: timeout)
            return PassThroughTransport(device: device, bus: .nvme, identity: identity, timeout: timeout)
        case .scsi:
            let identity = try scsiIdentity(device, timeout: timeout)
            let bus = try securityBus(device, identity: identity, timeout: timeout)
            return PassThroughTransport(device: device, bus: bus, identity: identity, timeout: timeout)
        }
    }

    private init(device: PassThroughDevice, bus: Bus, identity: DeviceIdentity, timeout: Int) {
        self.device = device
        self.bus = bus
        self.identity = identity
        self.commandTimeoutSeconds = timeout
        self.address = .device(path: device.path)
    }

    public func identify() throws(TransportError) -> DeviceIdentity { identity }

    public func securityProtocolOut(protocolID: UInt8, spSpecific: UInt16, payload: [UInt8]) throws(TransportError) {
        switch bus {
        case .nvme:
            let command = SecurityCommands.nvmeSecurity(.send, protocolID: protocolID, spSpecific: spSpecific,
                                                        length: UInt32(payload.count))
            _ = try device.nvmeAdmin(command.submissionEntry(), dataOut: payload, timeoutSeconds: commandTimeoutSeconds)
        case .scsiSecurityProtocol:
            let cdb = SecurityCommands.scsiSecurityProtocol(.send, protocolID: protocolID, spSpecific: spSpecific,
                                                            length: UInt32(payload.count))
            try expectGood(device.scsi(cdb, dataOut: payload, timeoutSeconds: commandTimeoutSeconds))
        case .ataPassThrough16, .ataPassThrough12:
            // ATA moves whole 512-byte blocks: pad with zeros.
            var padded = payload + [UInt8](repeating: 0, count: (512 - payload.count % 512) % 512)
            defer { padded.wipe() }  // it may carry a PIN
            let build = bus == .ataPassThrough16 ? SecurityCommands.ataPassThrough16 : SecurityCommands.ataPassThrough12
            let cdb = build(.send, protocolID, spSpecific, UInt32(padded.count))
            try expectGood(device.scsi(cdb, dataOut: padded, timeoutSeconds: commandTimeoutSeconds))
        }
    }

    public func securityProtocolIn(protocolID: UInt8, spSpecific: UInt16, allocationLength: Int) throws(TransportError) -> [UInt8] {
        try Self.receive(device, bus: bus, protocolID: protocolID, spSpecific: spSpecific, length: allocationLength,
                         timeout: commandTimeoutSeconds)
    }

    private static func receive(_ device: PassThroughDevice, bus: Bus, protocolID: UInt8, spSpecific: UInt16, length: Int,
                                timeout: Int) throws(TransportError) -> [UInt8] {
        switch bus {
        case .nvme:
            let command = SecurityCommands.nvmeSecurity(.receive, protocolID: protocolID, spSpecific: spSpecific, length: UInt32(length))
            return try device.nvmeAdmin(command.submissionEntry(), dataInLength: length, timeoutSeconds: timeout)
        case .scsiSecurityProtocol:
            let cdb = SecurityCommands.scsiSecurityProtocol(.receive, protocolID: protocolID, spSpecific: spSpecific, length: UInt32(length))
            return try expectGood(device.scsi(cdb, dataInLength: length, timeoutSeconds: timeout), device: device.path)
        case .ataPassThrough16, .ataPassThrough12:
            let rounded = (length + 511) / 512 * 512
            let build = bus == .ataPassThrough16 ? SecurityCommands.ataPassThrough16 : SecurityCommands.ataPassThrough12
            let data = try expectGood(device.scsi(build(.receive, protocolID, spSpecific, UInt32(rounded)),
                                                  dataInLength: rounded, timeoutSeconds: timeout), device: device.path)
            return Array(data.prefix(length))
        }
    }

    private func expectGood(_ outcome: PassThroughDevice.SCSIOutcome) throws(TransportError) {
        _ = try Self.expectGood(outcome, device: device.path)
    }

    @discardableResult
    private static func expectGood(_ outcome: PassThroughDevice.SCSIOutcome, device: String) throws(TransportError) -> [UInt8] {
        if let sense = outcome.sense {
            // A SAT layer answering CK_COND reports success as RECOVERED ERROR with the ATA registers.
            if sense.condition == .recovered || sense.condition == .noSense {
                if let status = sense.ataStatus, status & 0x01 != 0 {
                    throw TransportError(.illegalRequest, device: device, "the ATA device aborted the command (status 0x\(format2(status)), error 0x\(format2(sense.ataError ?? 0)))")
                }
                return outcome.dataIn
            }
            if sense.condition == .abortedCommand, let status = sense.ataStatus, status & 0x01 != 0 {
                throw TransportError(.unsupportedProtocol, device: device, "the ATA device aborted the command (status 0x\(format2(status)), error 0x\(format2(sense.ataError ?? 0))); TRUSTED SEND/RECEIVE unsupported or refused")
            }
            throw sense.transportError(device: device)
        }
        guard outcome.status == 0 else {
            throw TransportError(.ioFailure, device: device, "CHECK CONDITION without sense data")
        }
        return outcome.dataIn
    }

    // MARK: Identification

    private static func nvmeIdentity(_ device: PassThroughDevice, timeout: Int) throws(TransportError) -> DeviceIdentity {
        let controllerData = try device.nvmeAdmin(NVMeAdminCommand.identify(cns: 0x01, namespaceID: 0).submissionEntry(),
                                                  dataInLength: 4096, timeoutSeconds: timeout)
        guard let controller = IdentityPages.nvmeIdentifyController(controllerData) else {
            throw TransportError(.ioFailure, device: device.path, "malformed Identify Controller data")
        }
        guard controller.securitySendReceiveSupported else {
            throw TransportError(.unsupportedProtocol, device: device.path,
                                 "the controller does not support Security Send/Receive (OACS bit 0 clear): not a self-encrypting drive")
        }
        let namespace = (try? device.nvmeAdmin(NVMeAdminCommand.identify(cns: 0x00, namespaceID: 1).submissionEntry(),
                                               dataInLength: 4096, timeoutSeconds: timeout)).flatMap(IdentityPages.nvmeIdentifyNamespace)
        return DeviceIdentity(interface: .nvme, model: controller.model, serialNumberField: controller.serialNumberField,
                              firmware: controller.firmware, wwn: namespace?.eui64, blockSize: namespace?.blockSize ?? 512,
                              blockCount: namespace?.blockCount ?? 0)
    }

    private static func inquiry(_ device: PassThroughDevice, page: UInt8?, timeout: Int) throws(TransportError) -> [UInt8] {
        let length = 1024
        let cdb: [UInt8] = [0x12, page == nil ? 0 : 1, page ?? 0, UInt8(length >> 8), UInt8(length & 0xFF), 0]
        return try expectGood(device.scsi(cdb, dataInLength: length, timeoutSeconds: timeout), device: device.path)
    }

    private static func scsiIdentity(_ device: PassThroughDevice, timeout: Int) throws(TransportError) -> DeviceIdentity {
        guard let standard = IdentityPages.standardInquiry(try inquiry(device, page: nil, timeout: timeout)) else {
            throw TransportError(.ioFailure, device: device.path, "malformed INQUIRY data")
        }
        guard standard.peripheralDeviceType == 0 else {
            throw TransportError(.unsupportedProtocol, device: device.path,
                                 "peripheral device type \(standard.peripheralDeviceType) is not a disk")
        }
        let pages = IdentityPages.supportedPages((try? inquiry(device, page: 0x00, timeout: timeout)) ?? [])
        var capacity: IdentityPages.Capacity?
        let capacityCDB: [UInt8] = [0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]
        if let data = try? expectGood(device.scsi(capacityCDB, dataInLength: 32, timeoutSeconds: timeout), device: device.path) {
            capacity = IdentityPages.readCapacity16(data)
        }
        let wwn = pages.contains(0x83) ? (try? inquiry(device, page: 0x83, timeout: timeout)).flatMap(IdentityPages.naaIdentifier) : nil
        // SATA behind a SAT layer: the IDENTIFY data (with the raw 20-byte serial) is in page 0x89.
        if pages.contains(0x89) || standard.vendor == "ATA",
           let page = try? inquiry(device, page: 0x89, timeout: timeout),
           let ata = IdentityPages.ataIdentifyFromInformationPage(page).flatMap(IdentityPages.ataIdentify) {
            return DeviceIdentity(interface: .sata, model: ata.model, serialNumberField: ata.serialNumberField,
                                  firmware: ata.firmware, wwn: ata.wwn ?? wwn, blockSize: capacity?.blockSize ?? ata.logicalSectorSize,
                                  blockCount: capacity?.blockCount ?? ata.sectors)
        }
        let serial = pages.contains(0x80) ? (try? inquiry(device, page: 0x80, timeout: timeout)).flatMap(IdentityPages.unitSerialNumber) : nil
        let model = [standard.vendor, standard.product].filter { !$0.isEmpty }.joined(separator: " ")
        return DeviceIdentity(interface: standard.vendor == "ATA" ? .sata : .sas, model: model, serialNumberField: serial ?? [],
                              firmware: standard.revision, wwn: wwn, blockSize: capacity?.blockSize ?? 512,
                              blockCount: capacity?.blockCount ?? 0, vendorIdentification: standard.vendorField)
    }

    /// SCSI SECURITY PROTOCOL IN first (SAS, and SATA the SAT layer translates); for SATA that
    /// refuses it, ATA PASS-THROUGH(16) then (12). The probe asks protocol 0x00 (supported protocols).
    private static func securityBus(_ device: PassThroughDevice, identity: DeviceIdentity, timeout: Int) throws(TransportError) -> Bus {
        let candidates: [Bus] = identity.interface == .sata
            ? [.scsiSecurityProtocol, .ataPassThrough16, .ataPassThrough12] : [.scsiSecurityProtocol]
        var lastError: TransportError?
        for bus in candidates {
            do {
                _ = try receive(device, bus: bus, protocolID: 0x00, spSpecific: 0, length: 512, timeout: timeout)
                return bus
            } catch {
                guard error.code == .illegalRequest || error.code == .unsupportedProtocol else { throw error }
                lastError = error
            }
        }
        throw TransportError(.unsupportedProtocol, device: device.path,
                             "no security protocol transport answers (\(lastError?.message ?? "refused")); the drive is not a self-encrypting drive, or ATA pass-through of TRUSTED commands is blocked (libata.allow_tpm=0)")
    }
}
