#if canImport(Glibc)
import Glibc
#endif
import Platform

/// A connected Unix stream socket carrying length-framed link messages, with deadlines.
public final class LinkSocket: @unchecked Sendable {
    /// Largest frame either side accepts: a 16 MiB media transfer plus headers.
    public static let maximumFrame = Int(SEDSIM_LINK_MAX_FRAME)
    public let fd: Int32

    public init(adopting fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// Connects to the socket at `path`.
    public static func connect(path: String) throws(LinkError) -> LinkSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LinkError.io("socket(): \(errnoText())") }
        let sock = LinkSocket(adopting: fd)
        var addr = try unixAddress(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else { throw LinkError.io("cannot connect to simulator socket \(path): \(errnoText())") }
        return sock
    }

    public static func unixAddress(_ path: String) throws(LinkError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else {
            throw LinkError.io("socket path \(path) is longer than \(capacity - 1) bytes; use a shorter directory")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return addr
    }

    /// Sends one frame.
    public func send(_ body: [UInt8], deadline: Deadline) throws(LinkError) {
        var frame: [UInt8] = []
        frame.reserveCapacity(body.count + 4)
        frame.appendBE(UInt32(body.count))
        frame.append(contentsOf: body)
        var sent = 0
        while sent < frame.count {
            try wait(for: Int16(POLLOUT), deadline: deadline)
            let n = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, frame.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw LinkError.io("send to simulator: \(errnoText())")
            }
            sent += n
        }
    }

    /// Receives one frame, or throws `.closed` on an orderly shutdown before any byte.
    public func receive(deadline: Deadline) throws(LinkError) -> [UInt8] {
        let header = try receiveExactly(4, deadline: deadline, allowCleanClose: true)
        let length = Int(header.readBE(0, 4))
        guard length <= Self.maximumFrame else { throw LinkError.malformed("frame of \(length) bytes exceeds the limit") }
        return try receiveExactly(length, deadline: deadline, allowCleanClose: false)
    }

    private func receiveExactly(_ count: Int, deadline: Deadline, allowCleanClose: Bool) throws(LinkError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            try wait(for: Int16(POLLIN), deadline: deadline)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n == 0 {
                if got == 0 && allowCleanClose { throw LinkError.closed }
                throw LinkError.io("simulator connection closed mid-message")
            }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw LinkError.io("receive from simulator: \(errnoText())")
            }
            got += n
        }
        return buffer
    }

    private func wait(for events: Int16, deadline: Deadline) throws(LinkError) {
        while true {
            let remaining = deadline.remainingMilliseconds
            guard remaining > 0 else { throw LinkError.timedOut("the simulator did not answer in time") }
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&pfd, 1, Int32(min(remaining, Int(Int32.max))))
            if rc > 0 { return }
            if rc < 0 && errno != EINTR { throw LinkError.io("poll: \(errnoText())") }
        }
    }
}
