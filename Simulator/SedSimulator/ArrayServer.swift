import Platform
import Foundation
import SimulatorLink
#if canImport(Glibc)
import Glibc
#endif

/// Serves an array on a Unix socket inside its directory, one thread per host connection.
public final class ArrayServer: Sendable {
    public let array: SimulatedArray
    public let socketPath: String
    private let listener: UnixSocket
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
        do { listener = try UnixSocket.listen(path: socketPath, mode: 0o600, backlog: 64) } catch {
            throw SimulatorError.storage("cannot listen on \(socketPath): \(error)")
        }
    }

    /// Accepts connections until the process ends.
    public func run() -> Never {
        while true {
            let client: UnixSocket?
            do { client = try listener.accept(deadline: .never) } catch {
                FileHandle.standardError.write(Data("sedsim: accept failed: \(error)\n".utf8))
                exit(1)
            }
            guard let client else { continue }
            let connection = LinkSocket(client)
            let array = self.array
            Thread.detachNewThread {
                Self.serve(connection, array: array)
            }
        }
    }

    private static func serve(_ connection: LinkSocket, array: SimulatedArray) {
        while true {
            let body: [UInt8]
            do { body = try connection.receive(deadline: .never) } catch { return }
            let response: LinkResponse
            do { response = array.handle(try LinkRequest.decode(body)) } catch {
                response = .failure(.illegalRequest, "\(error)")
            }
            do { try connection.send(response.encoded(), deadline: .after(seconds: 30)) } catch { return }
        }
    }
}
