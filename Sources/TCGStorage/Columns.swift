/// Column numbers and parameter names of the Opal tables sedlock reads and writes.
public enum Column {
    /// Get/Set cell-block names.
    public enum CellBlock {
        public static let startRow: UInt64 = 1
        public static let endRow: UInt64 = 2
        public static let startColumn: UInt64 = 3
        public static let endColumn: UInt64 = 4
    }
    /// Set parameters.
    public enum SetParameter {
        public static let `where`: UInt64 = 0
        public static let values: UInt64 = 1
    }
    public enum Locking {
        public static let rangeStart: UInt64 = 3
        public static let rangeLength: UInt64 = 4
        public static let readLockEnabled: UInt64 = 5
        public static let writeLockEnabled: UInt64 = 6
        public static let readLocked: UInt64 = 7
        public static let writeLocked: UInt64 = 8
        public static let lockOnReset: UInt64 = 9
        public static let activeKey: UInt64 = 10
    }
    public enum CPin {
        public static let pin: UInt64 = 3
        public static let charSet: UInt64 = 4
        public static let tryLimit: UInt64 = 5
        public static let tries: UInt64 = 6
        public static let persistence: UInt64 = 7
    }
    public enum Authority {
        public static let enabled: UInt64 = 5
    }
    public enum ACE {
        public static let booleanExpr: UInt64 = 3
    }
    public enum MBRControl {
        public static let enable: UInt64 = 1
        public static let done: UInt64 = 2
        public static let doneOnReset: UInt64 = 3
    }
    public enum LockingInfo {
        public static let maxRanges: UInt64 = 4
    }
    public enum SP {
        public static let lifeCycle: UInt64 = 6
    }
    /// The Enterprise SSC names columns by their names (Get's Cellblock, Set's and Get's row
    /// values): each table's names in column order, from the Core specification's table layouts.
    public enum Names {
        public static let locking = ["UID", "Name", "CommonName", "RangeStart", "RangeLength", "ReadLockEnabled",
                                     "WriteLockEnabled", "ReadLocked", "WriteLocked", "LockOnReset", "ActiveKey"]
        public static let cPin = ["UID", "Name", "CommonName", "PIN", "CharSet", "TryLimit", "Tries", "Persistence"]
        public static let authority = ["UID", "Name", "CommonName", "IsClass", "Class", "Enabled"]
        public static let lockingInfo = ["UID", "Name", "Version", "EncryptSupport", "MaxRanges"]

        /// The column names of the table `object` is a row of (by the table half of its UID).
        public static func of(_ object: UID) -> [String]? {
            switch object.rawValue >> 32 {
            case 0x0000_0802: return locking
            case 0x0000_000B: return cPin
            case 0x0000_0009: return authority
            case 0x0000_0801: return lockingInfo
            default: return nil
            }
        }
    }
    /// StartSession optional parameters.
    public enum StartSession {
        public static let hostChallenge: UInt64 = 0
        public static let hostSigningAuthority: UInt64 = 3
        public static let sessionTimeout: UInt64 = 5
    }
    /// RevertSP's KeepGlobalRangeKey parameter.
    public static let keepGlobalRangeKey: UInt64 = 0x06_0000
    /// Activate's SingleUserModeSelectionList parameter (Single User Mode feature set).
    public static let singleUserModeSelectionList: UInt64 = 0x06_0000
}

/// Values of the SP table's LifeCycle column.
public enum LifeCycleState: UInt64, Sendable, Codable, CustomStringConvertible {
    case issued = 0
    case issuedDisabled = 1
    case issuedFrozen = 2
    case issuedDisabledFrozen = 3
    case issuedFailed = 4
    case manufacturedInactive = 8
    case manufactured = 9
    case manufacturedDisabled = 10
    case manufacturedFrozen = 11
    case manufacturedDisabledFrozen = 12
    case manufacturedFailed = 13

    public var description: String {
        switch self {
        case .manufacturedInactive: return "Manufactured-Inactive"
        case .manufactured: return "Manufactured"
        default: return "LifeCycle(\(rawValue))"
        }
    }
}

/// The reset types a LockOnReset or DoneOnReset list may name.
public enum ResetType: UInt64, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case powerCycle = 0
    case hardware = 1
    case hotPlug = 2
    case programmatic = 3

    public var description: String {
        switch self {
        case .powerCycle: return "power-cycle"
        case .hardware: return "hardware"
        case .hotPlug: return "hot-plug"
        case .programmatic: return "programmatic"
        }
    }
}
