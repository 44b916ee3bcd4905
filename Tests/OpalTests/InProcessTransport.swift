import Foundation
import SecurityTransport
import SedSimulator

/// The test seam: a `SecurityTransport` that hands commands straight to a simulated drive in this
/// process (the same device-side code `sedsim serve` runs, without the socket).
final class InProcessTransport: SecurityTransport, @unchecked Sendable {
    let drive: SimulatedDrive
    let address: DeviceAddress

    init(_ drive: SimulatedDrive, index: Int = 0) {
        self.drive = drive
        address = .simulated(arrayDirectory: drive.directory.deletingLastPathComponent().path, drive: index)
    }

    func identify() throws(TransportError) -> DeviceIdentity {
        let id = drive.identity
        return DeviceIdentity(interface: .simulated, model: id.model, serialNumberField: Array(id.serial.utf8),
                              firmware: id.firmware, wwn: id.wwn, blockSize: id.blockSize, blockCount: id.blockCount)
    }

    func securityProtocolOut(protocolID: UInt8, spSpecific: UInt16, payload: [UInt8]) throws(TransportError) {
        do { try drive.securityProtocolOut(protocolID: protocolID, spSpecific: spSpecific, payload: payload) } catch {
            throw TransportError(.illegalRequest, device: address.description, "\(error)")
        }
    }

    func securityProtocolIn(protocolID: UInt8, spSpecific: UInt16, allocationLength: Int) throws(TransportError) -> [UInt8] {
        do { return try drive.securityProtocolIn(protocolID: protocolID, spSpecific: spSpecific, allocationLength: allocationLength) } catch {
            throw TransportError(.illegalRequest, device: address.description, "\(error)")
        }
    }
}

/// A simulated array in a temporary directory, removed when the fixture goes away.
final class ArrayFixture {
    let directory: URL
    let array: SimulatedArray

    init(drives: Int = 1, settings: DriveSettings = DriveSettings(), size: UInt64 = 16 << 20) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sedlock-test-\(UUID().uuidString)")
        try SimulatedArray.create(at: directory, specification: ArraySpecification(drives: drives, sizeBytes: size, settings: settings))
        array = try SimulatedArray(directory: directory)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func transport(_ n: Int = 0) -> InProcessTransport { InProcessTransport(array.drives[n], index: n) }

    /// Reopens the array from disk (what restarting `sedsim serve` does: a power cycle from persisted state).
    func reopened() throws -> SimulatedArray { try SimulatedArray(directory: directory) }
}
