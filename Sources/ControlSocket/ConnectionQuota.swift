/// Who gets a connection slot on the control socket, so that no reader can shut root out: root
/// and the daemon's own user have slots of their own that readers never take; readers share a
/// small pool, each user at most a few of it; when the pool (or a user's share) is full, the
/// reader connection idle longest — waiting for its next request, not being answered — is closed
/// to make room, and only when none is idle is the newcomer told "busy". Pure bookkeeping: the
/// server closes what it is told to.
public struct ConnectionQuota: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Connections root and the daemon's own user may hold at once.
        public var privileged: Int
        /// Connections all other users together may hold at once.
        public var readers: Int
        /// Connections one other user may hold at once.
        public var perReader: Int

        public init(privileged: Int = 256, readers: Int = 32, perReader: Int = 4) {
            self.privileged = privileged
            self.readers = readers
            self.perReader = perReader
        }
    }

    /// What the server should do with a new connection.
    public enum Admission: Sendable, Equatable {
        /// Serve it; first close these connections (idle readers making room).
        case admitted(id: Int, closing: [Int])
        /// Answer busy and close it.
        case busy(String)
    }

    private struct Entry {
        var uid: UInt32
        var privileged: Bool
        var idleSince: UInt64?
    }

    public let limits: Limits
    /// The users whose connections are privileged (root and the daemon's own).
    private let privilegedUsers: Set<UInt32>
    private var entries: [Int: Entry] = [:]
    private var nextID = 0

    public init(limits: Limits, privilegedUsers: Set<UInt32>) {
        self.limits = limits
        self.privilegedUsers = privilegedUsers
    }

    public var count: Int { entries.count }

    /// A connection from `uid` arrives at `now` (a monotonic clock); it counts as idle until
    /// its first request arrives.
    public mutating func admit(uid: UInt32, now: UInt64) -> Admission {
        let privileged = privilegedUsers.contains(uid)
        var closing: [Int] = []
        if privileged {
            guard entries.values.filter(\.privileged).count < limits.privileged else {
                return .busy("sedlockd serves \(limits.privileged) connections of root at once")
            }
        } else {
            if entries.values.filter({ $0.uid == uid }).count >= limits.perReader {
                guard let idle = longestIdle(where: { $0.uid == uid }) else {
                    return .busy("uid \(uid) has \(limits.perReader) connections open, each with a request in hand")
                }
                closing.append(idle)
                entries[idle] = nil
            }
            if entries.values.filter({ !$0.privileged }).count >= limits.readers {
                guard let idle = longestIdle(where: { !$0.privileged }) else {
                    return .busy("sedlockd serves \(limits.readers) reader connections at once, each with a request in hand")
                }
                closing.append(idle)
                entries[idle] = nil
            }
        }
        let id = nextID
        nextID += 1
        entries[id] = Entry(uid: uid, privileged: privileged, idleSince: now)
        return .admitted(id: id, closing: closing)
    }

    /// The connection has a request in hand (not idle) or waits for its next one (idle since `now`).
    public mutating func mark(_ id: Int, idle: Bool, now: UInt64) {
        entries[id]?.idleSince = idle ? now : nil
    }

    /// The connection ended (or was closed to make room).
    public mutating func release(_ id: Int) { entries[id] = nil }

    private func longestIdle(where matches: (Entry) -> Bool) -> Int? {
        entries.filter { matches($0.value) && $0.value.idleSince != nil }
            .min { ($0.value.idleSince ?? 0, $0.key) < ($1.value.idleSince ?? 0, $1.key) }?.key
    }
}
