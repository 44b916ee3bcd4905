import ArgumentParser
import Foundation
import SedSimulator

struct KMIPServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kmip", abstract: "A simulated KMIP key server you can break on purpose.",
        subcommands: [KMIPInit.self, KMIPServe.self, KMIPIssueClientCert.self, KMIPAdmin.self])
}

struct KeyServerDirectory: ParsableArguments {
    @Option(help: "The key server's directory (CA, certificates, objects, controls).") var dir: String
    var url: URL { URL(fileURLWithPath: dir).standardizedFileURL }
}

struct KMIPInit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Create the server's CA and certificate.")
    @OptionGroup var server: KeyServerDirectory
    func run() throws {
        do { try KeyServerPKI.initialize(server.url) } catch { fail("\(error)") }
        print("key server CA: \(server.url.path)/ca.pem")
    }
}

struct KMIPServe: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve KMIP over mutual TLS on 127.0.0.1.")
    @OptionGroup var server: KeyServerDirectory
    @Option(help: "TCP port (0 picks a free one and prints it).") var port: UInt16 = 5696
    func run() throws {
        prepareSignalsForServing()
        let listener: KeyServerListener
        do {
            try KeyServerPKI.initialize(server.url)
            listener = try KeyServerListener(directory: server.url, port: port)
        } catch { fail("\(error)") }
        FileHandle.standardOutput.write(Data("listening on 127.0.0.1:\(listener.port)\n".utf8))
        listener.run()
    }
}

struct KMIPIssueClientCert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue-client-cert", abstract: "Issue a client certificate signed by the server's CA (PREFIX.pem, PREFIX.key, PREFIX-ca.pem).")
    @OptionGroup var server: KeyServerDirectory
    @Option(help: "The client's identity (certificate CN).") var cn: String
    @Option(help: "Output path prefix.") var out: String
    @Option(help: "Validity in days.") var days: Int = 365
    func run() throws {
        do {
            let (cert, key, ca) = try KeyServerPKI.issueClient(server.url, commonName: cn, prefix: out, days: days)
            print("certificate \(cert)\nkey \(key)\nca \(ca)")
        } catch { fail("\(error)") }
    }
}

struct KMIPAdmin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin", abstract: "Change trust, objects and faults of a running (or stopped) simulated key server, at once.")
    @OptionGroup var server: KeyServerDirectory
    @Option(help: "Stop trusting this client CN (as if its certificate were revoked).") var distrust: [String] = []
    @Option(help: "Trust this client CN again.") var trust: [String] = []
    @Option(help: "Destroy this object (whatever its state).") var destroy: [String] = []
    @Option(help: "Revoke this object (key compromise).") var revoke: [String] = []
    @Option(help: "on|off: accept connections and never answer.") var hang: Switch?
    @Option(help: "on|off: close every new connection.") var refuse: Switch?
    @Option(help: "on|off: answer with malformed TTLV.") var malformed: Switch?
    @Option(help: "on|off: answer with an oversized message.") var oversized: Switch?
    @Option(help: "Milliseconds to wait before each answer.") var latency: Int?
    @Option(help: "Send each answer a byte at a time, this many milliseconds apart (0: off; 1000: a slowloris server).") var drip: Int?
    @Flag(help: "Clear every fault and distrust.") var clear = false

    enum Switch: String, ExpressibleByArgument { case on, off }

    func run() throws {
        var controls = clear ? KeyServerControls() : KeyServerControls.load(from: server.url)
        controls.distrusted = (controls.distrusted.filter { !trust.contains($0) } + distrust).reduce(into: []) { list, cn in
            if !list.contains(cn) { list.append(cn) }
        }
        if let hang { controls.hang = hang == .on }
        if let refuse { controls.refuse = refuse == .on }
        if let malformed { controls.malformed = malformed == .on }
        if let oversized { controls.oversized = oversized == .on }
        if let latency { controls.latencyMilliseconds = max(0, latency) }
        if let drip { controls.dripMilliseconds = max(0, drip) }
        do {
            try controls.save(to: server.url)
            let store = KeyServerStore(directory: server.url)
            for id in destroy where !(try store.destroy(id)) { fail("no object \(id)") }
            for id in revoke where !(try store.revoke(id, compromised: true)) { fail("no object \(id)") }
        } catch { fail("\(error)") }
    }
}
