import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Searches a live process's memory for given bytes, the way a core dump would expose them:
/// every readable mapping except those marked "dd" (MADV_DONTDUMP, where `Secret` keeps its bytes)
/// in /proc/PID/smaps. Needs root (or ptrace rights over the process).
public enum MemoryScan {
    public struct Region: Sendable {
        public let start: UInt64
        public let end: UInt64
        public let name: String
    }

    /// The dumpable, readable regions of `pid`.
    public static func dumpableRegions(of pid: pid_t) -> [Region] {
        // Read to the end by hand: proc files report a size of 0, and a read sized by it stops short.
        guard let text = readWhole("/proc/\(pid)/smaps") else { return [] }
        var regions: [Region] = []
        var pending: (region: Region, readable: Bool)?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = fields.first, range.contains("-"), fields.count >= 2, !range.hasSuffix(":") {
                let bounds = range.split(separator: "-")
                if bounds.count == 2, let start = UInt64(bounds[0], radix: 16), let end = UInt64(bounds[1], radix: 16) {
                    let name = fields.count >= 6 ? fields[5...].joined(separator: " ") : ""
                    pending = (Region(start: start, end: end, name: name), fields[1].hasPrefix("r"))
                    continue
                }
            }
            if line.hasPrefix("VmFlags:"), let candidate = pending {
                let flags = line.dropFirst("VmFlags:".count).split(separator: " ")
                // Not dumped: marked don't-dump, or device/IO mappings a read would disturb.
                if candidate.readable && !flags.contains("dd") && !flags.contains("io") && candidate.region.name != "[vvar]"
                    && candidate.region.name != "[vsyscall]" {
                    regions.append(candidate.region)
                }
                pending = nil
            }
        }
        return regions
    }

    private static func readWhole(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// How many times each needle (by index) appears in `pid`'s dumpable memory.
    public static func occurrences(of needles: [[UInt8]], in pid: pid_t) -> [Int] {
        var counts = [Int](repeating: 0, count: needles.count)
        let fd = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return counts }
        defer { close(fd) }
        let chunk = 1 << 20
        let overlap = needles.map(\.count).max() ?? 0
        var buffer = [UInt8](repeating: 0, count: chunk + overlap)
        for region in dumpableRegions(of: pid) {
            var offset = region.start
            var carried = 0
            while offset < region.end {
                let want = Int(min(UInt64(chunk), region.end - offset))
                let got = buffer.withUnsafeMutableBytes { raw -> Int in
                    guard let base = raw.baseAddress else { return -1 }
                    return pread(fd, base + carried, want, off_t(truncatingIfNeeded: offset))
                }
                guard got > 0 else { break }
                let filled = carried + got
                buffer.withUnsafeBytes { raw in
                    for (index, needle) in needles.enumerated() where !needle.isEmpty && filled >= needle.count {
                        var at = 0
                        while at + needle.count <= filled {
                            guard let first = memchr(raw.baseAddress! + at, Int32(needle[0]), filled - needle.count + 1 - at) else { break }
                            let position = raw.baseAddress!.distance(to: UnsafeRawPointer(first))
                            if memcmp(raw.baseAddress! + position, needle, needle.count) == 0 {
                                // A match wholly inside the carried-over bytes was counted last time.
                                if position + needle.count > carried { counts[index] += 1 }
                            }
                            at = position + 1
                        }
                    }
                }
                // Keep the tail so a needle across chunk edges is found once.
                carried = min(overlap, filled)
                buffer.withUnsafeMutableBytes { raw in
                    if let base = raw.baseAddress { memmove(base, base + filled - carried, carried) }
                }
                offset += UInt64(got)
            }
        }
        return counts
    }
}
