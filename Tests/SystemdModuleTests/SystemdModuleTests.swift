import Foundation
import Logging
import Synchronization
import Systemd
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A journal sink that keeps what it was given.
final class RecordingSink: JournalSink, Sendable {
    let records = Mutex<[[(name: String, value: String)]]>([])
    func write(_ fields: [(name: String, value: String)]) { records.withLock { $0.append(fields) } }
}

@Suite("Systemd module: the notify protocol and the journal handler", .serialized)
struct SystemdModuleTests {
    @Test("journal records: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, metadata as upper-case fields, unsafe names dropped")
    func journalFields() throws {
        let sink = RecordingSink()
        var logger = Logger(label: "t") { _ in JournalLogHandler(identifier: "sedlockd", sink: sink) }
        logger[metadataKey: "component"] = "monitor"
        logger.error("drive gone", metadata: ["DRIVE": "sim:/a/0", "key-id": "k1", "_PID": "1", "MESSAGE": "spoof", "9x": "n"])
        logger.debug("not at info level")
        let records = sink.records.withLock { $0 }
        #expect(records.count == 1)
        let fields = Dictionary(try #require(records.first).map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(fields["MESSAGE"] == "drive gone" && fields["PRIORITY"] == "3" && fields["SYSLOG_IDENTIFIER"] == "sedlockd")
        #expect(fields["DRIVE"] == "sim:/a/0" && fields["KEY_ID"] == "k1" && fields["COMPONENT"] == "monitor")
        #expect(fields["_PID"] == nil && fields["9X"] == nil)
        #expect(try #require(records.first).filter { $0.name == "MESSAGE" }.count == 1)
    }

    @Test("notify messages reach $NOTIFY_SOCKET: READY with STATUS on one line, WATCHDOG, RELOADING with MONOTONIC_USEC, EXTEND_TIMEOUT_USEC")
    func notify() throws {
        let path = "/tmp/sedlock-notify-\(UUID().uuidString.prefix(8))"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd); unlink(path) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        func receive() -> String {
            var buffer = [UInt8](repeating: 0, count: 4096)
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 2000) == 1 else { return "" }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
        }
        let manager = ServiceManager()
        #expect(!manager.isPresent || ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] != nil)
        setenv("NOTIFY_SOCKET", path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        manager.ready(status: "12/12 drives unlocked\nsecond line")
        #expect(receive() == "READY=1\nSTATUS=12/12 drives unlocked second line")
        manager.watchdogPing()
        #expect(receive() == "WATCHDOG=1")
        manager.reloading()
        let reloading = receive()
        #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") && UInt64(reloading.split(separator: "=").last ?? "") != nil)
        manager.extendTimeout(seconds: 20)
        #expect(receive() == "EXTEND_TIMEOUT_USEC=20000000")
        manager.stopping(status: "stopping")
        #expect(receive() == "STOPPING=1\nSTATUS=stopping")

        setenv("WATCHDOG_USEC", "4000000", 1)
        setenv("WATCHDOG_PID", "\(getpid())", 1)
        defer { unsetenv("WATCHDOG_USEC"); unsetenv("WATCHDOG_PID") }
        #expect(manager.watchdogInterval == .seconds(4))
        setenv("WATCHDOG_PID", "1", 1)
        #expect(manager.watchdogInterval == nil)
    }
}
