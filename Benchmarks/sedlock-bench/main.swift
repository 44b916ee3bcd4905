// Measures sedlock and the simulator; `scripts/bench` runs it in release mode beside its baselines.
import Foundation
import Keys
import KMIP
import Opal
import SecurityTransport
import SimulatorTransport
import SedSimulator
import TCGStorage

func now() -> Double { ProcessInfo.processInfo.systemUptime }

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
}

/// Bytes per second of the simulator's XTS transform on 4 KiB data units (one sector = one unit).
func xtsThroughput(seconds: Double) throws -> Double {
    var key = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
    key[32] ^= 0xFF
    let cipher = try XTSCipher(key: key)
    var buffer = [UInt8](repeating: 0xA5, count: 4096 * 64)
    var bytes = 0
    let start = now()
    var lba: UInt64 = 0
    while now() - start < seconds {
        try cipher.apply(encrypt: true, buffer: &buffer, sectorSize: 4096, lba: lba)
        lba += 64
        bytes += buffer.count
    }
    return Double(bytes) / (now() - start)
}

/// Bytes per second through a simulated drive's write path (range lookup, XTS, backing file), 4 KiB blocks.
func driveWriteThroughput(seconds: Double) throws -> Double {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sedlock-bench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    try SimulatedArray.create(at: dir, specification: ArraySpecification(drives: 1, sizeBytes: 256 << 20, blockSize: 4096))
    let drive = try SimulatedArray(directory: dir).drives[0]
    let chunk = [UInt8](repeating: 0x3C, count: 4096 * 64)
    var bytes = 0
    var lba: UInt64 = 0
    let start = now()
    while now() - start < seconds {
        try drive.write(lba: lba, data: chunk)
        lba = (lba + 64) % (65536 - 64)
        bytes += chunk.count
    }
    return Double(bytes) / (now() - start)
}

/// Tokens per second decoding a typical Get response.
func tokenDecodeRate(seconds: Double) throws -> Double {
    let response = MethodPayload.result([.list((3...10).map { .name(UInt64($0), .unsigned(UInt64($0) * 1000)) }
                                               + [.name(11, .bytes([UInt8](repeating: 7, count: 32)))])], status: .success).encoded()
    let perDecode = try TokenDecoder.decode(response).count
    var tokens = 0
    let start = now()
    while now() - start < seconds {
        for _ in 0..<1000 { tokens += try TokenDecoder.decode(response).count }
    }
    _ = perDecode
    return Double(tokens) / (now() - start)
}

struct ServedArray {
    let directory: String
    let drives: Int
    let process: Process

