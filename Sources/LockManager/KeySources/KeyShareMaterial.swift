import Keys
import Platform

/// How one Shamir share of an AK is kept on a key server (as SecretData): a version byte (1), the
/// threshold k, the share's index, then one 16-byte share per 16-byte block of the AK — 35 bytes.
/// The shares are pycryptodome's (`Shamir.combine([(index, block_share), …])` per block), so an
/// operator with k of them can rebuild the AK without sedlock.
enum KeyShareMaterial {
    static let version: UInt8 = 1

    static func encode(_ share: ShamirSharing.Share, threshold: Int) -> Secret {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(3 + share.material.count)
        defer { bytes.wipe() }
        bytes += [version, UInt8(clamping: threshold), share.index]
        share.material.withUnsafeBytes { bytes += $0 }
        return Secret(bytes)
    }

    static func decode(_ material: Secret) -> (threshold: Int, share: ShamirSharing.Share)? {
        material.withUnsafeBytes { bytes in
            guard bytes.count == 35, bytes[0] == version, bytes[1] >= 2, bytes[2] >= 1 else { return nil }
            return (Int(bytes[1]), ShamirSharing.Share(index: bytes[2], material: Secret(copying: UnsafeRawBufferPointer(rebasing: bytes[3..<35]))))
        }
    }
}
