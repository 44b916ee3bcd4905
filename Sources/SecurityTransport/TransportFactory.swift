/// Opens the transport an address names. Device nodes are opened here; `sim:` addresses need the
/// simulator's adapter, which only executables and tests plug in (host libraries never depend on
/// the simulator).
public struct TransportFactory: Sendable {
    /// Opens drive `drive` of the simulated array in `arrayDirectory`, bounding each command.
    public typealias SimulatedOpener = @Sendable (_ arrayDirectory: String, _ drive: Int, _ commandTimeout: Double)
        -> any SecurityTransport

    /// How many drives the simulated array in `arrayDirectory` has (nil: it does not answer).
    public typealias SimulatedCounter = @Sendable (_ arrayDirectory: String, _ timeout: Double) -> Int?

    public let simulated: SimulatedOpener?
    public let simulatedDriveCount: SimulatedCounter?

    public init(simulated: SimulatedOpener? = nil, simulatedDriveCount: SimulatedCounter? = nil) {
        self.simulated = simulated
        self.simulatedDriveCount = simulatedDriveCount
    }

    public func open(_ address: DeviceAddress, commandTimeout: Double = 10) throws(TransportError) -> any SecurityTransport {
        switch address {
        case .simulated(let directory, let n):
            guard let simulated else {
                throw TransportError(.unsupportedProtocol, device: address.description,
                                     "this program was built without the simulator's transport; use a device node")
            }
            return simulated(directory, n, commandTimeout)
        case .device(let path):
            return try PassThroughTransport.open(path: path, commandTimeout: commandTimeout)
        }
    }
}
