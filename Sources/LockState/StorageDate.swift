import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// Dates as the state stores them: UTC text `YYYY-MM-DD HH:MM:SS.SSS`, the format GRDB itself
/// writes and reads back. Made here with gmtime_r rather than GRDB's DateFormatter, which pulls
/// ICU's locale data into every process that writes a record (several MB of sedlockd's resident
/// memory for nothing).
enum StorageDate {
    static func text(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(floor(interval))
        let milliseconds = min(999, max(0, Int((interval - floor(interval)) * 1000)))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2)) "
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))"
    }

    /// Reads `text`'s format back (and the same without milliseconds), or nil.
    static func date(_ text: String) -> Date? {
        let fields = text.split(whereSeparator: { "- :.T".contains($0) }).map { Int($0) }
        guard fields.count == 6 || fields.count == 7, !fields.contains(nil) else { return nil }
        let f = fields.map { $0 ?? 0 }
        var parts = tm()
        parts.tm_year = Int32(clamping: f[0] - 1900)
        parts.tm_mon = Int32(clamping: f[1] - 1)
        parts.tm_mday = Int32(clamping: f[2])
        parts.tm_hour = Int32(clamping: f[3])
        parts.tm_min = Int32(clamping: f[4])
        parts.tm_sec = Int32(clamping: f[5])
        let seconds = timegm(&parts)
        let milliseconds = fields.count == 7 ? Double(f[6]) / 1000 : 0
        return Date(timeIntervalSince1970: Double(seconds) + milliseconds)
    }

    static var value: @Sendable (Date) -> (any DatabaseValueConvertible)? { { text($0) } }
}

/// Every record of the state stores and reads its dates through `StorageDate` (GRDB's own
/// decoding goes through Calendar and ICU as well).
protocol StateRecord: EncodableRecord, FetchableRecord {}

extension StateRecord {
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .custom(StorageDate.value)
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy {
        .custom { value in String.fromDatabaseValue(value).flatMap(StorageDate.date) }
    }
}
