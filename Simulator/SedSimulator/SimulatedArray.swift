import Platform
import Foundation
import SimulatorLink
import TCGStorage

/// How a new array's drives are built.
public struct ArraySpecification: Codable, Sendable {
    public var drives: Int
    public var sizeBytes: UInt64
    public var kind: DriveKind
    public var blockSize: Int
    public var settings: DriveSettings
    /// A mixed array: drive n is of security subsystem class `subsystemClasses[n % count]`
    /// (overriding `settings.ssc`); nil or empty, every drive as `settings` says.
    public var subsystemClasses: [SimulatedSSC]?

    public init(drives: Int, sizeBytes: UInt64 = 1 << 30, kind: DriveKind = .nvme, blockSize: Int = 512,
                settings: DriveSettings = DriveSettings(), subsystemClasses: [SimulatedSSC]? = nil) {
        self.drives = drives
        self.sizeBytes = sizeBytes
        self.kind = kind
        self.blockSize = blockSize
        self.settings = settings
        self.subsystemClasses = subsystemClasses
    }

    /// The settings drive `n` is made with.
    public func settings(ofDrive n: Int) -> DriveSettings {
        guard let mix = subsystemClasses, !mix.isEmpty else { return settings }
        var own = settings
        own.ssc = mix[n % mix.count] == .opal ? nil : mix[n % mix.count]
        return own
    }
}

/// A directory of simulated drives, and the request handler shared by `sedsim serve` and offline commands.
public final class SimulatedArray: @unchecked Sendable {
    public let directory: URL
    public let drives: [SimulatedDrive]

    public static let manifestName = "array.json"
    public static let maximumDriveSize: UInt64 = 1 << 44

    /// True when `directory` holds an array's manifest.
    public static func isArray(at directory: URL) -> Bool {
        (try? checkIsArray(at: directory)) != nil
    }

    /// Throws what keeps `directory` from being an array: no manifest, or the system's reason it
    /// cannot be looked at (permission denied on the directory, not a directory …).
    public static func checkIsArray(at directory: URL) throws(SimulatorError) {
        let manifest = directory.appendingPathComponent(manifestName).path
        var info = stat()
        guard stat(manifest, &info) != 0 else { return }
        let code = errno
        if code == ENOENT {
            throw SimulatorError.invalidArray("no \(manifestName) in \(directory.path); create one with `sedsim create`")
        }
        throw SimulatorError.invalidArray("cannot look into \(directory.path) (\(SystemError("stat", path: manifest, errno: code)))")
    }

