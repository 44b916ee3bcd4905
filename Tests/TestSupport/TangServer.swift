import Foundation
import Platform
#if canImport(Glibc)
import Glibc
#endif

/// A real tang server (Debian's `tang` package) on 127.0.0.1: its own signing and exchange keys
/// made by `tangd-keygen`, and one `tangd` per connection, as systemd's `tangd.socket`
/// (Accept=yes) runs it. `stop()` closes the port, so clevis then meets a refused connection, as
/// with a tang server that is down; `start()` opens it again on the same port.
public final class TangServer: @unchecked Sendable {
    public static let daemon = "/usr/libexec/tangd"
    public static let keygen = "/usr/libexec/tangd-keygen"
    public let database: String
    public private(set) var port: UInt16 = 0
    private let lock = NSLock()
    private var listener: Int32 = -1
    private var running = false
    private var thread: Thread?
    private var children: [SpawnedProcess] = []
    private var held: [Int32] = []
    private var hanging = false

    public var url: String { "http://127.0.0.1:\(port)" }
    /// The tang pin's configuration for this server.
    public var clevisConfig: String { #"{"url":"\#(url)"}"# }

    public init() throws {
        database = FileManager.default.temporaryDirectory.appendingPathComponent("tang-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: database, withIntermediateDirectories: true)
        let made = try SpawnedProcess(Self.keygen, [database])
        guard made.wait() == 0 else { throw TangFailure("\(Self.keygen) \(database) failed") }
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: database)
    }

    /// Listens (again) on 127.0.0.1, on the port it had before if it had one.
    public func start() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TangFailure("socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw TangFailure("bind/listen on 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        lock.withLock {
            port = UInt16(bigEndian: address.sin_port)
            listener = fd
            running = true
        }
        let thread = Thread { [weak self] in self?.serve(fd) }
        thread.start()
        self.thread = thread
    }

    /// While set, connections are accepted and then never answered (a tang server that hangs,
    /// or a firewall that swallows the replies); cleared, they are served again.
    public func hang(_ on: Bool) {
        let released = lock.withLock { () -> [Int32] in
            hanging = on
            defer { if !on { held = [] } }
            return on ? [] : held
        }
        for fd in released { close(fd) }
    }

    /// Closes the port and ends every tangd it started.
    public func stop() {
        let (fd, started) = lock.withLock { () -> (Int32, [SpawnedProcess]) in
            running = false
            defer { listener = -1; children = [] }
            return (listener, children)
        }
        if fd >= 0 { Glibc.shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
        hang(false)
        for child in started { child.stop() }
    }

    private func serve(_ fd: Int32) {
        while lock.withLock({ running && listener == fd }) {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            let connection = accept(fd, nil, nil)
            guard connection >= 0 else { continue }
            if lock.withLock({ hanging ? { held.append(connection); return true }() : false }) { continue }
            if let child = try? SpawnedProcess(Self.daemon, [database], stdin: connection, stdout: connection) {
                lock.withLock {
                    children.removeAll { !$0.isRunning }
                    children.append(child)
                }
            }
            close(connection)
        }
    }
}

public struct TangFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
