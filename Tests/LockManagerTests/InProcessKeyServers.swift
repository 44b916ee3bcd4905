import ControlAPI
import Foundation
import KMIP
import KMIPTestSupport
import LockManager
import LockState
import Platform
import SedSimulator
import Synchronization

/// Simulated key servers for the lock manager's tests, reached through its connector seam: each
/// server's own request path (`KeyServerFrontDoor`) in this process, with its faults and
/// distrust, and no TLS or child process. Server n answers at `ksN.in-process:5696`.
final class InProcessKeyServers: KeyServerConnector {
    let root: URL
    let count: Int
    /// The client certificate CN the appliance presents.
    let identity: String
    private let opened = Atomic<Int>(0)
    /// Connections the lock manager opened to any of the servers so far.
    var connections: Int { opened.load(ordering: .relaxed) }

    init(count: Int, identity: String = "array-1") throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("inproc-kms-\(UUID().uuidString.prefix(8))")
        self.count = count
        self.identity = identity
        for n in 0..<count { try FileManager.default.createDirectory(at: directory(n), withIntermediateDirectories: true) }
        // keyserver add reads the identity files it is given; TLS is not the point here.
        for file in ["client.pem", "client.key", "ca.pem"] { try Data("not used in-process\n".utf8).write(to: root.appendingPathComponent(file)) }
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func directory(_ n: Int) -> URL { root.appendingPathComponent("ks\(n)") }
    func address(_ n: Int) -> String { "ks\(n).in-process:5696" }

    func pool(_ servers: [StoredKeyServer], timeout: Double, deadline: Deadline) throws(KeyServerError) -> KeyServerPool {
        let entries = try TLSKeyServerConnector.entries(servers)
        return try KeyServerPool(servers: entries, deadline: deadline) { address in self.exchange(address) }
    }

    /// The carrier for `address`; an address of no server here refuses every connection.
    func exchange(_ address: ServerAddress) -> InProcessKeyServer {
        opened.add(1, ordering: .relaxed)
        let n = (0..<count).first { self.address($0) == address.description }
        let directory = n.map(self.directory) ?? root.appendingPathComponent("nobody")
        if n == nil {
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var refusing = KeyServerControls()
            refusing.refuse = true
            try? refusing.save(to: directory)
        }
        return InProcessKeyServer(directory: directory, identity: identity, address: address)
    }

    /// A KMIP client of server n as the appliance (for a test to look at or change what it holds).
    func client(_ n: Int) throws -> KMIPClient {
        guard let address = ServerAddress(self.address(n)) else { throw FixtureFailure("bad address") }
        return KMIPClient(connection: exchange(address))
    }

    func set(_ n: Int, _ change: (inout KeyServerControls) -> Void) throws {
        var controls = KeyServerControls.load(from: directory(n))
        change(&controls)
        try controls.save(to: directory(n))
    }

    /// Adds servers `which` (default all) to the lock manager as ks0, ks1, …; returns the last report.
    @discardableResult
    func add(to manager: LockManager, _ which: [Int]? = nil) throws -> KeyServerReport? {
        var last: KeyServerReport?
        for n in which ?? Array(0..<count) { last = try manager.keyServerAdd(addRequest(n)) }
        return last
    }

    /// The request that adds server n as ksN.
    func addRequest(_ n: Int) -> KeyServerAddRequest {
        KeyServerAddRequest(addresses: [address(n)], name: "ks\(n)", certificatePath: root.appendingPathComponent("client.pem").path,
                            privateKeyPath: root.appendingPathComponent("client.key").path,
                            caPath: root.appendingPathComponent("ca.pem").path)
    }

    /// How many objects named `name` server n holds.
    func holds(_ n: Int, _ name: String) throws -> Int { try client(n).locate([.name(name)]).count }
}
