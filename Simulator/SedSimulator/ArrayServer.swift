import Platform
import Foundation
import SimulatorLink
#if canImport(Glibc)
import Glibc
#endif

/// Serves an array on a Unix socket inside its directory, one thread per host connection.
public final class ArrayServer: @unchecked Sendable {
    public let array: SimulatedArray
    public let socketPath: String
    private let listenFD: Int32
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
        unlink(socketPath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SimulatorError.storage("socket(): \(errnoText())") }
        var addr: sockaddr_un
        do { addr = try LinkSocket.unixAddress(socketPath) } catch { close(fd); throw SimulatorError.storage("\(error)") }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        // Whoever may connect can drive the array: owner only, whatever the umask.
        guard bound == 0, chmod(socketPath, 0o600) == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw SimulatorError.storage("cannot listen on \(socketPath): \(errnoText())")
        }
        listenFD = fd
    }

    /// Accepts connections until the process ends.
    public func run() -> Never {
        while true {
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                FileHandle.standardError.write(Data("sedsim: accept failed: \(errnoText())\n".utf8))
                exit(1)
            }
            let connection = LinkSocket(adopting: client)
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
