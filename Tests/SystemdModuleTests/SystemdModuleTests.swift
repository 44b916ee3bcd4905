import Foundation
import Logging
import Synchronization
import Systemd
import Testing

/// A journal sink that keeps what it was given.
final class RecordingSink: JournalSink, Sendable {
    let records = Mutex<[[(name: String, value: String)]]>([])
    func write(_ fields: [(name: String, value: String)]) { records.withLock { $0.append(fields) } }
}

@Suite("Systemd module: the journal handler")
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
}
