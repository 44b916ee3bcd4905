import ControlAPI
import Platform
#if canImport(Glibc)
import Glibc
#endif

/// Who may use the control socket, from the kernel's word on the peer (SO_PEERCRED and
/// SO_PEERGROUPS): root may change state, members of the reader group may read, nobody else
/// gets anything.
public struct AccessPolicy: Sendable {
    public enum Access: Sendable, Equatable {
        case change
        case read
        case refused
    }

    /// The group whose members may read (`sedlock`); nil when it does not exist on this host.
    public let readerGroup: (name: String, gid: UInt32)?

    public init(readerGroupName: String) {
        if let entry = getgrnam(readerGroupName) {
            readerGroup = (readerGroupName, entry.pointee.gr_gid)
        } else {
            readerGroup = nil
        }
    }

    public init(readerGroup: (name: String, gid: UInt32)?) {
        self.readerGroup = readerGroup
    }

    public func access(uid: UInt32, groups: [UInt32]) -> Access {
        if uid == 0 { return .change }
        if let readerGroup, groups.contains(readerGroup.gid) { return .read }
        return .refused
    }

    /// Why a request from this peer is refused, or nil when it may go ahead.
    public func refusal(of request: ControlRequest, uid: UInt32, groups: [UInt32]) -> ControlError? {
        switch access(uid: uid, groups: groups) {
        case .change: return nil
        case .read where !request.changesState: return nil
        case .read:
            return ControlError(.notAuthorized, "uid \(uid) may read the array's state but not change it",
                                fix: "run the command as root")
        case .refused:
            let group = readerGroup.map { "members of group \($0.name) may read" } ?? "no reader group exists on this host"
            return ControlError(.notAuthorized, "uid \(uid) may not use sedlockd: root may change state, \(group)",
                                fix: "run the command as root, or add the user to the group")
        }
    }

    /// The peer's primary and supplementary groups (SO_PEERGROUPS, Linux 4.13+; the primary
    /// group alone where the kernel lacks it).
    public static func groups(of socket: StreamSocket, primary: UInt32) -> [UInt32] {
        var gids = [UInt32](repeating: 0, count: 256)
        var length = socklen_t(gids.count * MemoryLayout<UInt32>.size)
        let soPeerGroups: Int32 = 59
        let rc = gids.withUnsafeMutableBytes { getsockopt(socket.fd, SOL_SOCKET, soPeerGroups, $0.baseAddress, &length) }
        guard rc == 0 else { return [primary] }
        let count = min(gids.count, Int(length) / MemoryLayout<UInt32>.size)
        return [primary] + gids[0..<count]
    }
}
