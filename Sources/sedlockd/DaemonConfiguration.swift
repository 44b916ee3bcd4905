import ControlAPI
import ControlSocket
import Foundation
import LockManager
import LockState
import Synchronization
import TOMLKit

/// Everything sedlockd is told by `/etc/sedlock/sedlockd.toml`: one value, every key with a
/// default, unknown keys an error (a misspelt key must not silently keep a default).
struct DaemonConfiguration: Sendable, Equatable {
    static let defaultPath = "/etc/sedlock/sedlockd.toml"

    var stateDirectory: String?
    var controlSocket = ControlClient.defaultSocketPath
    /// Members may read the array's state through the socket.
    var readerGroup = "sedlock"
    var requestTimeout: Double = 10
    var maximumRequestBytes = ControlFraming.defaultRequestLimit
    var maximumConnections = 256
    var maximumReaderConnections = 32
    var maximumConnectionsPerReader = 4
    /// Monitor intervals, in seconds.
    var keyServerInterval: Double = 300
    var certificateInterval: Double = 3600
    var driveInterval: Double = 60
    /// How often the RDL security token is tested on the key servers.
    var tokenInterval: Double = 60
    var lockoutLimit = 3
    var tryLimitMargin = 2
    var bootLoopLimit = 3
    var commandTimeout: Double = 10
    /// How long the boot unlock waits for keys it can verify.
    var bootKeyWait: Double = 300
    /// How long one request may keep the work loop before the watchdog stops vouching for it.
    var workLimit: Double = 900
    /// How long a stop waits for the state changes already queued; then the loop is cancelled and
    /// every request still queued is answered "sedlockd is stopping" (below the unit's TimeoutStopSec=90,
    /// so the daemon ends on its own rather than by SIGKILL).
    var stopWait: Double = 60
    /// Prometheus text: a node_exporter textfile kept up to date, and a loopback HTTP endpoint.
    var metricsFile: String?
    var metricsListen: MetricsAddress?
    /// Retired key generations kept after a rekey (older ones nothing needs are destroyed); nil: all.
    var keepRetired: Int?

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// The keys each table takes: name → how to apply a value.
    private typealias Setter = @Sendable (inout DaemonConfiguration, TOMLValueConvertible, String) throws(Invalid) -> Void

    private static let schema: [String: [String: Setter]] = [
        "": ["state_directory": { c, v, k throws(Invalid) in c.stateDirectory = try path(v, k) }],
        "control": [
            "socket": { c, v, k throws(Invalid) in c.controlSocket = try path(v, k) },
            "group": { c, v, k throws(Invalid) in c.readerGroup = try text(v, k) },
            "request_timeout": { c, v, k throws(Invalid) in c.requestTimeout = try seconds(v, k, 0.1...600) },
            "max_request_bytes": { c, v, k throws(Invalid) in c.maximumRequestBytes = try integer(v, k, 1024...1_048_576) },
            "max_connections": { c, v, k throws(Invalid) in c.maximumConnections = try integer(v, k, 1...4096) },
            "max_reader_connections": { c, v, k throws(Invalid) in c.maximumReaderConnections = try integer(v, k, 1...4096) },
            "max_connections_per_reader": { c, v, k throws(Invalid) in c.maximumConnectionsPerReader = try integer(v, k, 1...4096) },
        ],
        "monitors": [
            "key_servers_interval": { c, v, k throws(Invalid) in c.keyServerInterval = try seconds(v, k, 1...86_400) },
            "certificates_interval": { c, v, k throws(Invalid) in c.certificateInterval = try seconds(v, k, 1...86_400) },
            "drives_interval": { c, v, k throws(Invalid) in c.driveInterval = try seconds(v, k, 1...86_400) },
        ],
        "rdl": [
            "token_interval": { c, v, k throws(Invalid) in c.tokenInterval = try seconds(v, k, 1...86_400) },
        ],
        "guards": [
            "lockout_limit": { c, v, k throws(Invalid) in c.lockoutLimit = try integer(v, k, 1...10) },
            "try_limit_margin": { c, v, k throws(Invalid) in c.tryLimitMargin = try integer(v, k, 0...10) },
            "boot_loop_limit": { c, v, k throws(Invalid) in c.bootLoopLimit = try integer(v, k, 1...100) },
        ],
        "metrics": [
            "file": { c, v, k throws(Invalid) in c.metricsFile = try path(v, k) },
            "listen": { c, v, k throws(Invalid) in
                let text = try text(v, k)
                guard let address = MetricsAddress(text) else {
                    throw Invalid(description: "\(k) must be a loopback HOST:PORT (127.0.0.1, [::1] or localhost; metrics are not for other hosts)")
                }
                c.metricsListen = address
            },
        ],
        "keys": [
            "keep_retired": { c, v, k throws(Invalid) in c.keepRetired = try integer(v, k, 0...127) },
        ],
        "deadlines": [
            "command_timeout": { c, v, k throws(Invalid) in c.commandTimeout = try seconds(v, k, 0.1...600) },
            "boot_key_wait": { c, v, k throws(Invalid) in c.bootKeyWait = try seconds(v, k, 0...86_400) },
            "work_limit": { c, v, k throws(Invalid) in c.workLimit = try seconds(v, k, 10...86_400) },
            "stop_wait": { c, v, k throws(Invalid) in c.stopWait = try seconds(v, k, 1...3600) },
        ],
    ]

