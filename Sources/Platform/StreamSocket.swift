#if canImport(Glibc)
import Glibc
#endif
import Failures

/// A stream socket with deadlines on every wait: Unix sockets for the simulator link, sedlockd's
/// control socket and its clients; TCP on loopback for the metrics endpoint. Closed when the last
/// reference goes.
public final class StreamSocket: Sendable {
    /// Why a socket operation did not complete.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case system(SystemError)
        /// The deadline passed before the peer was ready.
        case timedOut
        /// The peer closed the connection (`midMessage`: after part of a message).
        case closed(midMessage: Bool)
        /// The socket path does not fit a sockaddr_un.
        case pathTooLong(String, limit: Int)
        /// A TCP host that is not a numeric IPv4 or IPv6 address.
        case notAnAddress(String)

        public var description: String {
            switch self {
            case .system(let error): return "\(error)"
            case .timedOut: return "timed out"
            case .closed(let mid): return mid ? "the peer closed the connection mid-message" : "the peer closed the connection"
            case .pathTooLong(let path, let limit):
                return "socket path \(path) is longer than \(limit) bytes; use a shorter directory"
            case .notAnAddress(let host): return "\(host) is not a numeric IPv4 or IPv6 address"
            }
        }
    }

    /// Who is at the other end of a connection, as the kernel vouches (SO_PEERCRED).
    public struct PeerCredentials: Sendable, Hashable {
        public let pid: Int32
        public let uid: UInt32
        public let gid: UInt32
    }

    public let fd: Int32

    public init(adopting fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// Ends both directions now (whoever waits on it sees the hang-up); the descriptor stays
    /// open until this object goes.
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// Binds and listens at `path` (replacing a stale socket file), with `mode` whatever the umask.
    public static func listen(path: String, mode: mode_t = 0o600, backlog: Int32 = 128) throws(Failure) -> StreamSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(SystemError("socket")) }
        let listener = StreamSocket(adopting: fd)
        var addr = try address(path)
        unlink(path)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw .system(SystemError("bind", path: path)) }
        guard chmod(path, mode) == 0 else { throw .system(SystemError("chmod", path: path)) }
        guard Glibc.listen(fd, backlog) == 0 else { throw .system(SystemError("listen", path: path)) }
        return listener
    }

    /// Binds and listens on a TCP address: `host` a numeric IPv4 or IPv6 address, `port` 0 for
    /// any free port (`localPort` says which).
    public static func listen(host: String, port: UInt16, backlog: Int32 = 64) throws(Failure) -> StreamSocket {
        var v4 = in_addr(), v6 = in6_addr()
        let isV6 = inet_pton(AF_INET6, host, &v6) == 1
        guard isV6 || inet_pton(AF_INET, host, &v4) == 1 else { throw .notAnAddress(host) }
        let fd = socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(SystemError("socket")) }
        let listener = StreamSocket(adopting: fd)
        var on: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let where_ = isV6 ? "[\(host)]:\(port)" : "\(host):\(port)"
        let bound: Int32
        if isV6 {
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = port.bigEndian
            addr.sin6_addr = v6
            bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            addr.sin_addr = v4
            bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard bound == 0 else { throw .system(SystemError("bind", path: where_)) }
        guard Glibc.listen(fd, backlog) == 0 else { throw .system(SystemError("listen", path: where_)) }
        return listener
    }

    /// The local port of a TCP socket (0 for another kind).
    public var localPort: UInt16 {
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return 0 }
        // sin_port and sin6_port sit at the same offset, right after the family.
        return UInt16(bigEndian: storage.sin6_port)
    }

    /// Connects to the socket at `path`.
    public static func connect(path: String) throws(Failure) -> StreamSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(SystemError("socket")) }
        let connection = StreamSocket(adopting: fd)
        var addr = try address(path)
        let rc = withUnsafePointer(to: &addr) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                retryingEINTR { Glibc.connect(fd, address, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        guard rc == 0 else { throw .system(SystemError("connect", path: path)) }
        return connection
    }

    public static func address(_ path: String) throws(Failure) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else { throw .pathTooLong(path, limit: capacity - 1) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return addr
    }

    /// Waits for a connection until `deadline`; nil when it passed first.
    public func accept(deadline: Deadline) throws(Failure) -> StreamSocket? {
        while true {
            do { try wait(for: Int16(POLLIN), deadline: deadline) } catch {
                if case .timedOut = error { return nil }
                throw error
            }
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                return StreamSocket(adopting: client)
            }
            // A client that gave up between poll and accept, or a signal: wait again.
            if [EINTR, EAGAIN, ECONNABORTED, EPROTO].contains(errno) { continue }
            throw .system(SystemError("accept"))
        }
    }

    public func peerCredentials() throws(Failure) -> PeerCredentials {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Glibc hides the type behind _GNU_SOURCE).
        var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
              Int(length) == MemoryLayout.size(ofValue: credentials) else {
            throw .system(SystemError("getsockopt(SO_PEERCRED)"))
        }
        return PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
    }

    /// Sends every byte before `deadline`.
    public func send(_ bytes: [UInt8], deadline: Deadline) throws(Failure) {
        var sent = 0
        while sent < bytes.count {
            try wait(for: Int16(POLLOUT), deadline: deadline)
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress.map { $0 + sent }, bytes.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw .system(SystemError("send"))
            }
            sent += n
        }
    }

    /// Receives what has arrived (at most `limit` bytes) once something has, before `deadline`;
    /// an empty result means the peer closed its end.
    public func receiveSome(limit: Int, deadline: Deadline) throws(Failure) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max(1, limit))
        let n = try buffer.withUnsafeMutableBytes { raw in Result { () throws(Failure) in try receive(into: raw, deadline: deadline) } }.get()
        return Array(buffer[0..<n])
    }

    /// Receives exactly `count` bytes before `deadline`. The buffer grows with what arrives (at
    /// most 1 MiB ahead), so a peer that announces a large message and sends nothing costs little.
    public func receiveExactly(_ count: Int, deadline: Deadline) throws(Failure) -> [UInt8] {
        let step = 1 << 20
        var buffer = [UInt8](repeating: 0, count: min(count, step))
        var got = 0
        while got < count {
            if got == buffer.count { buffer.append(contentsOf: repeatElement(0, count: min(step, count - got))) }
            let n = try buffer.withUnsafeMutableBytes { raw in
                Result { () throws(Failure) in try receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[got...]), deadline: deadline) }
            }.get()
            guard n > 0 else { throw .closed(midMessage: got > 0) }
            got += n
        }
        return buffer
    }

    /// One recv once data (or the peer's close, 0) is there.
    private func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws(Failure) -> Int {
        while true {
            try wait(for: Int16(POLLIN), deadline: deadline)
            let n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw .system(SystemError("recv"))
            }
            return n
        }
    }

    /// Waits until the socket is ready for `events` (POLLIN, POLLOUT); hang-ups count as ready so
    /// that the following call sees them.
    public func wait(for events: Int16, deadline: Deadline) throws(Failure) {
        while true {
            let remaining = deadline.remainingMilliseconds
            guard remaining > 0 else { throw .timedOut }
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&pfd, 1, Int32(remaining))
            if rc > 0 { return }
            if rc < 0 && errno != EINTR { throw .system(SystemError("poll")) }
        }
    }
}

extension StreamSocket.Failure: SedlockError {
    public var kind: FailureKind {
        switch self {
        case .system(let error): error.kind
        case .timedOut, .closed: .unreachable
        case .pathTooLong, .notAnAddress: .badRequest
        }
    }
    public var reason: String {
        switch self {
        case .system(let error): error.reason
        case .timedOut: "socket.timedOut"
        case .closed: "socket.closed"
        case .pathTooLong: "socket.pathTooLong"
        case .notAnAddress: "socket.notAnAddress"
        }
    }
    public var summary: String { description }
}
