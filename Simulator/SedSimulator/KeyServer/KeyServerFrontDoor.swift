import Foundation

/// What the simulated key server does with one request once the operator's controls (faults,
/// distrust) are applied. The TLS listener and in-process test carriers share it, so a fault
/// behaves the same whether or not TLS is in the way.
public struct KeyServerFrontDoor: Sendable {
    public enum Answer: Sendable, Equatable {
        /// Send these bytes back.
        case respond([UInt8])
        /// Keep the connection open and never answer.
        case hang
        /// Send these bytes back one at a time, this many milliseconds apart.
        case drip([UInt8], everyMilliseconds: Int)
    }

    public let directory: URL
    public let engine: KeyServerEngine

    public init(directory: URL) {
        self.directory = directory
        engine = KeyServerEngine(store: KeyServerStore(directory: directory))
    }

    /// True when new connections are to be reset at once (`admin --refuse on`).
    public var refusesConnections: Bool { KeyServerControls.load(from: directory).refuse }

    /// The answer to `request` from the client whose certificate CN is `identity`.
    public func answer(_ request: [UInt8], identity: String) -> Answer {
        let controls = KeyServerControls.load(from: directory)
        if controls.latencyMilliseconds > 0 { usleep(useconds_t(min(controls.latencyMilliseconds, 60_000)) * 1000) }
        if controls.hang { return .hang }
        if controls.malformed {
            return .respond([0x42, 0x00, 0x7B, 0x01, 0x00, 0x00, 0x00, 0x10, 0x42, 0x00, 0x7A, 0x0C, 0x00, 0x00, 0x00, 0x08,
                             0xDE, 0xAD, 0xBE, 0xEF, 0xDE, 0xAD, 0xBE, 0xEF])
        }
        if controls.oversized {
            return .respond([0x42, 0x00, 0x7B, 0x01, 0x04, 0x00, 0x00, 0x00] + [UInt8](repeating: 0, count: 64))
        }
        let answer = engine.respond(to: request, identity: identity, authenticated: !controls.distrusted.contains(identity))
        if controls.dripMilliseconds > 0 { return .drip(answer, everyMilliseconds: min(controls.dripMilliseconds, 60_000)) }
        return .respond(answer)
    }
}
