/// Opens the transport an address names.
public enum TransportFactory {
    public static func open(_ address: DeviceAddress, commandTimeout: Double = 10) throws(TransportError) -> any SecurityTransport {
        switch address {
        case .simulated(let dir, let n):
            return SimulatorTransport(arrayDirectory: dir, drive: n, commandTimeout: commandTimeout)
        case .device(let path):
            return try PassThroughTransport.open(path: path, commandTimeout: commandTimeout)
        }
    }
}
