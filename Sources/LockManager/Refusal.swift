import ControlAPI

/// The lock manager's own refusals that a script, a `--json` reader or a test tells apart, as
/// `ControlError.reason` codes (errors from below keep the reason of the module that raised them).
public enum Refusal: String, Sendable, CaseIterable {
    /// Setup or array add found drives it must not touch (owned, ambiguous salt, a drive twice).
    case drivesNotReady = "setup.drivesNotReady"
    /// Removing a key server would leave a live generation or the RDL token unassemblable.
    case removalStrands = "keyServers.removalStrands"
    /// Another configured key server already has one of these addresses.
    case duplicateAddress = "keyServers.duplicateAddress"
    /// A new key server failed its TLS, authentication or Locate test.
    case keyServerTestFailed = "keyServers.testFailed"
    /// The live key generations are at their limit.
    case generationLimit = "keys.generationLimit"
    /// A guarded drive stops a change of the whole array.
    case driveGuarded = "guard.driveGuarded"
}

extension ControlError {
    init(_ code: Code, _ message: String, fix: String = "", refusal: Refusal) {
        self.init(code, message, fix: fix, reason: refusal.rawValue)
    }
}
