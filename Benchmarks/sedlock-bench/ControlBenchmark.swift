import ControlAPI
import ControlSocket
import Foundation

/// `sedlock-bench control SOCKET ROUNDS`: round trips through sedlockd's control socket, each on a
/// new connection as the CLI makes them: `status` (every drive's Level 0 Discovery and each key
/// server tested) and `guardStatus` (the state alone: the socket and framing overhead).
func controlBenchmark(_ args: [String]) throws {
    guard args.count == 3, let rounds = Int(args[2]), rounds > 0 else {
        print("usage: sedlock-bench control SOCKET ROUNDS")
        exit(64)
    }
    for (name, request) in [("status", ControlRequest.status), ("guard_status", .guardStatus(address: nil))] {
        var samples: [Double] = []
        for _ in 0..<rounds {
            let start = now()
            let response = try ControlClient(path: args[1]).send(request, timeout: 30)
            samples.append(now() - start)
            if case .failure(let error) = response { print("\(name) failed: \(error)"); exit(1) }
        }
        samples.sort()
        print(String(format: "control_\(name)_p50_ms %.3f", percentile(samples, 0.5) * 1000))
        print(String(format: "control_\(name)_p99_ms %.3f", percentile(samples, 0.99) * 1000))
    }
}
