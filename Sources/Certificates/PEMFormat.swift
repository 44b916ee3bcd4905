/// Checks the PEM text format the way key-management APIs demand it: BEGIN and END lines on
/// their own lines, a body of the base64 alphabet only. Pure; runs before OpenSSL sees the text.
public enum PEMFormat {
    public struct Block: Hashable, Sendable {
        public var label: String
        public var base64: String
        public init(label: String, base64: String) {
            self.label = label
            self.base64 = base64
        }
    }

    static let base64Alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")

    /// The blocks of a PEM text, or why it is not PEM.
    public static func blocks(_ text: String) throws(CertificateError) -> [Block] {
        var blocks: [Block] = []
        var current: (label: String, body: String)?
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : String(raw)
            if line.hasPrefix("-----BEGIN ") && line.hasSuffix("-----") {
                guard current == nil else {
                    throw CertificateError(.invalidPEM, "line \(number + 1): BEGIN inside another block", fix: "give whole PEM blocks")
                }
                current = (String(line.dropFirst(11).dropLast(5)), "")
            } else if line.hasPrefix("-----END ") && line.hasSuffix("-----") {
                let label = String(line.dropFirst(9).dropLast(5))
                guard let open = current, open.label == label else {
                    throw CertificateError(.invalidPEM, "line \(number + 1): END \(label) without a matching BEGIN",
                                           fix: "give whole PEM blocks")
                }
                guard !open.body.isEmpty else { throw CertificateError(.invalidPEM, "line \(number + 1): empty \(label) block") }
                blocks.append(Block(label: label, base64: open.body))
                current = nil
            } else if current != nil {
                let body = line.trimmingTrailingSpaces
                guard body.allSatisfy({ base64Alphabet.contains($0) }) else {
                    throw CertificateError(.invalidPEM, "line \(number + 1): characters outside the base64 alphabet",
                                           fix: "PEM bodies hold only A–Z a–z 0–9 + / = and newlines")
                }
                current?.body += body
            } else if !line.trimmingTrailingSpaces.isEmpty && blocks.isEmpty && !line.hasPrefix("-----") {
                // Text before the first block (OpenSSL's "Bag Attributes" or comments) is allowed.
                continue
            }
        }
        if let open = current {
            throw CertificateError(.invalidPEM, "the \(open.label) block has no END line", fix: "the file is truncated")
        }
        guard !blocks.isEmpty else {
            throw CertificateError(.invalidPEM, "no PEM block found", fix: "give a PEM file (-----BEGIN …-----)")
        }
        return blocks
    }
}

extension String {
    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
