import FlyingFox
import Foundation
import Logging
import ServiceLifecycle

/// `GET /metrics` on a loopback address ([metrics] listen): the same Prometheus text as the
/// textfile, rendered at each scrape from what the monitors last found. Anything else is 404.
struct MetricsEndpoint: Service {
    let exporter: MetricsExporter
    let address: MetricsAddress
    let logger: Logger

    func run() async throws {
        do {
            if address.host.contains(":") {
                try await serve(HTTPServer(address: try sockaddr_in6.inet6(ip6: address.host, port: address.port), timeout: 10, logger: .disabled))
            } else {
                try await serve(HTTPServer(address: try sockaddr_in.inet(ip4: address.host, port: address.port), timeout: 10, logger: .disabled))
            }
        } catch is CancellationError {
            return  // stopped with the daemon
        } catch {
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            // The daemon stops with it: a metrics endpoint asked for and missing would go unnoticed.
            throw DaemonFailure("cannot serve metrics on \(address.description): \(error)", status: 1)
        }
    }

    private func serve(_ server: HTTPServer) async throws {
        let exporter = self.exporter
        await server.appendRoute("GET /metrics") { _ in
            HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                         body: Data(exporter.render().utf8))
        }
        logger.info("metrics on http://\(address.description)/metrics")
        try await withGracefulShutdownHandler {
            try await server.run()
        } onGracefulShutdown: {
            Task { await server.stop() }
        }
    }
}
