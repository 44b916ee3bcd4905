import CShims
import Platform
#if canImport(Glibc)
import Glibc
#endif

/// The partition table of a whole disk, as the kernel sees it. An unlocked drive's partitions
/// only appear once the kernel reads the table again: at boot it read a locked disk and found none.
public enum PartitionTable {
    /// Asks the kernel to re-read the table of the disk at `path` (BLKRRPART).
    public static func reread(path: String) throws(TransportError) {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        guard fd >= 0 else { throw TransportError(.unreachable, device: path, "cannot open the disk: \(errnoText())") }
        defer { close(fd) }
        guard retryingEINTR({ sedlock_reread_partitions(fd) }) == 0 else {
            let code: TransportError.Code = errno == EACCES || errno == EPERM ? .permissionDenied : .ioFailure
            throw TransportError(code, device: path, "re-reading the partition table failed: \(errnoText())")
        }
    }
}
