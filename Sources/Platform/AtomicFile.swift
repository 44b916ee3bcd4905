#if canImport(Glibc)
import Glibc
#endif

/// Replaces a file so that a crash at any moment leaves either the old or the new content:
/// write a temporary file beside it, fsync it, rename it over the old one, fsync the directory.
public enum AtomicFile {
    /// `beforeCommit` runs after the new content is written and before the rename (fault injection:
    /// a crash there must leave the old file in place). `syncing: false` skips the two fsyncs: the
    /// replacement stays atomic against a crash of the process, not of the machine.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600, syncing: Bool = true,
                             beforeCommit: (() -> Void)? = nil) throws(SystemError) {
        let directory = parentDirectory(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let temporary = directory + "/." + name + ".tmp"
        // A new file of our own, whatever was left at that name (a temporary a crash left behind,
        // or a FIFO or link someone put there, which would block or redirect the write).
        _ = unlink(temporary)
        let fd = retryingEINTR { open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW, mode) }
        guard fd >= 0 else { throw SystemError("open", path: temporary) }
        do throws(SystemError) {
            // The umask must not widen or narrow what the caller asked for.
            guard fchmod(fd, mode) == 0 else { throw SystemError("fchmod", path: temporary) }
            let written: Result<Void, SystemError> = bytes.withUnsafeBytes { raw in
                Result { () throws(SystemError) in try writeAll(fd, raw, path: temporary) }
            }
            try written.get()
            guard !syncing || fsync(fd) == 0 else { throw SystemError("fsync", path: temporary) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        beforeCommit?()
        guard rename(temporary, path) == 0 else {
            let failure = SystemError("rename", path: path)
            unlink(temporary)
            throw failure
        }
        if syncing { try syncDirectory(directory) }
    }

    /// Creates a file that must not exist yet (O_EXCL), with `mode`, and syncs it: for keys,
    /// certificates and fetched key material, which must never overwrite anything.
    public static func createNew(_ bytes: [UInt8], at path: String, mode: mode_t) throws(SystemError) {
        let result: Result<Void, SystemError> = bytes.withUnsafeBytes { raw in
            Result { () throws(SystemError) in try createNew(raw, at: path, mode: mode) }
        }
        try result.get()
    }

    /// As above, from memory the caller owns (key material stays out of intermediate arrays).
    public static func createNew(_ bytes: UnsafeRawBufferPointer, at path: String, mode: mode_t) throws(SystemError) {
        let fd = retryingEINTR { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode) }
        guard fd >= 0 else { throw SystemError("create", path: path) }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw SystemError("fchmod", path: path) }
        try writeAll(fd, bytes, path: path)
        guard fsync(fd) == 0 else { throw SystemError("fsync", path: path) }
    }

    /// Makes a rename or a new file in `directory` durable.
    public static func syncDirectory(_ directory: String) throws(SystemError) {
        let fd = retryingEINTR { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError("open", path: directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SystemError("fsync", path: directory) }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SystemError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = retryingEINTR { Glibc.write(fd, base + done, bytes.count - done) }
            guard n > 0 else { throw SystemError("write", path: path) }
            done += n
        }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }
}
