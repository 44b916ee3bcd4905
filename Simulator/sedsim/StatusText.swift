import SedSimulator

/// The human-readable form of `sedsim status`.
enum StatusText {
    static func render(_ r: DriveStatusReport) -> String {
        var lines: [String] = []
        lines.append("drive \(r.drive): \(r.model) [\(r.kind)] serial \(r.serial) wwn \(r.wwn)")
        lines.append("  PSID \(r.psid)")
        lines.append("  owned: \(r.owned ? "yes" : "no (SID = MSID)")   Locking SP: \(r.lockingSP)   Block SID: \(r.blockSIDActive ? "active" : "off")")
        if !r.singleUserRanges.isEmpty {
            lines.append("  Single User Mode: " + r.singleUserRanges.map { "range \($0) owned by User\($0 + 1)" }.joined(separator: ", "))
        }
        if !r.quirks.isEmpty { lines.append("  quirks: " + r.quirks.joined(separator: ", ")) }
        if !r.armedFaults.isEmpty { lines.append("  faults armed: " + r.armedFaults.joined(separator: "; ")) }
        lines.append("  MBR shadow: \(r.mbrEnable ? "enabled" : "disabled")\(r.mbrEnable ? (r.mbrDone ? ", done" : ", not done") : "")")
        for range in r.ranges where range.range == 0 || range.length > 0 || range.readLockEnabled || range.writeLockEnabled {
            let state: String
            let rl = range.readLockEnabled && range.readLocked, wl = range.writeLockEnabled && range.writeLocked
            switch (rl, wl) {
            case (true, true): state = "LOCKED"
            case (true, false): state = "read-locked"
            case (false, true): state = "write-locked"
            case (false, false): state = "unlocked"
            }
            let name = range.range == 0 ? "global " : "range \(range.range)"
            lines.append("  \(name): start \(range.start) length \(range.length) \(state) "
                         + "(lock enabled R:\(range.readLockEnabled ? "y" : "n") W:\(range.writeLockEnabled ? "y" : "n"), "
                         + "lock on reset: \(range.lockOnReset.joined(separator: ",")), key generation \(range.keyGeneration))")
        }
        let tries = r.tries.map { "\($0.authority) \($0.tries)/\($0.tryLimit)\($0.lockedOut ? " LOCKED OUT" : "")" }
        lines.append("  tries: " + tries.joined(separator: ", "))
        lines.append("  consecutive failed authentications: \(r.consecutiveFailedAuthentications)/\(r.lifetimeFailureLimit)"
                     + " (\(r.totalFailedAuthentications) in all)"
                     + (r.erasedItself ? "  ** ERASED ITSELF: keys destroyed, authentication refused for good **" : ""))
        return lines.joined(separator: "\n")
    }
}
