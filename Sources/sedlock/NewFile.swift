import Foundation
import Platform

/// Writes bytes to a new file with `mode` (never overwriting) and syncs it; for keys, certificates
/// and fetched key material.
func writeNewFile(_ path: String, mode: mode_t, _ bytes: UnsafeRawBufferPointer) throws {
    do { try AtomicFile.createNew(bytes, at: path, mode: mode) } catch {
        throw CommandFailure("\(path): cannot create a new file (\(error.cause))", .badArguments)
    }
}

func writeNewFile(_ path: String, _ text: String, mode: mode_t) throws {
    try Array(text.utf8).withUnsafeBytes { try writeNewFile(path, mode: mode, $0) }
}
