import Foundation
import TCGStorage

/// What `sedsim status` shows for one drive.
public struct DriveStatusReport: Codable, Sendable {
    public struct RangeReport: Codable, Sendable {
        public var range: Int
        public var start: UInt64
        public var length: UInt64
        public var readLockEnabled: Bool
        public var writeLockEnabled: Bool
        public var readLocked: Bool
        public var writeLocked: Bool
        public var lockOnReset: [String]
        public var keyGeneration: Int
    }
    public struct TriesReport: Codable, Sendable {
        public var authority: String
        public var tries: UInt64
        public var tryLimit: UInt64
        public var lockedOut: Bool
    }

    public var drive: Int
    public var kind: String
    public var model: String
    public var serial: String
    public var wwn: String
    public var psid: String
    public var owned: Bool
    public var lockingSP: String
    public var blockSIDActive: Bool
    public var mbrEnable: Bool
    public var mbrDone: Bool
    public var ranges: [RangeReport]
    public var tries: [TriesReport]
    public var consecutiveFailedAuthentications: Int
    /// Every failed authentication since the drive was made (power cycles and successes do not reset it).
    public var totalFailedAuthentications: Int
    public var lifetimeFailureLimit: Int
    public var erasedItself: Bool
    public var lockoutStatus: String
    public var openSessions: Int
    /// Single User Mode: the ranges each owned by one user (empty when activated normally).
    public var singleUserRanges: [Int]
    /// Tolerances beyond the specification the drive was built with (empty: strict).
    public var quirks: [String]
    /// The fault plan's parts still waiting for their commands (`FaultPlan.armed`); empty: none.
    public var armedFaults: [String]
}

extension SimulatedDrive {
    public func statusReport(index: Int) -> DriveStatusReport {
        lock.lock()
        defer { lock.unlock() }
        expireIdleSessions()
        func tries(_ name: String, _ c: CredentialRecord) -> DriveStatusReport.TriesReport {
            .init(authority: name, tries: c.tries, tryLimit: c.tryLimit, lockedOut: c.tryLimit != 0 && c.tries >= c.tryLimit)
        }
        var triesList = [tries("SID", record.sid), tries("PSID", record.psid)]
        for (i, c) in record.lockingAdmins.enumerated() where c.enabled { triesList.append(tries("Admin\(i + 1)", c)) }
        for (i, c) in record.lockingUsers.enumerated() where c.enabled { triesList.append(tries("User\(i + 1)", c)) }
        let id = record.identity
        return DriveStatusReport(
            drive: index, kind: id.kind.rawValue, model: id.model, serial: id.serial.trimmingCharacters(in: .whitespaces),
            wwn: String(format: "0x%016llx", id.wwn), psid: id.psid, owned: record.sidEverChanged,
            lockingSP: record.lockingLifeCycle.description, blockSIDActive: blockSIDActive,
            mbrEnable: record.mbr.enable, mbrDone: record.mbr.done,
            ranges: record.ranges.enumerated().map { i, r in
                .init(range: i, start: r.start, length: i == 0 ? id.blockCount : r.length,
                      readLockEnabled: r.readLockEnabled, writeLockEnabled: r.writeLockEnabled,
                      readLocked: r.readLocked, writeLocked: r.writeLocked,
                      lockOnReset: r.lockOnReset.map(\.description), keyGeneration: r.keyGeneration)
            },
            tries: triesList, consecutiveFailedAuthentications: record.consecutiveFailedAuthentications,
            totalFailedAuthentications: record.totalFailedAuthentications ?? 0,
            lifetimeFailureLimit: record.settings.lifetimeFailureLimit, erasedItself: record.erasedForGood,
            lockoutStatus: record.settings.lockoutStatus.rawValue, openSessions: sessions.count,
            singleUserRanges: record.singleUserRanges ?? [], quirks: (record.settings.quirks ?? []).map(\.rawValue),
            armedFaults: faults.armed)
    }
}
