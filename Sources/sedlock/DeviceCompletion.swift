import ArgumentParser
import ControlAPI
import ControlSocket
import Foundation

/// Shell completion of drive addresses: the device nodes a drive can be (`/dev/sg*`, NVMe
/// controllers and namespaces, `/dev/sd*`) and the drives of the array sedlockd manages
/// (`sim:DIR/N` among them), asked through its socket within half a second: a stopped daemon or a
/// socket this user may not open costs nothing but those candidates.
enum DeviceCompletion {
    static let kind: CompletionKind = .custom { _, _, prefix in
        // zsh's _describe reads "value:description": `sim:DIR/N` would offer "sim" described as
        // "DIR/N". Its colons are escaped for zsh; bash takes the words as they are.
        let words = candidates(prefix)
        return CompletionShell.requesting == .zsh ? words.map { $0.replacingOccurrences(of: ":", with: "\\:") } : words
    }

    static func candidates(_ prefix: String) -> [String] {
        Set(deviceNodes() + managedDrives()).filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// Whether a /dev entry is a node a drive can be addressed by.
    static func isDriveNode(_ name: String) -> Bool {
        func digits(_ text: Substring) -> Bool { !text.isEmpty && text.allSatisfy(\.isNumber) }
        if name.hasPrefix("sg") { return digits(name.dropFirst(2)) }
        if name.hasPrefix("sd") {
            let letters = name.dropFirst(2)
            return !letters.isEmpty && letters.allSatisfy { $0.isLowercase && $0.isASCII }
        }
        if name.hasPrefix("nvme") {
            // nvmeN (controller) or nvmeNnM (namespace); not partitions (nvmeNnMpK).
            let parts = name.dropFirst(4).split(separator: "n", omittingEmptySubsequences: false)
            return (parts.count == 1 && digits(parts[0])) || (parts.count == 2 && digits(parts[0]) && digits(parts[1]))
        }
        return false
    }

    static func deviceNodes() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? []).filter(isDriveNode).map { "/dev/" + $0 }
    }

    static func managedDrives() -> [String] {
        guard let client = try? ControlClient(path: ControlClient.socketPathFromEnvironment),
              case .guardState(let report)? = try? client.send(.guardStatus(address: nil), timeout: 0.5) else { return [] }
        return report.drives.map(\.address)
    }
}
