#if canImport(Glibc)
import Glibc
#endif

/// A device number split as the kernel does (glibc's major()/minor() are macros Swift cannot call).
public struct DeviceNumber: Hashable, Sendable, CustomStringConvertible {
    public let major: UInt32
    public let minor: UInt32

    public init(_ raw: dev_t) {
        let value = UInt64(raw)
        major = UInt32(truncatingIfNeeded: ((value >> 8) & 0xFFF) | ((value >> 32) & ~UInt64(0xFFF)))
        minor = UInt32(truncatingIfNeeded: (value & 0xFF) | ((value >> 12) & ~UInt64(0xFF)))
    }

    /// `MAJOR:MINOR`, as sysfs names block devices under /sys/dev/block.
    public var description: String { "\(major):\(minor)" }
}
