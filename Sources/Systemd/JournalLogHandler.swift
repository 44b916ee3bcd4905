import CSystemd
import Foundation
import Logging
import Synchronization

/// Where structured log records go: the journal under systemd, standard error elsewhere, a
/// recorder in tests (libsystemd's journal socket path is fixed, so tests replace the sink).
public protocol JournalSink: Sendable {
    /// `fields`: journal field names (A–Z, 0–9, _) and values, MESSAGE and PRIORITY among them.
    func write(_ fields: [(name: String, value: String)])
}

/// The system journal, through sd_journal_sendv.
public struct SystemJournal: JournalSink {
    public init() {}

    /// True when standard error is connected to the journal (systemd sets `$JOURNAL_STREAM`).
    public static var isConnected: Bool { ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil }

    public func write(_ fields: [(name: String, value: String)]) {
        let entries = fields.map { Array(($0.name + "=" + $0.value).utf8) }
        let buffers = entries.map { bytes -> UnsafeMutableRawBufferPointer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
            buffer.copyBytes(from: bytes)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        var vectors = zip(buffers, entries).map { iovec(iov_base: $0.0.baseAddress, iov_len: $0.1.count) }
        _ = vectors.withUnsafeMutableBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
    }
}

/// Standard error, one line a record: `identifier[pid]: <priority> message FIELD=value …`.
public struct StandardErrorSink: JournalSink {
    public init() {}

    public func write(_ fields: [(name: String, value: String)]) {
        let message = fields.first { $0.name == "MESSAGE" }?.value ?? ""
        let extra = fields.filter { !["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "MESSAGE_ID", "CODE_FILE", "CODE_LINE", "CODE_FUNC"].contains($0.name) }
            .map { "\($0.name)=\($0.value)" }.joined(separator: " ")
        let identifier = fields.first { $0.name == "SYSLOG_IDENTIFIER" }?.value ?? "sedlockd"
        FileHandle.standardError.write(Data("\(identifier): \(message)\(extra.isEmpty ? "" : "  " + extra)\n".utf8))
    }
}

/// A swift-log handler that writes each record as journal fields: MESSAGE, PRIORITY (syslog
/// levels), SYSLOG_IDENTIFIER, and every metadata key as a field of its own (`DRIVE`, `KEY_ID`,
/// `MESSAGE_ID` …; other keys are upper-cased and stripped to the journal's field alphabet).
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let identifier: String
    public let sink: any JournalSink

    public init(identifier: String, sink: any JournalSink) {
        self.identifier = identifier
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(name: String, value: String)] = [
            ("MESSAGE", "\(event.message)"),
            ("PRIORITY", String(Self.priority(event.level))),
            ("SYSLOG_IDENTIFIER", identifier),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            guard let name = Self.fieldName(key) else { continue }
            fields.append((name, "\(value)"))
        }
        sink.write(fields)
    }

    /// syslog priorities, as journald files them.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// A journal field name: upper-case letters, digits and underscores, not starting with `_`
    /// (those are the journal's own trusted fields) or a digit, at most 64 characters.
    static func fieldName(_ key: String) -> String? {
        let mapped = String(key.uppercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" }.prefix(64))
        guard let first = mapped.first, first != "_", !first.isNumber,
              !["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"].contains(mapped) else { return nil }
        return mapped
    }
}
