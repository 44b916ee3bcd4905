import Foundation
import ControlAPI
import Platform

/// The CLI's side of the control socket: one connection, requests and replies one line each.
public final class ControlClient: Sendable {
    public static let defaultSocketPath = "/run/sedlock/control.sock"
    /// Points the CLI at another sedlockd (a simulated appliance's) without repeating --control-socket.
    public static let socketVariable = "SEDLOCK_CONTROL_SOCKET"

    public static var socketPathFromEnvironment: String {
        ProcessInfo.processInfo.environment[socketVariable].flatMap { $0.isEmpty ? nil : $0 } ?? defaultSocketPath
    }

    public let path: String
    private let connection: StreamSocket
    private let reader: LineReader

    /// Connects, or says that sedlockd is not there and what to do.
    public init(path: String = ControlClient.defaultSocketPath) throws(ControlError) {
        self.path = path
        do { connection = try StreamSocket.connect(path: path) } catch {
            throw ControlError(.unreachable, "sedlockd is not answering at \(path) (\(error))",
                               fix: "start it (`systemctl start sedlockd.socket`), or run the command with --direct while it is stopped")
        }
        reader = LineReader(limit: ControlFraming.replyLimit)
    }

    /// Sends `request` and waits up to `timeout` seconds for its reply; `progress` hears each
    /// drive of a long operation as sedlockd reports it.
    public func send(_ request: ControlRequest, timeout: Double,
                     progress: (DriveProgress) -> Void = { _ in }) throws(ControlError) -> ControlResponse {
        let deadline = Deadline.after(seconds: timeout)
        // A send that fails may still have a reply waiting (a refusal sent before the daemon closed).
        let sendFailure: StreamSocket.Failure?
        do { try connection.send(ControlFraming.encode(request: request), deadline: deadline); sendFailure = nil } catch {
            sendFailure = error
        }
        while true {
            switch try ControlFraming.decodeIncoming(try nextLine(deadline: deadline, timeout: timeout, sendFailure: sendFailure)) {
            case .progress(let update): progress(update)
            case .response(let response): return response
            }
        }
    }

    private func nextLine(deadline: Deadline, timeout: Double, sendFailure: StreamSocket.Failure?) throws(ControlError) -> [UInt8] {
        do { return try reader.nextLine(from: connection, deadline: deadline) } catch {
            switch error {
            case .tooLong: throw ControlError(.failed, "sedlockd's reply exceeds \(ControlFraming.replyLimit) bytes")
            case .socket(.timedOut):
                throw ControlError(.unreachable, "sedlockd did not answer within \(Int(timeout)) s",
                                   fix: "the request may still complete: check `sedlock status`; raise --timeout for long operations")
            case .socket(let failure):
                throw ControlError(.unreachable, "sedlockd closed the connection without a reply (\(sendFailure ?? failure))",
                                   fix: "check `journalctl -u sedlockd`")
            }
        }
    }
}
