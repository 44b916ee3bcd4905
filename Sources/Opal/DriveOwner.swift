import Platform
import SecurityTransport

/// The one owner of a drive in concurrent code. Its sessions run one at a time, on a dispatch
/// queue of its own, so blocking pass-through calls never occupy Swift's cooperative pool and
/// many drives can be unlocked in parallel, each by its owner.
public actor DriveOwner {
    public nonisolated let address: DeviceAddress
    private nonisolated let executor: QueueExecutor
    private let factory: TransportFactory
    private let commandTimeout: Double
    private let time: any TimeSource
    private var opened: OpalDrive?

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(address: DeviceAddress, factory: TransportFactory, commandTimeout: Double = 10,
                time: any TimeSource = SystemTime()) {
        self.address = address
        self.factory = factory
        self.commandTimeout = commandTimeout
        self.time = time
        executor = QueueExecutor(label: "sedlock.drive \(address)")
    }

    /// Runs `body` with the drive, opening it (identify, Level 0 Discovery) on first use. A failure
    /// that may have left the link in an unknown state drops the handle, so the next call reopens.
    public func withDrive<R: Sendable>(_ body: @Sendable (OpalDrive) throws(OpalError) -> R) throws(OpalError) -> R {
        let drive = try open()
        do { return try body(drive) } catch {
            if case .transport = error.code { opened = nil }
            if error.code == .timedOut || error.code == .malformedResponse { opened = nil }
            throw error
        }
    }

    private func open() throws(OpalError) -> OpalDrive {
        if let opened { return opened }
        let transport: any SecurityTransport
        do { transport = try factory.open(address, commandTimeout: commandTimeout) } catch {
            throw OpalError(error.code == .timedOut ? .timedOut : .transport(error.code), device: address.description,
                            operation: "open", error.message)
        }
        let drive = try OpalDrive(transport: transport, timeout: commandTimeout, time: time)
        opened = drive
        return drive
    }
}
