import ControlAPI
import ControlSocket
import Foundation
import Logging
import ServiceLifecycle
import Systemd

/// Serves the control socket for the life of the daemon; tells systemd READY=1 once it accepts.
struct ControlService: Service {
    let server: ControlServer
    /// The socket file this process bound (removed on stop); nil when systemd owns it.
    let boundPath: String?
    let serviceManager: ServiceManager
    let statusLine: StatusLine
    let logger: Logger

    func run() async throws {
        server.start()
        serviceManager.ready(status: statusLine.text)
        logger.notice("sedlockd serves its control socket", metadata: ["MESSAGE_ID": "\(MessageID.started)"])
        try? await gracefulShutdown()
        serviceManager.stopping(status: "stopping: finishing requests in flight")
        await server.stop()
        if let boundPath { unlink(boundPath) }
    }
}
