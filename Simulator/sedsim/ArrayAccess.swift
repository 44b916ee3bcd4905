import Platform
import Foundation
import SedSimulator
import SimulatorLink

/// Reaches an array through its running server, or opens it in-process when nobody serves it.
struct ArrayAccess {
    let directory: URL
    var socketPath: String { directory.appendingPathComponent(LinkPaths.socketName).path }

    init(_ directory: URL) { self.directory = directory }

    var isServed: Bool { (try? LinkSocket.connect(path: socketPath)) != nil }

    /// Sends a request to the server, or handles it in-process (drives powered on for this command only).
    func request(_ request: LinkRequest) throws -> [UInt8] {
        let response: LinkResponse
        if let socket = try? LinkSocket.connect(path: socketPath) {
            do {
                try socket.send(request.encoded(), deadline: .after(seconds: 30))
                response = try LinkResponse.decode(try socket.receive(deadline: .after(seconds: 30)))
            } catch { fail("\(error)") }
        } else {
            // Not an array: say so, and leave no lock file behind in someone else's directory.
            do { try SimulatedArray.checkIsArray(at: directory) } catch { fail("\(error)") }
            let lock: FileLock
            do { lock = try FileLock(path: directory.appendingPathComponent(LinkPaths.serveLockName).path) } catch {
                switch error {
                case .busy: fail("the array is being served but its socket does not answer (\(error)); retry in a moment")
                case .system(let cause): fail("cannot open \(directory.path): \(cause)")
                }
            }
            defer { withExtendedLifetime(lock) {} }
            do { response = try SimulatedArray(directory: directory).handle(request) } catch { fail("\(error)") }
        }
        guard response.status == .ok else {
            let what: String
            switch response.status {
            case .dataProtect: what = "data protect"
            case .noSuchDrive: what = "no such drive"
            case .illegalRequest: what = "illegal request"
            default: what = "failed"
            }
            fail("drive \(request.drive): \(what): \(response.message)")
        }
        return response.payload
    }

    func driveCount() throws -> Int {
        let payload = try request(LinkRequest(.listDrives, drive: 0))
        guard let list = try? JSONDecoder().decode([LinkDeviceIdentity].self, from: Data(payload)) else {
            fail("malformed drive list")
        }
        return list.count
    }

    func identity(_ drive: Int) throws -> LinkDeviceIdentity {
        let payload = try request(LinkRequest(.identify, drive: drive))
        guard let id = try? JSONDecoder().decode(LinkDeviceIdentity.self, from: Data(payload)) else { fail("malformed identity") }
        return id
    }
}
