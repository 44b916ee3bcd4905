import COpenSSL
import CShims
import Platform
#if canImport(Glibc)
import Glibc
#endif

/// Secret bytes (PINs, keys): locked in memory, excluded from core dumps, zeroed on release,
/// and never printed — `description` names only the length.
/// Immutable after `init` (only `deinit` writes, when no one else can read), so sharing is safe.
public final class Secret: @unchecked Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    private let storage: UnsafeMutableRawBufferPointer
    public let count: Int

    /// Copies `bytes` into protected memory; the caller should clear its own copy.
    public init(_ bytes: [UInt8]) {
        (storage, count) = bytes.withUnsafeBytes { Self.protectedCopy(of: $0) }
    }

    /// Copies the bytes at `bytes` into protected memory (for a buffer the caller clears).
    public init(copying bytes: UnsafeRawBufferPointer) {
        (storage, count) = Self.protectedCopy(of: bytes)
    }

    private static func protectedCopy(of bytes: UnsafeRawBufferPointer) -> (UnsafeMutableRawBufferPointer, Int) {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 16)
        if let base = storage.baseAddress {
            // Best effort: mlock can fail under RLIMIT_MEMLOCK; the secret is still zeroed on release.
            _ = mlock(base, storage.count)
            _ = sedlock_exclude_from_core_dump(base, storage.count)
        }
        if let source = bytes.baseAddress, let destination = storage.baseAddress, bytes.count > 0 {
            memcpy(destination, source, bytes.count)
        }
        return (storage, bytes.count)
    }

    deinit {
        if let base = storage.baseAddress {
            sedlock_secure_zero(base, storage.count)
            _ = munlock(base, storage.count)
        }
        storage.deallocate()
    }

    /// Gives temporary access to the secret's bytes; don't let them escape the closure.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// `count` bytes from OpenSSL's random generator (the AK of a new key generation).
    public static func random(count: Int) -> Secret? {
        var bytes = [UInt8](repeating: 0, count: count)
        defer { bytes.wipe() }
        guard count > 0, RAND_bytes(&bytes, Int32(count)) == 1 else { return nil }
        return Secret(bytes)
    }

    /// A transient copy for APIs that need an array (token encoding). Clear it with `wipe` after use.
    public func copyBytes() -> [UInt8] { withUnsafeBytes { Array($0) } }

    /// This secret followed by `other`, as a new secret (Rapid Data Locking's PIN input: AK ‖ token).
    public func appending(_ other: Secret) -> Secret {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + other.count)
        defer { bytes.wipe() }
        withUnsafeBytes { bytes += $0 }
        other.withUnsafeBytes { bytes += $0 }
        return Secret(bytes)
    }

    public var description: String { "<secret: \(count) bytes>" }
    public var debugDescription: String { description }

    public static func == (a: Secret, b: Secret) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in
            var diff: UInt8 = 0
            for i in 0..<a.count { diff |= x[i] ^ y[i] }
            return diff == 0
        } }
    }
}


/// Keeps the current process out of core dumps and ptrace by unprivileged peers.
public func disableCoreDumps() {
    _ = sedlock_disable_core_dumps()
}
