#if canImport(Glibc)
import Glibc
#endif

/// Whether a file or directory that decides what root does (the state, key files, PIN files, the
/// metrics folder) can be trusted: owned by root or by this process's own user, and writable by
/// nobody else. Another account that owns one, or may write to it, could swap in content of its
/// own (a database naming its key server) — so it is refused, with the owner named.
public enum FileOwnership {
    /// The owners trusted: root and the effective user of this process (the daemon's own user).
    public static func isTrusted(owner uid: uid_t) -> Bool { uid == 0 || uid == geteuid() }

    /// Why `path` (examined without following a final symbolic link) cannot be trusted, or nil
    /// when it can; nil too when it does not exist or this user may not see it (`allowMissing`:
    /// what cannot be seen cannot be opened either). `privateToOwner` also refuses reading by
    /// others (mode 0700/0600).
    public static func problem(at path: String, privateToOwner: Bool = false, allowMissing: Bool = true) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if (errno == ENOENT || errno == EACCES) && allowMissing { return nil }
            return "cannot examine \(path): \(errnoText())"
        }
        return problem(info, path: path, privateToOwner: privateToOwner)
    }

    /// As above, for what `fstat` or `lstat` returned.
    public static func problem(_ info: stat, path: String, privateToOwner: Bool = false) -> String? {
        if !isTrusted(owner: info.st_uid) {
            return "\(path) is owned by \(describe(uid: info.st_uid)), not by root\(geteuid() == 0 ? "" : " or \(describe(uid: geteuid()))")"
        }
        let mode = info.st_mode & 0o777
        let forbidden: mode_t = privateToOwner ? 0o077 : 0o022
        if mode & forbidden != 0 {
            return "\(path) can be \(mode & 0o022 != 0 ? "written" : "read") by other users (mode \(String(mode, radix: 8)))"
        }
        return nil
    }

    /// "uid 1000 (alice)", or "uid 1000" when the account has no name.
    public static func describe(uid: uid_t) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 1024)
        let found = getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0 && result != nil
        guard found, let name = entry.pw_name else { return "uid \(uid)" }
        return "uid \(uid) (\(String(cString: name)))"
    }
}
