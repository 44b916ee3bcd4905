import Foundation
import SecurityTransport
import SedSimulator

/// The test seam: a `SecurityTransport` that hands commands straight to a simulated drive in this
/// process (the same device-side code `sedsim serve` runs, without the socket).
public final class InProcessTransport: SecurityTransport {
    public let drive: SimulatedDrive
    public let address: DeviceAddress

    public init(_ drive: SimulatedDrive, index: Int = 0) {
        self.drive = drive
        address = .simulated(arrayDirectory: drive.directory.deletingLastPathComponent().path, drive: index)
    }

    public func identify() throws(TransportError) -> DeviceIdentity {
        let id = drive.identity
        return DeviceIdentity(interface: .simulated, model: id.model, serialNumberField: Array(id.serial.utf8),
                              firmware: id.firmware, wwn: id.wwn, blockSize: id.blockSize, blockCount: id.blockCount)
    }

    public func securityProtocolOut(protocolID: UInt8, spSpecific: UInt16, payload: [UInt8]) throws(TransportError) {
        do { try drive.securityProtocolOut(protocolID: protocolID, spSpecific: spSpecific, payload: payload) } catch {
            throw TransportError(.illegalRequest, device: address.description, "\(error)")
        }
    }

    public func securityProtocolIn(protocolID: UInt8, spSpecific: UInt16, allocationLength: Int) throws(TransportError) -> [UInt8] {
        do { return try drive.securityProtocolIn(protocolID: protocolID, spSpecific: spSpecific, allocationLength: allocationLength) } catch {
            throw TransportError(.illegalRequest, device: address.description, "\(error)")
        }
    }
}

/// A simulated array in a temporary directory, removed when the fixture goes away.
public final class ArrayFixture: Sendable {
    public let directory: URL
    public let array: SimulatedArray

    public init(drives: Int = 1, settings: DriveSettings = DriveSettings(), size: UInt64 = 16 << 20,
                subsystemClasses: [SimulatedSSC]? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sedlock-test-\(UUID().uuidString)")
        try SimulatedArray.create(at: directory, specification: ArraySpecification(drives: drives, sizeBytes: size, settings: settings,
                                                                                    subsystemClasses: subsystemClasses))
        array = try SimulatedArray(directory: directory)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Opens `sim:` addresses of this fixture's array in process (the test seam for drives).
    public var factory: TransportFactory {
        let array = self.array
        return TransportFactory(simulated: { _, n, _ in InProcessTransport(array.drives[n], index: n) },
                                simulatedDriveCount: { _, _ in array.drives.count })
    }

    /// The `sim:` address of drive `n`.
    public func address(_ n: Int) -> String { "sim:\(directory.path)/\(n)" }

    public func transport(_ n: Int = 0) -> InProcessTransport { InProcessTransport(array.drives[n], index: n) }

    /// Reopens the array from disk (what restarting `sedsim serve` does: a power cycle from persisted state).
    public func reopened() throws -> SimulatedArray { try SimulatedArray(directory: directory) }
}
