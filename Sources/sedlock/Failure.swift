import Failures
import Foundation
import Keys

/// Exit statuses, one per kind of failure, so scripts can tell them apart.
enum ExitStatus: Int32 {
    case success = 0
    /// Bad arguments or unreadable input files (ArgumentParser also uses 64).
    case badArguments = 64
    /// The drive refused the credential or the ACL denied the operation.
    case notAuthorized = 10
    /// The authority is locked out (or the drive erased itself).
    case lockedOut = 11
    /// The command could not reach the drive or key server, TLS failed, or it timed out.
    case transport = 12
    /// The drive (or key server) failed the operation, answered nonsense, or is in the wrong state.
    case drive = 13
    /// An array operation reached some drives and not others (see its report).
    case partial = 14
    /// A guard stopped it before any authentication: keys unavailable or unverified, a guarded
    /// drive, the boot-loop hold.
    case held = 15
    /// Another sedlock is changing the state.
    case busy = 16
    /// A change reached the drive and its answer did not come back: it may or may not have been made.
    case outcomeUnknown = 17
}

/// A failure the CLI reports: message, fix, and exit status. Never includes secrets.
struct CommandFailure: Error {
    let message: String
    let status: ExitStatus

    init(_ message: String, _ status: ExitStatus) {
        self.message = message
        self.status = status
    }

    /// Any module's failure, its exit status chosen by its kind alone.
    init(_ error: any SedlockError) {
        message = error.fullText
        status = ExitStatus(error.kind)
    }
}

extension ExitStatus {
    init(_ kind: FailureKind) {
        switch kind {
        case .badRequest: self = .badArguments
        case .notAuthorized: self = .notAuthorized
        case .lockedOut: self = .lockedOut
        case .unreachable: self = .transport
        case .failed: self = .drive
        case .partial: self = .partial
        case .held: self = .held
        case .busy: self = .busy
        case .outcomeUnknown: self = .outcomeUnknown
        }
    }
}

/// Runs a command body, turning every failure into a message on stderr and its exit status.
func reporting(_ body: () throws -> Void) -> Never {
    // PINs pass through this process's memory: keep it out of core dumps and ptrace.
    disableCoreDumps()
    do {
        try body()
        exit(ExitStatus.success.rawValue)
    } catch {
        report(error)
    }
}

/// Writes the failure to stderr and exits with its status.
func report(_ error: any Error) -> Never {
    let failure: CommandFailure
    switch error {
    case let f as CommandFailure: failure = f
    case let e as any SedlockError: failure = CommandFailure(e)
    default: failure = CommandFailure("\(error)", .drive)
    }
    FileHandle.standardError.write(Data("sedlock: \(failure.message)\n".utf8))
    exit(failure.status.rawValue)
}

/// `reporting` for async commands.
func reportingAsync(_ body: () async throws -> Void) async -> Never {
    disableCoreDumps()
    do {
        try await body()
        exit(ExitStatus.success.rawValue)
    } catch {
        report(error)
    }
}
