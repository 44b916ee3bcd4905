import ControlAPI
import Foundation
import Keys
import Platform
#if canImport(Glibc)
import Glibc
#endif

/// AKs sealed by clevis — Linux's network-bound disk encryption: one or more tang servers, a
/// TPM2, or an sss threshold of them — kept as `KEY-ID.jwe` (mode 0400) in a key directory and
/// opened with `clevis decrypt`. The AK travels to and from clevis through pipes only; the file
/// holds nothing that opens without the tang servers (or the TPM). A new key is opened again
/// before it is kept, so a policy whose servers cannot give it back is never used.
public struct ClevisKeySource: KeyStore {
    /// The sealed file's name suffix: JOSE's compact serialization, as `clevis encrypt` writes it.
    public static let fileSuffix = ".jwe"
    public let command: String
    public let directory: String
    /// How a new key is sealed (nil: this source only opens).
    public let policy: ClevisPolicy?
    /// Where this generation's sealed files were recorded (empty: `directory/KEY-ID.jwe`).
    public let locations: [KeyLocation]
    /// The longest one clevis run may take, within the caller's deadline.
    public let timeout: Double

    public init(command: String, directory: String, policy: ClevisPolicy?, locations: [KeyLocation] = [], timeout: Double) {
        self.command = command
        self.directory = directory
        self.policy = policy
        self.locations = locations
        self.timeout = timeout
    }

    public var name: String { "clevis (sealed keys in \(directory))" }
    /// A tang server that is down may be back within the wait.
    public var answersMayChange: Bool { true }

    public func fetch(keyID: String, deadline: Deadline) -> KeyLookup {
        let recorded = locations.compactMap(\.clevis?.path)
        var reasons: [String] = []
        var refusals = 0
        let paths = recorded.isEmpty ? [directory + "/" + keyID + Self.fileSuffix] : recorded
        for path in paths {
            switch open(path, deadline: deadline) {
            case .found(let ak): return .found(ak)
            case .notHere(let why): reasons.append(why)
            case .refused(let why): reasons.append(why); refusals += 1
            }
        }
        let why = reasons.joined(separator: "; ")
        // Refused only when every file is: an unreachable tang server behind one of them may come back.
        return refusals == paths.count ? .refused(why) : .notHere(why)
    }

    private func open(_ path: String, deadline: Deadline) -> KeyLookup {
        let sealed: [UInt8]
        switch Self.readSealed(path) {
        case .success(let bytes): sealed = bytes
        case .failure(let why): return .refused(why.description)
        }
        var outcome: BoundedCommand.Outcome
        do {
            outcome = try BoundedCommand.run(command, ["decrypt"], input: sealed, deadline: deadline, seconds: timeout, outputLimit: 4096)
        } catch {
            return .refused("cannot run \(command): \(error)")
        }
        // Wiped where it lies: this is the only reference to the buffer the key came in.
        defer { outcome.output.wipe() }
        guard let status = outcome.status else {
            return .notHere("clevis decrypt of \(path) did not finish within \(Int(timeout)) s (a tang server not answering?)")
        }
        guard status == 0 else {
            return .notHere("clevis decrypt of \(path) failed (exit \(status))\(outcome.message.isEmpty ? "" : ": \(outcome.message)")"
                            + " — are its tang servers reachable (or its TPM present)?")
        }
        guard outcome.output.count == 32 else {
            return .refused("clevis decrypt of \(path) gave \(outcome.output.count) bytes, not a 32-byte key")
        }
        return .found(outcome.output.withUnsafeBytes { Secret(copying: $0) })
    }

    /// The sealed file's bytes, when it is one: present (an absent file will not appear by
    /// itself), a regular file root owns that no one else may change, and a JWE in compact form.
    static func readSealed(_ path: String) -> Result<[UInt8], SealedFileProblem> {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return .failure(SealedFileProblem("\(path): the sealed key is not there (\(errnoText()))"))
        }
        defer { try? handle.close() }
        var info = stat()
        guard fstat(handle.fileDescriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            return .failure(SealedFileProblem("\(path) is not a regular file"))
        }
        guard info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
            return .failure(SealedFileProblem("\(path) is not owned by this user or others may change it: refused"))
        }
        guard let data = try? handle.read(upToCount: 1 << 20), data.count < 1 << 20 else {
            return .failure(SealedFileProblem("\(path): unreadable or too large"))
        }
        let bytes = [UInt8](data).filter { $0 != UInt8(ascii: "\n") }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        let base64url = { (byte: UInt8) in
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
        }
        guard parts.count == 5, bytes.allSatisfy({ base64url($0) || $0 == UInt8(ascii: ".") }) else {
            return .failure(SealedFileProblem("\(path) is not a clevis-sealed key (a JWE in compact form)"))
        }
        return .success(bytes)
    }

    struct SealedFileProblem: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    public func store(keyID: String, tag: String, ak: Secret) throws(ControlError) -> [KeyLocation] {
        guard let policy else { throw ControlError(.badRequest, "a key kept by clevis needs its policy", fix: "give --clevis CONFIG (and --clevis-pin)") }
        if let problem = policy.problem { throw ControlError(.badRequest, problem) }
        try LocalKeySource.prepare(keyDirectory: directory)
        // tang and sss ask before trusting a server's advertisement; -y trusts it (name its
        // thumbprint in the configuration, "thp", to pin it instead).
        let trust = policy.pin == "tang" || policy.pin == "sss" ? ["-y"] : []
        var plain = ak.copyBytes()
        defer { plain.wipe() }
        let sealed: BoundedCommand.Outcome
        do {
            sealed = try BoundedCommand.run(command, ["encrypt", policy.pin, policy.config] + trust, input: plain,
                                            deadline: .never, seconds: timeout, outputLimit: 1 << 20)
        } catch {
            throw ControlError(.failed, "cannot run \(command): \(error)", fix: "install clevis (`apt-get install clevis`)")
        }
        guard sealed.status == 0, !sealed.output.isEmpty else {
            throw ControlError(.unreachable, "clevis encrypt \(policy.pin) failed\(sealed.status.map { " (exit \($0))" } ?? " (no answer in \(Int(timeout)) s)")"
                                   + (sealed.message.isEmpty ? "" : ": \(sealed.message)") + "; no key was made",
                               fix: "check the policy's servers (`curl URL/adv` for tang), then run the command again")
        }
        let path = directory + "/" + keyID + Self.fileSuffix
        do { try AtomicFile.createNew(sealed.output, at: path, mode: 0o400) } catch {
            throw ControlError(.failed, "cannot write the sealed key \(path): \(error.cause)")
        }
        // Keys first: opened again before anything depends on it.
        let location = KeyLocation.clevisFile(path: path, policy: policy)
        let check = ClevisKeySource(command: command, directory: directory, policy: nil, locations: [location], timeout: timeout)
        guard case .found(let back) = check.fetch(keyID: keyID, deadline: .never), back == ak else {
            unlink(path)
            throw ControlError(.unreachable, "the key clevis sealed could not be opened again, so it was not kept",
                               fix: "check the policy's servers (`curl URL/adv` for tang), then run the command again")
        }
        return [location]
    }

}
