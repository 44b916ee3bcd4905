/// An 8-byte TCG object or method identifier.
public struct UID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// A UID from exactly eight bytes; `nil` for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 8 else { return nil }
        self.rawValue = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: rawValue >> UInt64(56 - $0 * 8)) }
    }

    /// The table a row UID belongs to (its high four bytes).
    public var tableHalf: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }
    public var rowHalf: UInt32 { UInt32(truncatingIfNeeded: rawValue) }

    public static func < (a: UID, b: UID) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        let hex = String(rawValue, radix: 16, uppercase: true)
        let padded = String(repeating: "0", count: 16 - hex.count) + hex
        return "\(padded.prefix(8)) \(padded.suffix(8))"
    }
}

extension UID {
    // Session manager and security providers.
    public static let sessionManager = UID(0x0000_0000_0000_00FF)
    public static let thisSP = UID(0x0000_0000_0000_0001)
    public static let adminSP = UID(0x0000_0205_0000_0001)
    public static let lockingSP = UID(0x0000_0205_0000_0002)
    public static let enterpriseLockingSP = UID(0x0000_0205_0001_0001)

    // Authorities.
    public static let anybody = UID(0x0000_0009_0000_0001)
    public static let admins = UID(0x0000_0009_0000_0002)
    public static let makers = UID(0x0000_0009_0000_0003)
    public static let sid = UID(0x0000_0009_0000_0006)
    public static let psid = UID(0x0000_0009_0001_FF01)
    public static let lockingUsers = UID(0x0000_0009_0003_0000)
    public static let lockingAdmins = UID(0x0000_0009_0001_0000)
    public static let bandMaster0 = UID(0x0000_0009_0000_8001)
    public static let eraseMaster = UID(0x0000_0009_0000_8401)
    /// Enterprise SSC: BandMaster n manages band n (BandMaster0 the global band).
    public static func bandMaster(_ n: Int) -> UID { UID(bandMaster0.rawValue + UInt64(n)) }
    /// Admin n of the Admin SP (not the Locking SP's Admin n).
    public static func adminSPAdmin(_ n: Int) -> UID { UID(0x0000_0009_0000_0200 + UInt64(n)) }
    /// Admin n of the Locking SP.
    public static func lockingAdmin(_ n: Int) -> UID { UID(0x0000_0009_0001_0000 + UInt64(n)) }
    /// User n of the Locking SP.
    public static func user(_ n: Int) -> UID { UID(0x0000_0009_0003_0000 + UInt64(n)) }

    // C_PIN rows.
    public static let cPinSID = UID(0x0000_000B_0000_0001)
    public static let cPinMSID = UID(0x0000_000B_0000_8402)
    public static let cPinPSID = UID(0x0000_000B_0001_FF01)
    public static func cPinAdminSPAdmin(_ n: Int) -> UID { UID(0x0000_000B_0000_0200 + UInt64(n)) }
    public static func cPinLockingAdmin(_ n: Int) -> UID { UID(0x0000_000B_0001_0000 + UInt64(n)) }
    public static func cPinUser(_ n: Int) -> UID { UID(0x0000_000B_0003_0000 + UInt64(n)) }
    /// Enterprise SSC credentials: a BandMaster's and the EraseMaster's (the authority UID in the C_PIN table).
    public static func cPinBandMaster(_ n: Int) -> UID { UID(0x0000_000B_0000_8001 + UInt64(n)) }
    public static let cPinEraseMaster = UID(0x0000_000B_0000_8401)

    // Locking SP tables.
    public static let lockingInfo = UID(0x0000_0801_0000_0001)
    public static let enterpriseLockingInfo = UID(0x0000_0801_0000_0000)
    public static let lockingGlobalRange = UID(0x0000_0802_0000_0001)
    /// Locking range n; range 0 is the global range.
    public static func lockingRange(_ n: Int) -> UID {
        n == 0 ? lockingGlobalRange : UID(0x0000_0802_0003_0000 + UInt64(n))
    }
    /// Enterprise SSC band n (a row of the Locking table numbered from the global band, Band0).
    public static func band(_ n: Int) -> UID { UID(lockingGlobalRange.rawValue + UInt64(n)) }
    public static func kAES256(range n: Int) -> UID {
        n == 0 ? UID(0x0000_0806_0000_0001) : UID(0x0000_0806_0003_0000 + UInt64(n))
    }
    public static func kAES128(range n: Int) -> UID {
        n == 0 ? UID(0x0000_0805_0000_0001) : UID(0x0000_0805_0003_0000 + UInt64(n))
    }
    public static let mbrControl = UID(0x0000_0803_0000_0001)
    public static let mbrTable = UID(0x0000_0804_0000_0000)
    public static let dataStoreTable = UID(0x0000_1001_0000_0000)

