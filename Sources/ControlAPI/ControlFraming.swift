import Foundation

/// The control socket's wire format: one JSON object per line, each carrying the protocol
/// version, so that a CLI and a daemon of different releases say so instead of misreading.
public enum ControlFraming {
    /// The version this build speaks. 2: each case's payload as the case key's value (1 wrapped
    /// it in Swift's `"_0"`).
    public static let version = 2
    /// Largest request line accepted by default (the biggest real request is a few hundred bytes).
    public static let defaultRequestLimit = 64 * 1024
    /// Largest reply a client accepts (a status of 1,000 drives is about 300 KiB).
    public static let replyLimit = 16 * 1024 * 1024

    struct RequestLine: Codable {
        var version: Int
        var request: ControlRequest
    }

    struct ReplyLine: Codable {
        var version: Int
        var response: ControlResponse
    }

    struct ProgressLine: Codable {
        var version: Int
        var progress: DriveProgress
    }

    /// What a line from sedlockd carries: a drive's progress ahead of the reply, or the reply.
    public enum Incoming: Sendable, Equatable {
        case progress(DriveProgress)
        case response(ControlResponse)
    }

    /// A key of the line's top-level object, to tell a progress line from the reply.
    private struct Kind: Decodable {
        var progress: DriveProgress?
    }

    /// Only the version, read first so that a newer peer's unknown request gets a version error.
    private struct VersionOnly: Decodable {
        var version: Int
    }

    public static func encode(request: ControlRequest) -> [UInt8] {
        line(RequestLine(version: version, request: request))
    }

    public static func encode(response: ControlResponse) -> [UInt8] {
        line(ReplyLine(version: version, response: response))
    }

    /// Parses one request line (without its newline). Anything wrong is a `badRequest` that says what.
    public static func decodeRequest(_ line: [UInt8]) throws(ControlError) -> ControlRequest {
        try checkVersion(line, what: "request")
        do { return try decoder.decode(RequestLine.self, from: Data(line)).request } catch {
            throw ControlError(.badRequest, "malformed control request: \(summary(error))",
                               fix: "send one JSON object per line: {\"version\":\(version),\"request\":{…}}")
        }
    }

    public static func encode(progress: DriveProgress) -> [UInt8] {
        line(ProgressLine(version: version, progress: progress))
    }

    /// Parses one line from sedlockd (without its newline): progress, or the reply.
    public static func decodeIncoming(_ line: [UInt8]) throws(ControlError) -> Incoming {
        try checkVersion(line, what: "reply")
        if let progress = (try? decoder.decode(Kind.self, from: Data(line)))?.progress { return .progress(progress) }
        return .response(try decodeResponse(line))
    }

    /// Parses one reply line (without its newline).
    public static func decodeResponse(_ line: [UInt8]) throws(ControlError) -> ControlResponse {
        try checkVersion(line, what: "reply")
        do { return try decoder.decode(ReplyLine.self, from: Data(line)).response } catch {
            throw ControlError(.failed, "malformed reply from sedlockd: \(summary(error))",
                               fix: "check that sedlock and sedlockd come from the same release")
        }
    }

    private static func checkVersion(_ line: [UInt8], what: String) throws(ControlError) {
        guard let found = try? decoder.decode(VersionOnly.self, from: Data(line)) else {
            throw ControlError(.badRequest, "malformed control \(what): not a JSON object with a version",
                               fix: "send one JSON object per line: {\"version\":\(version),…}")
        }
        guard found.version == version else {
            throw ControlError(.badRequest, "control protocol version \(found.version) is not spoken here (this side speaks \(version))",
                               fix: "use sedlock and sedlockd from the same release")
        }
    }

    private static func line<T: Encodable>(_ value: T) -> [UInt8] {
        // Every value here is plain Codable data: encoding cannot fail.
        var bytes = (try? encoder.encode(value)).map { [UInt8]($0) } ?? []
        bytes.append(0x0A)
        return bytes
    }

    /// The decoder's own words, without echoing the input back (it may be anyone's bytes).
    private static func summary(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context), DecodingError.keyNotFound(_, let context),
             DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default:
            return "not valid JSON"
        }
    }

    // Dates cross as seconds since 1970: ISO 8601 text would go through Calendar and pull ICU's
    // locale data into the daemon for nothing (several MB resident).
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }()
}
