import Foundation
import Keys

/// Reads PINs from files (or stdin for `-`) into `Secret`s. A PIN never appears in output or errors.
enum PinFile {
    static let maximumFileSize = 4096

    /// Reads one PIN; a single trailing newline (LF or CRLF) is not part of it.
    static func read(_ path: String, option: String) throws -> Secret {
        var bytes: [UInt8]
        if path == "-" {
            bytes = Array(FileHandle.standardInput.readDataToEndOfFile().prefix(maximumFileSize + 1))
        } else {
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw CommandFailure("\(option) \(path): cannot open the file", .badArguments)
            }
            defer { try? handle.close() }
            bytes = Array((try? handle.read(upToCount: maximumFileSize + 1)) ?? Data())
        }
        defer { bytes.wipe() }
        guard bytes.count <= maximumFileSize else {
            throw CommandFailure("\(option) \(path): a PIN file must be smaller than \(maximumFileSize) bytes", .badArguments)
        }
        if bytes.last == 0x0A { bytes.removeLast(); if bytes.last == 0x0D { bytes.removeLast() } }
        guard !bytes.isEmpty else { throw CommandFailure("\(option) \(path): the PIN file is empty", .badArguments) }
        return Secret(bytes)
    }
}
