/// Failures of the simulator itself (not drive statuses, which travel as TCG method statuses).
public enum SimulatorError: Error, CustomStringConvertible, Sendable {
    case crypto(String)
    case storage(String)
    case invalidArray(String)
    case noSuchDrive(Int)
    case busy(String)
    /// A command's argument that cannot be used as given (the message says which and why).
    case badArgument(String)

    public var description: String {
        switch self {
        case .crypto(let m): return "simulator cryptography failed: \(m)"
        case .storage(let m): return "simulator storage: \(m)"
        case .invalidArray(let m): return "not a usable simulated array: \(m)"
        case .noSuchDrive(let n): return "the array has no drive \(n)"
        case .busy(let m): return m
        case .badArgument(let m): return m
        }
    }
}
