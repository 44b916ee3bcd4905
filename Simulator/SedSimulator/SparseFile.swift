import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A fixed-size sparse file read and written at byte offsets (media, MBR table, DataStore).
final class SparseFile: @unchecked Sendable {
    let url: URL
    let size: UInt64
    private let fd: Int32

    init(url: URL, size: UInt64) throws(SimulatorError) {
        self.url = url
        self.size = size
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SimulatorError.storage("cannot open \(url.path): \(String(cString: strerror(errno)))") }
        self.fd = fd
        var st = stat()
        if fstat(fd, &st) == 0 && UInt64(st.st_size) != size {
            guard ftruncate(fd, off_t(size)) == 0 else {
                close(fd)
                throw SimulatorError.storage("cannot size \(url.path): \(String(cString: strerror(errno)))")
            }
        }
    }

    deinit { close(fd) }

    func read(at offset: UInt64, count: Int) throws(SimulatorError) -> [UInt8] {
        guard offset <= size, UInt64(count) <= size - offset else {
            throw SimulatorError.storage("read past the end of \(url.lastPathComponent)")
        }
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 { if errno == EINTR { continue }; throw SimulatorError.storage("read \(url.lastPathComponent): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            done += n
        }
        return buffer
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws(SimulatorError) {
        guard offset <= size, UInt64(bytes.count) <= size - offset else {
            throw SimulatorError.storage("write past the end of \(url.lastPathComponent)")
        }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done)) }
            if n < 0 { if errno == EINTR { continue }; throw SimulatorError.storage("write \(url.lastPathComponent): \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// Returns the file to all zeros (sparse again).
    func wipe() throws(SimulatorError) {
        guard ftruncate(fd, 0) == 0, ftruncate(fd, off_t(size)) == 0 else {
            throw SimulatorError.storage("cannot wipe \(url.lastPathComponent): \(String(cString: strerror(errno)))")
        }
    }

    func sync() { fsync(fd) }
}
