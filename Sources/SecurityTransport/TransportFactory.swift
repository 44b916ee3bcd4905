/// Opens the transport an address names.
public enum TransportFactory {
    public static func open(_ address: DeviceAddress, commandTimeout: Double = 10) throws(TransportError) -> any SecurityTransport {
        switch address {
        case .simulated(let dir, let n):
            return SimulatorTransport(arrayDirectory: dir, drive: n, commandTimeout: commandTimeout)
        case .device(let path):
            // SCSI, ATA (SAT) and NVMe pass-through arrive with the real-transport work (sg_pt).
            throw TransportError(.unreachable, device: path,
                                 "real device transports are not built yet; address a simulated drive as sim:DIR/N")
        }
    }
}