    /// Reads `path`; a missing file at the default path means every default.
    static func load(path: String?) throws(Invalid) -> DaemonConfiguration {
        let chosen = path ?? defaultPath
        guard FileManager.default.fileExists(atPath: chosen) else {
            if path == nil { return DaemonConfiguration() }
            throw Invalid(description: "\(chosen): no such file")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: chosen, isDirectory: &isDirectory), !isDirectory.boolValue,
              let handle = FileHandle(forReadingAtPath: chosen) else {
            throw Invalid(description: "\(chosen): not a readable file")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: 1_048_577)) ?? Data()
        guard data.count <= 1_048_576, let text = String(data: data, encoding: .utf8) else {
            throw Invalid(description: "\(chosen): not readable as UTF-8 text of at most 1 MiB")
        }
        do { return try parse(text) } catch { throw Invalid(description: "\(chosen): \(error.description)") }
    }

    static func parse(_ text: String) throws(Invalid) -> DaemonConfiguration {
        let root: TOMLTable
        do { root = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw Invalid(description: "line \(error.source.begin.line): \(error.description)")
        } catch {
            throw Invalid(description: "not TOML: \(error)")
        }
        var configuration = DaemonConfiguration()
        for (key, value) in root {
            if let table = value.table {
                guard let setters = schema[key], key != "" else { throw Invalid(description: "unknown table [\(key)]") }
                for (inner, innerValue) in table {
                    guard let set = setters[inner] else { throw Invalid(description: "unknown key \(key).\(inner)") }
                    try set(&configuration, innerValue, "\(key).\(inner)")
                }
            } else {
                guard let set = schema[""]?[key] else { throw Invalid(description: "unknown key \(key)") }
                try set(&configuration, value, key)
            }
        }
        return configuration
    }

    /// The lock manager's share of it.
    func managerConfiguration(bootIDPath: String?) -> LockManagerConfiguration {
        var configuration = LockManagerConfiguration(stateDirectory: StateDirectory.resolve(explicit: stateDirectory))
        configuration.commandTimeout = commandTimeout
        configuration.keepRetiredGenerations = keepRetired
        configuration.lockoutLimit = lockoutLimit
        configuration.tryLimitMargin = tryLimitMargin
        configuration.bootLoopLimit = bootLoopLimit
        if let bootIDPath { configuration.bootIDPath = bootIDPath }
        return configuration
    }

    var serverLimits: ControlServerLimits {
        var limits = ControlServerLimits()
        limits.requestBytes = maximumRequestBytes
        limits.requestTimeout = requestTimeout
        limits.maximumConnections = maximumConnections
        limits.readerConnections = maximumReaderConnections
        limits.connectionsPerReader = maximumConnectionsPerReader
        return limits
    }

    private static func text(_ value: TOMLValueConvertible, _ key: String) throws(Invalid) -> String {
        guard let string = value.string, !string.isEmpty else { throw Invalid(description: "\(key) must be a non-empty string") }
        return string
    }

    private static func path(_ value: TOMLValueConvertible, _ key: String) throws(Invalid) -> String {
        let string = try text(value, key)
        guard string.hasPrefix("/") else { throw Invalid(description: "\(key) must be an absolute path") }
        return string
    }

    private static func seconds(_ value: TOMLValueConvertible, _ key: String, _ range: ClosedRange<Double>) throws(Invalid) -> Double {
        guard let number = value.double ?? value.int.map(Double.init), range.contains(number) else {
            throw Invalid(description: "\(key) must be a number of seconds from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    private static func integer(_ value: TOMLValueConvertible, _ key: String, _ range: ClosedRange<Int>) throws(Invalid) -> Int {
        guard let number = value.int, range.contains(number) else {
            throw Invalid(description: "\(key) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }
}

/// The configuration the running daemon follows, swapped whole by a reload.
final class LiveConfiguration: Sendable {
    private let value: Mutex<DaemonConfiguration>

    init(_ configuration: DaemonConfiguration) { value = Mutex(configuration) }

    var current: DaemonConfiguration { value.withLock { $0 } }

    func replace(with new: DaemonConfiguration) { value.withLock { $0 = new } }
}

/// Where the metrics endpoint listens: a loopback address only.
struct MetricsAddress: Sendable, Equatable {
    let host: String
    let port: UInt16

    init?(_ text: String) {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            port = text[close...].dropFirst().drop { $0 == ":" }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard ["127.0.0.1", "::1", "localhost"].contains(host), let number = UInt16(port), number > 0 else { return nil }
        self.host = host == "localhost" ? "127.0.0.1" : String(host)
        self.port = number
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
