import Platform
import Foundation
import SimulatorLink
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Serves an array on a Unix socket inside its directory, one thread per host connection.
public final class ArrayServer: Sendable {
    public let array: SimulatedArray
    public let socketPath: String
    private let listener: StreamSocket
    private let activeConnections = Mutex(0)
    private let serveLock: FileLock

    /// Binds the socket; only one server may serve a directory at a time.
    public init(array: SimulatedArray) throws(SimulatorError) {
        self.array = array
        socketPath = array.directory.appendingPathComponent(LinkPaths.socketName).path
        do { serveLock = try FileLock(path: array.directory.appendingPathComponent(LinkPaths.serveLockName).path) } catch {
            switch error {
            case .busy: throw SimulatorError.busy("another sedsim is already serving \(array.directory.path) (\(error))")
            case .system(let cause): throw SimulatorError.storage("cannot lock \(array.directory.path): \(cause)")
            }
        }
        // Whoever may connect can drive the array: owner only, whatever the umask.
        do { listener = try StreamSocket.listen(path: socketPath, mode: 0o600, backlog: 64) } catch {
            throw SimulatorError.storage("cannot listen on \(socketPath): \(error)")
        }
    }

    /// Host connections served at once; more are closed at once (a host opens one per drive).
    public static let maximumConnections = 1024
    /// Seconds a host has to deliver the rest of a frame once its header arrived, and to take a reply.
    public static let frameTimeout = 30.0

    /// Accepts connections until the process ends. A failed accept (out of descriptors: EMFILE,
    /// ENFILE) is reported and retried after a pause; the connections already open keep being served.
    public func run() -> Never {
        while true {
            let client: StreamSocket?
            do { client = try listener.accept(deadline: .never) } catch {
                FileHandle.standardError.write(Data("sedsim: accept failed: \(error); retrying\n".utf8))
                Thread.sleep(forTimeInterval: 0.1)
                continue
            }
            guard let client else { continue }
            let admitted = activeConnections.withLock { count -> Bool in
                guard count < Self.maximumConnections else { return false }
                count += 1
                return true
            }
            guard admitted else { continue }  // closed when `client` goes
            let connection = LinkSocket(client)
            let array = self.array
            Thread.detachNewThread { [self] in
                Self.serve(connection, array: array)
                activeConnections.withLock { $0 -= 1 }
            }
        }
    }

    private static func serve(_ connection: LinkSocket, array: SimulatedArray) {
        while true {
            let body: [UInt8]
            // Idle between commands as long as the host likes; a frame once begun must finish in time.
            do { body = try connection.receive(deadline: .never, bodyTimeout: frameTimeout) } catch { return }
            let response: LinkResponse
            do { response = array.handle(try LinkRequest.decode(body)) } catch {
                response = .failure(.illegalRequest, "\(error)")
            }
            do { try connection.send(response.encoded(), deadline: .after(seconds: frameTimeout)) } catch { return }
        }
    }
}
