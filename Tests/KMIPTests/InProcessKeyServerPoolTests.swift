import Foundation
import Keys
import KMIP
import KMIPTestSupport
import SedSimulator
import Testing

/// Pool behaviour with faults, through the simulated key server's own request path and no TLS.
@Suite("Key server pool without TLS")
struct InProcessKeyServerPoolTests {
    final class Servers {
        let directories: [URL]
        init(count: Int) throws {
            directories = try (0..<count).map { _ in
                let url = FileManager.default.temporaryDirectory.appendingPathComponent("kms-\(UUID().uuidString.prefix(8))")
                try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
                return url
            }
        }
        deinit { for d in directories { try? FileManager.default.removeItem(at: d) } }

        func pool(identity: String = "array-1") throws -> KeyServerPool {
            let entries = directories.indices.map {
                KeyServerEntry(name: "ks\($0)", addresses: [ServerAddress(host: "in-process", port: UInt16(5700 + $0))])
            }
            let dirs = directories
            return try KeyServerPool(servers: entries) { address in
                InProcessKeyServer(directory: dirs[Int(address.port) - 5700], identity: identity, port: address.port)
            }
        }

        func set(_ n: Int, _ change: (inout KeyServerControls) -> Void) throws {
            var controls = KeyServerControls.load(from: directories[n])
            change(&controls)
            try controls.save(to: directories[n])
        }
    }

    @Test("a write reaches every live server and names the one that refused; reads fail over past a hung server")
    func partialWriteAndFailover() throws {
        let servers = try Servers(count: 3)
        try servers.set(1) { $0.refuse = true }
        let pool = try servers.pool()
        let outcome = pool.writeAll { c throws(KeyServerError) in try c.registerSecret(Secret([1, 2, 3, 4]), attributes: [.name("ak-1")]) }
        #expect(outcome.written.map(\.server) == ["ks0", "ks2"])
        #expect(outcome.failures.map(\.code) == [.keyServerUnavailable])
        #expect { try outcome.requireAll() } throws: { "\($0)".contains("written on 2 of 3 key servers (ks0, ks2 hold a copy)") }

        try servers.set(0) { $0.hang = true }
        let found = try pool.read { c throws(KeyServerError) in try c.locate([.name("ak-1")]) }
        #expect(found.count == 1)  // from ks2: ks0 hangs, ks1 refuses
    }

    @Test("a distrusted client is told so by every server; a malformed answer is a protocol error")
    func distrustAndMalformed() throws {
        let servers = try Servers(count: 2)
        try servers.set(0) { $0.distrusted = ["array-1"] }
        try servers.set(1) { $0.malformed = true }
        #expect { try servers.pool().read { c throws(KeyServerError) in try c.locate([]) } } throws: {
            let text = "\($0)"
            return ($0 as? KeyServerError)?.code == .keyServerInvalidAuth && text.contains("in-process:5700") && text.contains("in-process:5701")
                && text.contains("malformed")
        }
    }
}
