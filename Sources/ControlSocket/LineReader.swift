import Platform
import Synchronization

/// Splits a byte stream into newline-terminated lines, never holding more than `limit` bytes of
/// one line: a peer that sends an endless line is cut off, not buffered.
public final class LineReader: Sendable {
    public enum Failure: Error, Sendable {
        /// The line passed the limit before its newline.
        case tooLong
        case socket(StreamSocket.Failure)
    }

    public let limit: Int
    private let pending = Mutex<[UInt8]>([])

    public init(limit: Int) { self.limit = limit }

    /// The next line (without its newline). `.socket(.closed(midMessage: false))` on a clean end.
    public func nextLine(from socket: StreamSocket, deadline: Deadline) throws(Failure) -> [UInt8] {
        while true {
            if let line = takeLine() { return line }
            let buffered = pending.withLock { $0.count }
            guard buffered <= limit else { throw .tooLong }
            let chunk: [UInt8]
            do { chunk = try socket.receiveSome(limit: min(65_536, limit + 1 - buffered), deadline: deadline) } catch {
                throw .socket(error)
            }
            guard !chunk.isEmpty else { throw .socket(.closed(midMessage: buffered > 0)) }
            pending.withLock { $0.append(contentsOf: chunk) }
        }
    }

    private func takeLine() -> [UInt8]? {
        pending.withLock { buffer -> [UInt8]? in
            guard let newline = buffer.firstIndex(of: 0x0A), newline <= limit else { return nil }
            let line = Array(buffer[..<newline])
            buffer.removeSubrange(...newline)
            return line
        }
    }
}
