import Foundation

/// Writes bytes to a new file with `mode` (never overwriting) and syncs it; for keys, certificates
/// and fetched key material.
func writeNewFile(_ path: String, mode: mode_t, _ bytes: UnsafeRawBufferPointer) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else { throw CommandFailure("\(path): cannot create a new file (\(String(cString: strerror(errno))))", .badArguments) }
    defer { close(fd) }
    guard Glibc.write(fd, bytes.baseAddress, bytes.count) == bytes.count, fsync(fd) == 0 else {
        throw CommandFailure("\(path): write failed", .badArguments)
    }
}

func writeNewFile(_ path: String, _ text: String, mode: mode_t) throws {
    try Array(text.utf8).withUnsafeBytes { try writeNewFile(path, mode: mode, $0) }
}
