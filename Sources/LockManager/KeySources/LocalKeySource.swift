import ControlAPI
import Foundation
import Keys
import Platform
#if canImport(Glibc)
import Glibc
#endif

/// AKs kept on this machine: a systemd credential (`$CREDENTIALS_DIRECTORY/sedlock.ak`, sealed
/// with `systemd-creds encrypt`, TPM2 where the host has one, given to the unit by
/// LoadCredentialEncrypted=) or root-only files `KEY-ID.ak` (mode 0400) in a key directory.
/// A file that others can read, or that root does not own, is refused.
public struct LocalKeySource: KeyStore {
    public static let credentialName = "sedlock.ak"
    public let directory: String
    public let credentialsDirectory: String?

    public init(directory: String, credentialsDirectory: String? = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"]) {
        self.directory = directory
        self.credentialsDirectory = credentialsDirectory
    }

    public var name: String { "local keys in \(directory)" }
    public var answersMayChange: Bool { false }

    /// The credential first, then the key file. A refusal of one does not hide the other: the
    /// key is refused only when neither has it and one was refused.
    public func fetch(keyID: String, deadline: Deadline) -> KeyLookup {
        var paths: [(String, Bool)] = []
        if let credentialsDirectory { paths.append((credentialsDirectory + "/" + Self.credentialName, true)) }
        paths.append((directory + "/" + keyID + ".ak", false))
        var reasons: [String] = []
        var refused = false
        for (path, credential) in paths {
            switch read(path, keyID: keyID, credential: credential) {
            case .found(let ak): return .found(ak)
            case .notHere(let why): reasons.append(why)
            case .refused(let why): reasons.append(why); refused = true
            }
        }
        let why = reasons.joined(separator: "; ")
        return refused ? .refused(why) : .notHere(why)
    }

    private func read(_ path: String, keyID: String, credential: Bool) -> KeyLookup {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            // Absent: not here. Present but unopenable (a symbolic link, no permission): refused.
            let why = "\(path): \(errnoText())"
            return errno == ENOENT || errno == ENOTDIR ? .notHere(why) : .refused(why)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return .refused("\(path) is not a regular file") }
        // systemd hands credentials over in a private directory it owns; key files are checked here.
        if !credential {
            guard info.st_uid == geteuid() else { return .refused("\(path) is not owned by this user (uid \(geteuid())): refused") }
            guard info.st_mode & 0o077 == 0 else {
                return .refused("\(path) can be read by others (mode \(String(info.st_mode & 0o777, radix: 8))): refused; chmod 400 it")
            }
        }
        var bytes = [UInt8](repeating: 0, count: 512)
        defer { bytes.wipe() }
        let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0, n < 512 else { return .refused("\(path): unreadable or too large") }
        guard let (id, ak) = AuthenticationKeyFile.decode(bytes[0..<n]) else {
            return .refused("\(path) is not a sedlock key file")
        }
        guard id == keyID else { return .notHere("\(path) holds key \(id), not \(keyID)") }
        return .found(ak)
    }

    /// Creates the key directory (mode 0700) when missing, and refuses one that is not safe.
    static func prepare(keyDirectory directory: String) throws(ControlError) {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw ControlError(.failed, "cannot create the key directory \(directory): \(errnoText())")
        }
        // A key directory another account owns could take the key file away or read a later one.
        if let problem = FileOwnership.problem(at: directory, privateToOwner: true, allowMissing: false) {
            throw ControlError(.badRequest, "the key directory is not safe: \(problem)",
                               fix: "check what is in it, then `chown root:root \(directory)` and `chmod 700 \(directory)`")
        }
    }

    public func store(keyID: String, tag: String, ak: Secret) throws(ControlError) -> [KeyLocation] {
        try Self.prepare(keyDirectory: directory)
        let path = directory + "/" + keyID + ".ak"
        var bytes = AuthenticationKeyFile.encode(keyID: keyID, ak: ak)
        defer { bytes.wipe() }
        do { try AtomicFile.createNew(bytes, at: path, mode: 0o400) } catch {
            throw ControlError(.failed, "cannot write the key file \(path): \(error.cause)")
        }
        return [.localFile(path: path)]
    }
}