    public static func create(at directory: URL, specification spec: ArraySpecification) throws(SimulatorError) {
        guard spec.drives >= 1 && spec.drives <= 256 else { throw SimulatorError.invalidArray("--drives must be 1…256") }
        guard [512, 4096].contains(spec.blockSize) else { throw SimulatorError.invalidArray("block size must be 512 or 4096") }
        guard spec.sizeBytes >= UInt64(spec.blockSize) * 2048 else {
            throw SimulatorError.invalidArray("--size must be at least \(spec.blockSize * 2048) bytes")
        }
        // Each drive's media is one sparse file: stay within what ext4 (4 KiB blocks) and XFS hold.
        guard spec.sizeBytes <= Self.maximumDriveSize else {
            throw SimulatorError.invalidArray("--size must be at most 16T (\(Self.maximumDriveSize) bytes), the largest file the backing filesystem is sure to hold")
        }
        guard spec.settings.lifetimeFailureLimit >= 1 else { throw SimulatorError.invalidArray("--lifetime-limit must be at least 1") }
        let manifest = directory.appendingPathComponent(manifestName)
        if FileManager.default.fileExists(atPath: manifest.path) {
            throw SimulatorError.invalidArray("\(directory.path) already holds an array; choose an empty directory")
        }
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw SimulatorError.storage("cannot create \(directory.path): \(error.localizedDescription)")
        }
        // PSIDs and drive state live here: owner only, whatever the umask.
        guard chmod(directory.path, 0o700) == 0 else {
            throw SimulatorError.storage("cannot restrict \(directory.path) to its owner: \(errnoText())")
        }
        for n in 0..<spec.drives {
            let identity = try makeIdentity(index: n, spec: spec)
            try SimulatedDrive.manufacture(in: driveDirectory(directory, n), identity: identity, settings: spec.settings(ofDrive: n))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try AtomicFile.write(Array(try encoder.encode(spec)), to: manifest.path, mode: 0o600) } catch {
            throw SimulatorError.storage("cannot write \(manifest.path): \(error)")
        }
    }

    static func driveDirectory(_ array: URL, _ n: Int) -> URL { array.appendingPathComponent("drive-\(n)") }

    /// Copies drive `n` of the array at `source` — media, firmware state and all, exactly as it is
    /// — into a new one-drive array at `destination`: a drive pulled from its bay (`sedsim
    /// appliance steal`). The caller powers the drive off first, as pulling it does.
    public static func copyDrive(_ n: Int, of source: URL, to destination: URL) throws(SimulatorError) {
        let spec: ArraySpecification
        do { spec = try JSONDecoder().decode(ArraySpecification.self, from: Data(contentsOf: source.appendingPathComponent(manifestName))) } catch {
            throw SimulatorError.invalidArray("\(source.path) has no readable \(manifestName)")
        }
        guard n >= 0 && n < spec.drives else { throw SimulatorError.noSuchDrive(n) }
        if FileManager.default.fileExists(atPath: destination.path) {
            throw SimulatorError.invalidArray("\(destination.path) exists already; name a new directory")
        }
        do { try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
            throw SimulatorError.storage("cannot create \(destination.path): \(error.localizedDescription)")
        }
        // cp keeps the media files sparse; Foundation's copy would write every hole out.
        let copy: SpawnedProcess
        do {
            copy = try SpawnedProcess("/bin/cp", ["-a", "--sparse=always", driveDirectory(source, n).path, driveDirectory(destination, 0).path])
        } catch { throw SimulatorError.storage("cannot start cp: \(error)") }
        guard copy.wait() == 0 else { throw SimulatorError.storage("copying drive \(n) to \(destination.path) failed") }
        var single = spec
        single.drives = 1
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try AtomicFile.write(Array(try encoder.encode(single)), to: destination.appendingPathComponent(manifestName).path, mode: 0o600) } catch {
            throw SimulatorError.storage("cannot write \(destination.path)/\(manifestName): \(error)")
        }
    }

    private static func randomString(_ count: Int, alphabet: String) throws(SimulatorError) -> String {
        let chars = Array(alphabet)
        return String(try DriveCrypto.randomBytes(count).map { chars[Int($0) % chars.count] })
    }

    private static func makeIdentity(index: Int, spec: ArraySpecification) throws(SimulatorError) -> DriveIdentity {
        let alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
        let serial = "SIM" + (try randomString(9, alphabet: alnum))
        let padded = serial + String(repeating: " ", count: 20 - serial.count)
        let wwnLow = try DriveCrypto.randomBytes(5).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let family = switch spec.settings(ofDrive: index).ssc ?? .opal {
        case .opal: "Opal 2"
        case .pyrite: "Pyrite 2"
        case .enterprise: "Enterprise"
        case .ruby: "Ruby"
        case .opalite: "Opalite"
        }
        let model: String
        switch spec.kind {
        case .nvme: model = "SEDSIM NVMe " + family
        case .sas: model = "SEDSIM SAS " + family
        case .sata: model = "SEDSIM SATA " + family
        }
        return DriveIdentity(kind: spec.kind, model: model, serial: padded, firmware: "1.0",
                             wwn: 0x5000_0000_0000_0000 | 0x05E_D000 << 36 | wwnLow,
                             psid: try randomString(32, alphabet: alnum), msid: try randomString(32, alphabet: alnum),
                             blockSize: spec.blockSize, blockCount: spec.sizeBytes / UInt64(spec.blockSize))
    }

    /// Opens an array and powers its drives on.
    public init(directory: URL) throws(SimulatorError) {
        self.directory = directory
        let manifest = directory.appendingPathComponent(Self.manifestName)
        let spec: ArraySpecification
        do { spec = try JSONDecoder().decode(ArraySpecification.self, from: Data(contentsOf: manifest)) } catch {
            throw SimulatorError.invalidArray("\(directory.path) has no readable \(Self.manifestName); create it with `sedsim create`")
        }
        var drives: [SimulatedDrive] = []
        for n in 0..<spec.drives { drives.append(try SimulatedDrive(directory: Self.driveDirectory(directory, n))) }
        self.drives = drives
    }

    public func drive(_ n: Int) throws(SimulatorError) -> SimulatedDrive {
        guard n >= 0 && n < drives.count else { throw SimulatorError.noSuchDrive(n) }
        return drives[n]
    }

    /// Carries out one link request against the array.
    public func handle(_ request: LinkRequest) -> LinkResponse {
        if request.operation == .listDrives {
            return json(drives.enumerated().map { $0.element.identityForLink })
        }
        guard Int(request.drive) < drives.count else {
            return .failure(.noSuchDrive, "the array has no drive \(request.drive) (it has \(drives.count))")
        }
        let drive = drives[Int(request.drive)]
        switch request.operation {
        case .identify:
            return json(drive.identityForLink)
        case .securityProtocolOut:
            do {
                try drive.securityProtocolOut(protocolID: request.protocolID, spSpecific: request.spSpecific, payload: request.payload)
                return LinkResponse(.ok)
            } catch { return illegal(error) }
        case .securityProtocolIn:
            guard request.length <= UInt32(LinkSocket.maximumFrame - 64) else {
                return .failure(.illegalRequest, "allocation length \(request.length) is too large")
            }
            do {
                return LinkResponse(.ok, payload: try drive.securityProtocolIn(
                    protocolID: request.protocolID, spSpecific: request.spSpecific, allocationLength: Int(request.length)))
            } catch { return illegal(error) }
        case .read:
            guard Int(request.length) * drive.blockSize <= LinkSocket.maximumFrame - 64 else {
                return .failure(.illegalRequest, "transfer of \(request.length) blocks is too large")
            }
            do { return LinkResponse(.ok, payload: try drive.read(lba: request.lba, count: Int(request.length))) }
            catch { return media(error) }
        case .write:
            do {
                try drive.write(lba: request.lba, data: request.payload)
                return LinkResponse(.ok)
            } catch { return media(error) }
        case .powerCycle:
            do { try drive.powerCycle(); return LinkResponse(.ok) } catch { return .failure(.failed, "\(error)") }
        case .hardwareReset:
            do { try drive.hardwareReset(); return LinkResponse(.ok) } catch { return .failure(.failed, "\(error)") }
        case .status:
            return json(drive.statusReport(index: Int(request.drive)))
        case .setFaults:
            guard let plan = try? JSONDecoder().decode(FaultPlan.self, from: Data(request.payload)) else {
                return .failure(.illegalRequest, "fault plan is not valid JSON")
            }
            drive.setFaults(plan)
            return LinkResponse(.ok)
        case .listDrives:
            return LinkResponse(.ok)
        case .scsiCommand:
            guard drive.identity.kind != .nvme else {
                return .failure(.illegalRequest, "drive \(request.drive) is an NVMe drive; it takes NVMe commands, not SCSI")
            }
            do { return LinkResponse(.ok, payload: SCSITarget(drive: drive).execute(try LinkSCSICommand(request)).encoded()) }
            catch { return .failure(.illegalRequest, "\(error)") }
        case .nvmeAdminCommand, .nvmeIOCommand:
            guard drive.identity.kind == .nvme else {
                return .failure(.illegalRequest, "drive \(request.drive) is a \(drive.identity.kind.rawValue.uppercased()) drive; it takes SCSI commands, not NVMe")
            }
            do {
                let command = try LinkNVMeCommand(request)
                let controller = NVMeController(drive: drive)
                let result = request.operation == .nvmeAdminCommand ? controller.executeAdmin(command) : controller.executeIO(command)
                return LinkResponse(.ok, payload: result.encoded())
            } catch { return .failure(.illegalRequest, "\(error)") }
        }
    }

    private func json<T: Encodable>(_ value: T) -> LinkResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(value) else { return .failure(.failed, "cannot encode response") }
        return LinkResponse(.ok, payload: Array(data))
    }

    private func illegal(_ error: SimulatedDrive.SecurityCommandError) -> LinkResponse {
        switch error {
        case .illegalRequest(let message): return .failure(.illegalRequest, message)
        }
    }

    private func media(_ error: SimulatedDrive.MediaError) -> LinkResponse {
        switch error {
        case .dataProtect(let range): return .failure(.dataProtect, "LBA range is locked (locking range \(range))")
        case .outOfRange: return .failure(.illegalRequest, "LBA out of range")
        case .failed(let message): return .failure(.failed, message)
        }
    }
}

extension SimulatedDrive {
    var blockSize: Int { lock.withLock { record.identity.blockSize } }

    var settings: DriveSettings { lock.withLock { record.settings } }

    var identityForLink: LinkDeviceIdentity {
        lock.withLock {
            let id = record.identity
            return LinkDeviceIdentity(kind: id.kind.rawValue, model: id.model, serial: id.serial, firmware: id.firmware,
                                      wwn: id.wwn, blockSize: id.blockSize, blockCount: id.blockCount)
        }
    }
}
