#if canImport(Glibc)
import Glibc
#endif
import Platform

/// A connected Unix stream socket carrying length-framed link messages, with deadlines.
public final class LinkSocket: Sendable {
    /// Largest frame either side accepts: a 16 MiB media transfer plus headers.
    public static let maximumFrame = Int(SEDSIM_LINK_MAX_FRAME)
    public let socket: StreamSocket

    public init(_ socket: StreamSocket) { self.socket = socket }

    /// Connects to the socket at `path`.
    public static func connect(path: String) throws(LinkError) -> LinkSocket {
        do { return LinkSocket(try StreamSocket.connect(path: path)) } catch {
            var permissionDenied = false
            if case .system(let cause) = error { permissionDenied = cause.errno == EACCES || cause.errno == EPERM }
            throw LinkError.cannotConnect("cannot connect to simulator socket \(path): \(error)", permissionDenied: permissionDenied)
        }
    }

    /// Sends one frame.
    public func send(_ body: [UInt8], deadline: Deadline) throws(LinkError) {
        var frame: [UInt8] = []
        frame.reserveCapacity(body.count + 4)
        frame.appendBE(UInt32(body.count))
        frame.append(contentsOf: body)
        defer { frame.wipe() }  // it may carry a PIN
        do { try socket.send(frame, deadline: deadline) } catch { throw Self.linkError(error, "send to simulator") }
    }

    /// Receives one frame, or throws `.closed` on an orderly shutdown before any byte. With
    /// `bodyTimeout`, the rest of the frame must follow its header within that many seconds.
    public func receive(deadline: Deadline, bodyTimeout: Double? = nil) throws(LinkError) -> [UInt8] {
        let header: [UInt8]
        do { header = try socket.receiveExactly(4, deadline: deadline) } catch { throw Self.linkError(error, "receive from simulator") }
        let length = Int(header.readBE(0, 4))
        guard length <= Self.maximumFrame else { throw LinkError.malformed("frame of \(length) bytes exceeds the limit") }
        let bodyDeadline = bodyTimeout.map { deadline.earlier(.after(seconds: $0)) } ?? deadline
        do { return try socket.receiveExactly(length, deadline: bodyDeadline) } catch {
            if case .closed = error { throw LinkError.io("simulator connection closed mid-message") }
            throw Self.linkError(error, "receive from simulator")
        }
    }

    private static func linkError(_ failure: StreamSocket.Failure, _ what: String) -> LinkError {
        switch failure {
        case .timedOut: return .timedOut("the simulator did not answer in time")
        case .closed(let mid): return mid ? .io("simulator connection closed mid-message") : .closed
        default: return .io("\(what): \(failure)")
        }
    }
}
