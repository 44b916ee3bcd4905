import Foundation
import TestSupport
import Testing

/// Every seed and every input that once crashed a fuzz target, replayed through the ordinary build
/// of the fuzz harness: what libFuzzer found stays fixed. (The fuzzing itself is scripts/fuzz.)
@Suite("Fuzz corpus and regressions")
struct FuzzReplayTests {
    @Test("each target replays its seeds and kept crash inputs without trapping",
          arguments: ["tokens", "level0", "methods", "ttlv", "sense", "simulator"])
    func replay(target: String) throws {
        let fuzz = packageRoot.appendingPathComponent("Fuzz").path
        let corpus = "\(fuzz)/corpus/\(target)", regressions = "\(fuzz)/regressions/\(target)"
        let result = try run("sedlock-fuzz", [target, corpus, regressions], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        let seeds = try FileManager.default.contentsOfDirectory(atPath: corpus).count
        let kept = (try? FileManager.default.contentsOfDirectory(atPath: regressions).count) ?? 0
        #expect(seeds > 0 && result.output == "\(target): \(seeds + kept) inputs replayed\n", "\(result.output)")
    }
}
