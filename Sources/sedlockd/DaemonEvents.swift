import ControlAPI
import Logging

/// The journal's stable MESSAGE_IDs for sedlockd's events (`journalctl MESSAGE_ID=…` finds
/// every unlock, whatever the wording of the message).
enum MessageID {
    static let unlock = "808a19a063f143b7b385551051e49612"
    static let lock = "c35e8d150a0a4a0092b58ae23707c67d"
    static let rekey = "a7d64f8d3df04ecc8337d3c9985f153c"
    static let guardTrip = "374c8290ecbe49c6b28428362d58e575"
    static let faultRaised = "2de9924eb27a4dc49dfd0db495cfe24c"
    static let faultCleared = "5fa2bdf01fd84fada7f0f4a7d15d2a3c"
    static let started = "4fd27d883f64485bbb34333ed01599c9"
    static let setUp = "9dbab587ef7e4e0dab4489765aeaabf5"
    static let bootSummary = "4bd3632033eb46d28a6436b3bbd2a975"
    static let stalled = "06d533a7ba904a97861a0e78fb01b984"
    /// Every ID, for the journal catalog (`systemd/sedlock.catalog` explains each).
    static let all = [unlock, lock, rekey, guardTrip, faultRaised, faultCleared, started, setUp, bootSummary, stalled]
}

/// Turns answered requests and monitor findings into journal records with structured fields.
/// Only what reports carry is logged, and reports never carry a secret.
struct DaemonEvents: Sendable {
    let logger: Logger

    /// One record per drive an array operation touched.
    func answered(_ request: ControlRequest, _ response: ControlResponse, requester: String) {
        switch response {
        case .failure(let error):
            logger.warning("\(name(of: request)) from \(requester) failed: \(error.description)")
        case .array(let report):
            for drive in report.drives {
                let id: String? = switch drive.result {
                case .unlocked: MessageID.unlock
                case .locked: MessageID.lock
                case .rekeyed: MessageID.rekey
                case .guarded: MessageID.guardTrip
                case .setUp, .adopted: MessageID.setUp
                default: nil
                }
                var metadata: Logger.Metadata = ["DRIVE": "\(drive.address)", "RESULT": "\(drive.result.rawValue)",
                                                 "ATTEMPTS": "\(drive.attempts)"]
                if let id { metadata["MESSAGE_ID"] = "\(id)" }
                if let keyID = drive.keyID { metadata["KEY_ID"] = "\(keyID)" }
                let detail = drive.detail.isEmpty ? "" : ": \(drive.detail)"
                if drive.succeeded {
                    logger.info("\(report.operation) \(drive.address): \(drive.result.words)\(detail)", metadata: metadata)
                } else {
                    logger.error("\(report.operation) \(drive.address): \(drive.result.words)\(detail)", metadata: metadata)
                }
            }
            if let trips = report.keyServerRoundTrips {
                logger.info("\(report.operation): keys fetched from the key servers in \(trips) round trip(s) over \(report.keyServerConnections ?? 0) connection(s)",
                            metadata: ["KMIP_ROUND_TRIPS": "\(trips)"])
            }
        default:
            logger.debug("\(name(of: request)) from \(requester) answered")
        }
    }

    func rekeyed(toKeyID keyID: String) {
        logger.notice("the array's key is now \(keyID)", metadata: ["MESSAGE_ID": "\(MessageID.rekey)", "KEY_ID": "\(keyID)"])
    }

    func faultRaised(_ fault: FaultReport.Fault) {
        logger.log(level: fault.severity == "warning" ? .warning : fault.severity == "critical" ? .critical : .error,
                   "fault raised: \(fault.name) on \(fault.object): \(fault.detail) — \(fault.action)",
                   metadata: faultFields(fault, MessageID.faultRaised))
    }

    func faultCleared(_ fault: FaultReport.Fault) {
        logger.notice("fault cleared: \(fault.name) on \(fault.object)", metadata: faultFields(fault, MessageID.faultCleared))
    }

    private func faultFields(_ fault: FaultReport.Fault, _ id: String) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["MESSAGE_ID": "\(id)", "FAULT": "\(fault.name)", "SEVERITY": "\(fault.severity)"]
        if fault.name.hasPrefix("Kmip") && !fault.object.hasPrefix("/") { metadata["KEY_SERVER"] = "\(fault.object)" }
        // DriveGuarded, DriveUnreachable and KeyMismatch are raised on a drive's address.
        if fault.name.hasPrefix("Drive") || fault.name == "KeyMismatch" { metadata["DRIVE"] = "\(fault.object)" }
        return metadata
    }

    private func name(of request: ControlRequest) -> String {
        request.words  // the command's words alone: associated values are never logged
    }
}
