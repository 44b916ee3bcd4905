import SedSimulator
import Testing

/// The arrays the lock manager's flows are proven on: every drive Opal, every drive Enterprise
/// SSC, and one array that takes the classes in turn (drive 0 Opal, drive 1 Enterprise, drive 2
/// reported as Ruby, drive 3 as Opalite …).
enum ArrayMix: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case opal, enterprise, mixed

    var subsystemClasses: [SimulatedSSC] {
        switch self {
        case .opal: [.opal]
        case .enterprise: [.enterprise]
        case .mixed: [.opal, .enterprise, .ruby, .opalite]
        }
    }

    var testDescription: String { rawValue }

    /// Cut points for the tests that cut drive 1's exchanges: Opal's on an Opal array, and the
    /// Enterprise drive's (whose sessions take one more exchange each, the Authenticate) on the
    /// mixed array, where drive 1 is the Enterprise one.
    static func cuts(opal: [Int], enterprise: [Int]) -> [(ArrayMix, Int)] {
        opal.map { (.opal, $0) } + enterprise.map { (.mixed, $0) }
    }
}