    init(sedsim: String, drives: Int, ssc: String = "opal") throws {
        self.drives = drives
        directory = "/tmp/sedlock-bench-\(UUID().uuidString.prefix(8))"
        let create = Process()
        create.executableURL = URL(fileURLWithPath: sedsim)
        create.arguments = ["create", directory, "--drives", "\(drives)", "--size", "16M", "--ssc", ssc]
        create.standardOutput = FileHandle.nullDevice
        try create.run()
        create.waitUntilExit()
        process = Process()
        process.executableURL = URL(fileURLWithPath: sedsim)
        process.arguments = ["serve", directory]
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: directory + "/sedsim.sock") { usleep(10_000) }
        usleep(50_000)
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Owns every drive of a served array with one PIN and enables global-range locking.
func prepare(_ array: ServedArray, drives: Int, pin: Secret) throws -> [OpalDrive] {
    try (0..<drives).map { n in
        let opal = try OpalDrive(transport: SimulatorTransport(arrayDirectory: array.directory, drive: n))
        try opal.takeOwnership(newSIDPIN: pin)
        try opal.activateLockingSP(sidPIN: pin)
        try opal.configureRange(0, start: nil, length: nil, readLockEnabled: true, writeLockEnabled: true,
                                lockOnReset: [.powerCycle], adminPIN: pin)
        return opal
    }
}

/// Get operations per second against a KMIP server: one reused connection, and a new TLS connection per Get.
func kmipBenchmark(_ args: [String]) throws {
    guard args.count == 7, let port = UInt16(args[2]) else {
        print("usage: sedlock-bench kmip HOST PORT CERT KEY CA UID")
        exit(64)
    }
    let tls = TLSConfiguration(certificatePath: args[3], privateKeyPath: args[4], caPath: args[5])
    let address = ServerAddress(host: args[1], port: port)
    let id = args[6]
    let reused = KMIPClient(connection: KMIPConnection(server: address, configuration: tls))
    _ = try reused.get(id)
    var count = 0
    var start = now()
    while now() - start < 3 { _ = try reused.get(id); count += 1 }
    print(String(format: "kmip_get_per_second_one_connection %.1f", Double(count) / (now() - start)))
    count = 0
    start = now()
    while now() - start < 3 {
        let fresh = KMIPClient(connection: KMIPConnection(server: address, configuration: tls))
        _ = try fresh.get(id)
        fresh.connection.close()
        count += 1
    }
    print(String(format: "kmip_get_per_second_new_connection %.1f", Double(count) / (now() - start)))
    // Decoding a Get response, pure.
    let response = TTLVCodec.encode(.structure(.responseMessage, [
        .structure(.responseHeader, [.structure(.protocolVersion, [.integer(.protocolVersionMajor, 1), .integer(.protocolVersionMinor, 2)]),
                                     TTLV(.timeStamp, .dateTime(1_700_000_000)), .integer(.batchCount, 1)]),
        .structure(.batchItem, [.enumeration(.operation, Operation.get.rawValue), .enumeration(.resultStatus, 0),
                                .structure(.responsePayload, [
                                    .enumeration(.objectType, ObjectType.secretData.rawValue), .text(.uniqueIdentifier, "1234"),
                                    .structure(.secretData, [.enumeration(.secretDataType, 1), .structure(.keyBlock, [
                                        .enumeration(.keyFormatType, 2), .structure(.keyValue, [.bytes(.keyMaterial, [UInt8](repeating: 7, count: 32))]),
                                    ])]),
                                ])]),
    ]))
    count = 0
    start = now()
    while now() - start < 2 {
        for _ in 0..<1000 { _ = try ResponseMessage(decoding: response) }
        count += 1000
    }
    print(String(format: "ttlv_get_response_decodes_per_second %.0f", Double(count) / (now() - start)))
}

/// Level 0 Discovery receives per second through a device node (sg_pt → SG_IO or NVMe ioctl →
/// preload library → link) beside the same receive over the simulator's link directly (the baseline).
/// Run under LD_PRELOAD with the node mapped to drive `drive` of the served array `directory`.
func deviceBenchmark(_ args: [String]) throws {
    guard args.count == 4, let drive = Int(args[3]) else {
        print("usage: sedlock-bench device NODE ARRAY-DIR DRIVE   (under LD_PRELOAD=libsedsim-preload.so)")
        exit(64)
    }
    let node = try PassThroughTransport.open(path: args[1])
    let direct = SimulatorTransport(arrayDirectory: args[2], drive: drive)
    func rate(_ transport: any SecurityTransport) throws -> Double {
        for _ in 0..<50 { _ = try transport.securityProtocolIn(protocolID: 1, spSpecific: 1, allocationLength: 2048) }
        var count = 0
        let start = now()
        while now() - start < 2 {
            _ = try transport.securityProtocolIn(protocolID: 1, spSpecific: 1, allocationLength: 2048)
            count += 1
        }
        return Double(count) / (now() - start)
    }
    let name = node.bus.rawValue
    print(String(format: "device_\(name)_discovery_per_second %.0f", try rate(node)))
    print(String(format: "link_\(name)_discovery_per_second %.0f", try rate(direct)))
}

let arguments = CommandLine.arguments
if arguments.count >= 2 && arguments[1] == "kmip" {
    try kmipBenchmark(Array(arguments.dropFirst()))
    exit(0)
}
if arguments.count >= 2 && arguments[1] == "manager" {
    try await managerBenchmark(Array(arguments.dropFirst()))
    exit(0)
}
if arguments.count >= 2 && arguments[1] == "control" {
    try controlBenchmark(Array(arguments.dropFirst()))
    exit(0)
}
if arguments.count >= 2 && arguments[1] == "device" {
    try deviceBenchmark(Array(arguments.dropFirst()))
    exit(0)
}
guard arguments.count >= 2 else {
    print("usage: sedlock-bench PATH-TO-SEDSIM | sedlock-bench kmip HOST PORT CERT KEY CA UID | sedlock-bench device NODE DIR N"
          + " | sedlock-bench manager PATH-TO-SEDSIM DRIVES | sedlock-bench control SOCKET ROUNDS")
    exit(64)
}
let sedsim = arguments[1]
let pin = Secret(Array("benchmark-pin-0123456789".utf8))

let xts = try xtsThroughput(seconds: 2)
print(String(format: "xts_4k_bytes_per_second %.0f", xts))
let drivePath = try driveWriteThroughput(seconds: 2)
print(String(format: "drive_write_4k_bytes_per_second %.0f", drivePath))
print(String(format: "token_decode_per_second %.0f", try tokenDecodeRate(seconds: 1)))

do {
    let array = try ServedArray(sedsim: sedsim, drives: 1)
    defer { array.stop() }
    let opal = try prepare(array, drives: 1, pin: pin)[0]
    var samples: [Double] = []
    for _ in 0..<200 {
        let t = now()
        try opal.setLocked(false, range: 0, as: .admin(1), pin: pin)
        samples.append(now() - t)
    }
    samples.sort()
    print(String(format: "unlock_round_trip_median_ms %.3f", percentile(samples, 0.5) * 1000))
    print(String(format: "unlock_round_trip_p99_ms %.3f", percentile(samples, 0.99) * 1000))
}

/// 24 drives of one security subsystem class unlocked one after another, then in parallel as the
/// lock manager does it; the figures' names carry the class ("" for Opal, the baseline).
func unlock24(sedsim: String, ssc: String, pin: Secret) async throws {
    let count = 24
    let array = try ServedArray(sedsim: sedsim, drives: count, ssc: ssc)
    defer { array.stop() }
    let drives = try prepare(array, drives: count, pin: pin)
    var sequential = now()
    for d in drives { try d.setLocked(false, range: 0, as: .admin(1), pin: pin) }
    sequential = now() - sequential
    // In parallel, as the lock manager does it: one owner per drive, each on its own queue.
    let owners = (0..<count).map { DriveOwner(address: .simulated(arrayDirectory: array.directory, drive: $0),
                                              factory: .withSimulator) }
    for owner in owners { try await owner.withDrive { (_) throws(OpalError) in } }  // identify + discovery, untimed
    let start = now()
    let failed = await withTaskGroup(of: Bool.self) { group in
        for owner in owners {
            group.addTask {
                do {
                    try await owner.withDrive { (d) throws(OpalError) in try d.setLocked(false, range: 0, as: .admin(1), pin: pin) }
                    return false
                } catch { return true }
            }
        }
        var failures = 0
        for await failed in group where failed { failures += 1 }
        return failures
    }
    let parallel = now() - start
    let name = ssc == "opal" ? "unlock_24_drives" : "unlock_24_\(ssc)_drives"
    print(String(format: "\(name)_parallel_ms %.1f", parallel * 1000))
    print(String(format: "\(name)_sequential_ms %.1f", sequential * 1000))
    print("\(name)_failures \(failed)")
}

for ssc in ["opal", "enterprise"] { try await unlock24(sedsim: sedsim, ssc: ssc, pin: pin) }
