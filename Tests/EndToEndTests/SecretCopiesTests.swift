import Foundation
import Keys
import Platform
import TestSupport
import Testing

/// Key material outside the protected pages: after sedlockd loaded the key and locked and unlocked
/// the array, neither the AK (raw or as its key file's text) nor any drive PIN is found in the
/// memory a core dump of sedlockd would hold.
@Suite("Secrets stay in protected memory", .serialized)
struct SecretCopiesTests {
    @Test("after boot, lock and unlock through sedlockd: no copy of the AK or of a PIN in its dumpable memory")
    func noCopiesInSedlockd() throws {
        let f = try DaemonFixture(drives: 2)
        try f.startDaemon()
        for command in [["lock", "--all"], ["unlock", "--all"], ["lock", "--all"], ["unlock", "--all"]] {
            let result = try run("sedlock", command + f.viaSocket)
            #expect(result.status == 0, "\(command): \(result.stderr)")
        }
        let daemon = try #require(f.daemon)
        let (akText, ak) = try Self.authenticationKey(stateDirectory: f.scratch + "/state")
        let identities = try run("/usr/bin/sqlite3", [f.scratch + "/state/state.sqlite", "SELECT identity FROM drive ORDER BY id"])
            .output.split(separator: "\n").map(String.init)
        #expect(identities.count == 2)
        var needles: [(name: String, bytes: [UInt8])] = [("the AK", ak.copyBytes()), ("the AK's key file text", Array(akText.utf8))]
        for identity in identities {
            for authority in PINAuthority.allCases {
                let pin = try DrivePIN.derive(ak: ak, driveIdentity: identity, authority: authority)
                needles.append(("the \(authority.rawValue) PIN of \(identity)", pin.copyBytes()))
            }
        }
        let counts = MemoryScan.occurrences(of: needles.map(\.bytes), in: daemon.pid)
        #expect(MemoryScan.dumpableRegions(of: daemon.pid).count > 10, "the scan reads sedlockd's memory")
        let found = zip(needles, counts).filter { $0.1 > 0 }.map { "\($0.0.name): \($0.1)" }
        #expect(found.isEmpty, "copies in sedlockd's dumpable memory: \(found.joined(separator: ", "))")
    }

    @Test("the AK and the RDL token from a KMIP server (TLS, TTLV), boot, lock and unlock through sedlockd: no copy of either or of a PIN in its dumpable memory")
    func noCopiesWithKeyServer() throws {
        let f = try RDLFixture(drives: 2, provider: "kmip")
        #expect(try run("sedlock", ["rdl", "enable", "--kmip", "ks1", "--yes"] + f.state).status == 0)
        let (daemon, socket) = try f.startDaemon("")
        defer { daemon.stop() }
        for command in [["lock", "--all"], ["unlock", "--all"], ["lock", "--all"], ["unlock", "--all"]] {
            let result = try run("sedlock", command + ["--control-socket", socket])
            #expect(result.status == 0, "\(command): \(result.stderr)")
        }
        // What the key server holds: the AK, the token (and the recovery record, which names them).
        struct Store: Decodable {
            struct Object: Decodable { var names: [String]; var groups: [String]; var material: Data }
            var objects: [Object]
        }
        let store = try JSONDecoder().decode(Store.self, from: Data(contentsOf: URL(fileURLWithPath: f.kmip + "/objects.json")))
        let keys = store.objects.filter { $0.material.count == 32 }
        let token = try #require(keys.first { $0.groups.contains("sedlock-rdl-token") }.map { Secret(Array($0.material)) })
        let ak = try #require(keys.first { !$0.groups.contains("sedlock-rdl-token") }.map { Secret(Array($0.material)) })
        let materials = [(name: "the AK", secret: ak), (name: "the RDL token", secret: token)]
        let identities = try run("/usr/bin/sqlite3", [f.scratch + "/state/state.sqlite", "SELECT identity FROM drive ORDER BY id"])
            .output.split(separator: "\n").map(String.init)
        var needles: [(name: String, bytes: [UInt8])] = materials.map { ($0.name, $0.secret.copyBytes()) }
        for identity in identities {
            for authority in PINAuthority.allCases {
                let pin = try DrivePIN.derive(ak: ak, token: token, driveIdentity: identity, authority: authority)
                needles.append(("the \(authority.rawValue) PIN of \(identity)", pin.copyBytes()))
            }
        }
        let counts = MemoryScan.occurrences(of: needles.map(\.bytes), in: daemon.pid)
        let found = zip(needles, counts).filter { $0.1 > 0 }.map { "\($0.0.name): \($0.1)" }
        #expect(found.isEmpty, "copies in sedlockd's dumpable memory: \(found.joined(separator: ", "))")
    }

    /// The AK of the array's one key file, and the base64 text it is kept as.
    static func authenticationKey(stateDirectory: String) throws -> (text: String, ak: Secret) {
        let keys = stateDirectory + "/keys"
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: keys).first { $0.hasSuffix(".ak") })
        let fields = try String(contentsOfFile: keys + "/" + file, encoding: .utf8).split(whereSeparator: { $0 == " " || $0 == "\n" })
        let text = try #require(fields.last.map(String.init))
        let raw = try #require(Data(base64Encoded: text))
        return (text, Secret(Array(raw)))
    }
}
