/// What one write to every key server came to: the servers that took it (with what each
/// answered, e.g. its own Unique Identifier) and the ones that did not.
public struct KeyServerWrite<Value: Sendable>: Sendable {
    public struct Written: Sendable {
        public let server: String
        public let value: Value

        public init(server: String, value: Value) {
            self.server = server
            self.value = value
        }
    }

    public let written: [Written]
    public let failures: [KeyServerError]

    public init(written: [Written], failures: [KeyServerError]) {
        self.written = written
        self.failures = failures
    }

    public var isComplete: Bool { failures.isEmpty }

    /// The written copies when every server took the write. Otherwise one error that names the
    /// servers that hold a copy and those that failed, so the caller can retry or clean up:
    /// NetApp's rule is that a key must be on every configured server before it is used.
    public func requireAll() throws(KeyServerError) -> [Written] {
        guard let first = failures.first else { return written }
        let holders = written.map(\.server)
        let failed = failures.map { "\($0.server): \($0.code.rawValue): \($0.cause)" }.joined(separator: "; ")
        let held = holders.isEmpty ? "no server holds a copy"
                                   : "\(holders.joined(separator: ", ")) \(holders.count == 1 ? "holds" : "hold") a copy"
        throw KeyServerError(first.code, server: failures.map(\.server).joined(separator: ", "),
                             cause: "written on \(written.count) of \(written.count + failures.count) key servers (\(held)); \(failed)",
                             fix: first.fix.isEmpty ? "bring the failed servers back and write again" : first.fix,
                             resultReason: first.resultReason)
    }
}
