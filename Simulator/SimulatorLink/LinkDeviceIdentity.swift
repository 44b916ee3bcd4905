/// What a simulated device reports about itself (INQUIRY / Identify), carried as JSON on the link.
public struct LinkDeviceIdentity: Codable, Sendable, Hashable {
    public var kind: String
    public var model: String
    /// The serial number field exactly as the device reports it (20 characters, space padded).
    public var serial: String
    public var firmware: String
    public var wwn: UInt64
    public var blockSize: Int
    public var blockCount: UInt64

    public init(kind: String, model: String, serial: String, firmware: String, wwn: UInt64, blockSize: Int, blockCount: UInt64) {
        self.kind = kind
        self.model = model
        self.serial = serial
        self.firmware = firmware
        self.wwn = wwn
        self.blockSize = blockSize
        self.blockCount = blockCount
    }
}

/// Where `sedsim serve` listens inside an array directory.
public enum LinkPaths {
    public static let socketName = SEDSIM_LINK_SOCKET_NAME
    /// Held (flock) by the one process that serves or opens the array.
    public static let serveLockName = ".serve.lock"
}
