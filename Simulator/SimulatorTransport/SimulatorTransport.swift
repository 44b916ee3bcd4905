import Foundation
import Platform
import SecurityTransport
import SimulatorLink

/// The transport to drive N of a `sedsim serve` array, over the array's Unix socket.
/// `connection` is guarded by `lock`; everything else is immutable.
public final class SimulatorTransport: SecurityTransport, @unchecked Sendable {
    public let address: DeviceAddress
    public let arrayDirectory: String
    public let drive: Int
    /// Bound on each command; a dropped answer or a hung simulator surfaces as `.timedOut`.
    public let commandTimeout: Double
    private let lock = NSLock()
    private var connection: LinkSocket?

    public init(arrayDirectory: String, drive: Int, commandTimeout: Double = 10) {
        self.arrayDirectory = arrayDirectory
        self.drive = drive
        self.commandTimeout = commandTimeout
        self.address = .simulated(arrayDirectory: arrayDirectory, drive: drive)
    }

    public var socketPath: String { (arrayDirectory as NSString).appendingPathComponent(LinkPaths.socketName) }

    /// Sends one link request and returns the response; the connection is dropped after any failure.
    public func exchange(_ request: LinkRequest) throws(TransportError) -> LinkResponse {
        lock.lock()
        defer { lock.unlock() }
        let deadline = Deadline.after(seconds: commandTimeout)
        do {
            let socket: LinkSocket
            if let existing = connection { socket = existing } else {
                socket = try LinkSocket.connect(path: socketPath)
                connection = socket
            }
            var encoded = request.encoded()
            defer { encoded.wipe() }  // it may carry a PIN
            try socket.send(encoded, deadline: deadline)
            return try LinkResponse.decode(try socket.receive(deadline: deadline))
        } catch {
            connection = nil
            switch error {
            case .timedOut:
                throw TransportError(.timedOut, device: address.description,
                                     "no answer within \(commandTimeout) s; check that `sedsim serve \(arrayDirectory)` is running")
            case .cannotConnect(let message, permissionDenied: true):
                throw TransportError(.unreachable, device: address.description,
                                     "\(message); the socket is only for the user serving the array: run as that user")
            case .cannotConnect(let message, permissionDenied: false):
                throw TransportError(.unreachable, device: address.description,
                                     "\(message); start it with `sedsim serve \(arrayDirectory)`")
            default:
                throw TransportError(.ioFailure, device: address.description, "\(error)")
            }
        }
    }

    private func checked(_ response: LinkResponse) throws(TransportError) -> [UInt8] {
        switch response.status {
        case .ok: return response.payload
        case .dataProtect: throw TransportError(.dataProtect, device: address.description, response.message)
        case .illegalRequest: throw TransportError(.illegalRequest, device: address.description, response.message)
        case .noSuchDrive: throw TransportError(.unreachable, device: address.description, response.message)
        case .failed: throw TransportError(.ioFailure, device: address.description, response.message)
        }
    }

    public func identify() throws(TransportError) -> DeviceIdentity {
        let payload = try checked(exchange(LinkRequest(.identify, drive: drive)))
        guard let id = try? JSONDecoder().decode(LinkDeviceIdentity.self, from: Data(payload)) else {
            throw TransportError(.ioFailure, device: address.description, "the simulator's identity answer is malformed")
        }
        return DeviceIdentity(interface: .simulated, model: id.model, serialNumberField: Array(id.serial.utf8),
                              firmware: id.firmware, wwn: id.wwn, blockSize: id.blockSize, blockCount: id.blockCount)
    }

    public func securityProtocolOut(protocolID: UInt8, spSpecific: UInt16, payload: [UInt8]) throws(TransportError) {
        _ = try checked(exchange(LinkRequest(.securityProtocolOut, drive: drive, protocolID: protocolID,
                                             spSpecific: spSpecific, length: UInt32(payload.count), payload: payload)))
    }

    public func securityProtocolIn(protocolID: UInt8, spSpecific: UInt16, allocationLength: Int) throws(TransportError) -> [UInt8] {
        try checked(exchange(LinkRequest(.securityProtocolIn, drive: drive, protocolID: protocolID,
                                         spSpecific: spSpecific, length: UInt32(clamping: allocationLength))))
    }

    /// The drives of the array this transport's simulator serves.
    public static func listDrives(arrayDirectory: String, timeout: Double = 10) throws(TransportError) -> [LinkDeviceIdentity] {
        let transport = SimulatorTransport(arrayDirectory: arrayDirectory, drive: 0, commandTimeout: timeout)
        let payload = try transport.checked(transport.exchange(LinkRequest(.listDrives, drive: 0)))
        guard let list = try? JSONDecoder().decode([LinkDeviceIdentity].self, from: Data(payload)) else {
            throw TransportError(.ioFailure, device: arrayDirectory, "the simulator's drive list is malformed")
        }
        return list
    }
}

extension TransportFactory {
    /// Device nodes and simulated drives (`sim:DIR/N`), for executables and tests.
    public static let withSimulator = TransportFactory(
        simulated: { directory, drive, timeout in SimulatorTransport(arrayDirectory: directory, drive: drive, commandTimeout: timeout) },
        simulatedDriveCount: { directory, timeout in (try? SimulatorTransport.listDrives(arrayDirectory: directory, timeout: timeout))?.count })
}
