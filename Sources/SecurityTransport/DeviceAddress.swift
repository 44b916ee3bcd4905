import Failures
/// How an operator names a drive: a device node, or `sim:DIR/N` for drive N of a simulated array.
public enum DeviceAddress: Hashable, Sendable, CustomStringConvertible {
    case device(path: String)
    case simulated(arrayDirectory: String, drive: Int)

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public static func parse(_ text: String) throws(ParseError) -> DeviceAddress {
        if text.hasPrefix("sim:") {
            let rest = String(text.dropFirst(4))
            guard let slash = rest.lastIndex(of: "/"), slash != rest.startIndex,
                  let n = Int(rest[rest.index(after: slash)...]), (0...Int(UInt16.max)).contains(n) else {
                throw ParseError(description: "'\(text)' is not a simulated drive address; use sim:DIR/N (for example sim:/tmp/array/0)")
            }
            return .simulated(arrayDirectory: String(rest[..<slash]), drive: n)
        }
        guard text.hasPrefix("/dev/") else {
            throw ParseError(description: "'\(text)' is neither a device node (/dev/…) nor a simulated drive (sim:DIR/N)")
        }
        return .device(path: text)
    }

    public var description: String {
        switch self {
        case .device(let path): return path
        case .simulated(let dir, let n): return "sim:\(dir)/\(n)"
        }
    }
}

extension DeviceAddress.ParseError: SedlockError {
    public var kind: FailureKind { .badRequest }
    public var reason: String { "transport.address" }
    public var summary: String { description }
}