    // Access control elements for lock state, per range.
    public static func aceSetReadLocked(range n: Int) -> UID {
        UID(0x0000_0008_0003_E000 + UInt64(n))
    }
    public static func aceSetWriteLocked(range n: Int) -> UID {
        UID(0x0000_0008_0003_E800 + UInt64(n))
    }
    /// ACE_Locking_RangeN_Get_RangeStartToActiveKey (global range: N = 0).
    public static func aceGetRangeStartToActiveKey(range n: Int) -> UID {
        UID(0x0000_0008_0003_D000 + UInt64(n))
    }
    public static let aceMBRControlSetDoneToDOR = UID(0x0000_0008_0003_F801)
    /// ACE_MBRControl_Admins_Set: the MBRControl columns only the Admins set (Enable).
    public static let aceMBRControlAdminsSet = UID(0x0000_0008_0003_F800)
    /// ACE_DataStore_Get_All / ACE_DataStore_Set_All: who reads and writes the DataStore table.
    public static let aceDataStoreGetAll = UID(0x0000_0008_0003_FC00)
    public static let aceDataStoreSetAll = UID(0x0000_0008_0003_FC01)
    /// ACE_Anybody: the ACE that grants a method to anybody.
    public static let aceAnybody = UID(0x0000_0008_0000_0001)
    /// ACE_C_PIN_UserN_Set_PIN: who may set User N's PIN (preconfigured: Admins OR User N).
    public static func aceCPinUserSetPIN(user n: Int) -> UID { UID(0x0000_0008_0003_A800 + UInt64(n)) }
    /// ACE_K_AES_256_GlobalRange_GenKey (N = 0) and ACE_K_AES_256_RangeN_GenKey: who may rekey a range.
    public static func aceKAES256GenKey(range n: Int) -> UID { UID(0x0000_0008_0003_B800 + UInt64(n)) }
    /// The row of the Table table that describes `table` (Core §5.3.2.2): 00000001 and the
    /// table's own UID prefix; its column 7 (Rows) is a byte table's size.
    public static func tableTableRow(describing table: UID) -> UID {
        UID(0x0000_0001_0000_0000 | UInt64(table.tableHalf))
    }
    /// The AccessControl table, on which GetACL is invoked.
    public static let accessControlTable = UID(0x0000_0007_0000_0000)
    /// The Admin SP's TPerInfo row.
    public static let tperInfo = UID(0x0000_0201_0003_0001)
    /// Half-UID used in ACE boolean expressions to name an authority.
    public static let halfUIDAuthorityObjectRef: [UInt8] = [0x00, 0x00, 0x0C, 0x05]
    public static let halfUIDBooleanACE: [UInt8] = [0x00, 0x00, 0x04, 0x0E]

    /// The range index of a Locking table row UID, if it is one.
    public var lockingRangeIndex: Int? {
        if self == .lockingGlobalRange { return 0 }
        guard rawValue & 0xFFFF_FFFF_FFFF_0000 == 0x0000_0802_0003_0000 else { return nil }
        let n = Int(rawValue & 0xFFFF)
        return n >= 1 ? n : nil
    }

    /// The band of an Enterprise SSC Locking table row UID (Band0 … Band1023), if it is one.
    public var bandIndex: Int? {
        let first = UID.lockingGlobalRange.rawValue
        guard rawValue >= first, rawValue - first < 1024 else { return nil }
        return Int(rawValue - first)
    }

    /// The band of a BandMaster authority UID, if it is one.
    public var bandMasterIndex: Int? {
        let first = UID.bandMaster0.rawValue
        guard rawValue >= first, rawValue - first < 1024 else { return nil }
        return Int(rawValue - first)
    }

    /// The band of a BandMaster's C_PIN row UID, if it is one.
    public var cPinBandMasterIndex: Int? {
        let first = UID.cPinBandMaster(0).rawValue
        guard rawValue >= first, rawValue - first < 1024 else { return nil }
        return Int(rawValue - first)
    }

    /// The range index of a K_AES_256 or K_AES_128 row UID, if it is one.
    public var mediaKeyRangeIndex: Int? {
        for table: UInt64 in [0x0000_0806, 0x0000_0805] {
            if rawValue == table << 32 | 1 { return 0 }
            if rawValue & 0xFFFF_FFFF_FFFF_0000 == (table << 32 | 0x0003_0000) {
                let n = Int(rawValue & 0xFFFF)
                if n >= 1 { return n }
            }
        }
        return nil
    }
}

/// Method UIDs (Core spec and Opal SSC).
public enum MethodID {
    public static let properties = UID(0x0000_0000_0000_FF01)
    public static let startSession = UID(0x0000_0000_0000_FF02)
    public static let syncSession = UID(0x0000_0000_0000_FF03)
    public static let closeSession = UID(0x0000_0000_0000_FF06)

    public static let next = UID(0x0000_0006_0000_0008)
    public static let getACL = UID(0x0000_0006_0000_000D)
    public static let genKey = UID(0x0000_0006_0000_0010)
    public static let revertSP = UID(0x0000_0006_0000_0011)
    public static let get = UID(0x0000_0006_0000_0016)
    public static let set = UID(0x0000_0006_0000_0017)
    public static let authenticate = UID(0x0000_0006_0000_001C)
    public static let revert = UID(0x0000_0006_0000_0202)
    public static let activate = UID(0x0000_0006_0000_0203)
    public static let random = UID(0x0000_0006_0000_0601)
    public static let reactivate = UID(0x0000_0006_0000_0801)
    public static let erase = UID(0x0000_0006_0000_0803)
    public static let assign = UID(0x0000_0006_0000_0804)
    public static let enterpriseGet = UID(0x0000_0006_0000_0006)
    public static let enterpriseSet = UID(0x0000_0006_0000_0007)
    public static let enterpriseAuthenticate = UID(0x0000_0006_0000_000C)

    /// The Opal methods that change a drive: a drive refuses them in a read-only session, and a
    /// host whose request reached the drive but lost its answer cannot know whether one was done.
    public static let changingState: Set<UID> = [set, genKey, activate, revert, revertSP, erase, reactivate]
}
