import CShims

extension Array where Element == UInt8 {
    /// Overwrites the array's bytes with zeros before it is released. Only its own buffer is
    /// cleared: a copy that shares it (another array, a value holding it) must be gone first,
    /// or this clears a fresh copy and the shared one survives.
    public mutating func wipe() {
        withUnsafeMutableBytes { if let b = $0.baseAddress { sedlock_secure_zero(b, $0.count) } }
        removeAll()
    }

    /// Overwrites with zeros, in place, the buffer this array shares with all its copies (a
    /// decoded message read through several values): every copy reads zeros afterwards. For bytes
    /// no one reads again that `wipe` cannot reach without making a fresh copy first.
    public func wipeSharedBuffer() {
        withUnsafeBytes { if let b = $0.baseAddress { sedlock_secure_zero(UnsafeMutableRawPointer(mutating: b), $0.count) } }
    }
}
