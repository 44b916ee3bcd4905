import ControlAPI
import LockManager
import Logging
import Platform
import ServiceLifecycle
import Synchronization
import Systemd

/// The daemon's monitors, each on its own interval: drives (reachable, locked), key servers
/// (TLS, authentication, a Locate, per server), the RDL security token, and certificates with the
/// rest of the state's faults. Faults they raise or clear are logged once each and counted in
/// STATUS=. A lost token under lock-on-loss locks every drive through the work loop.
struct MonitorService: Service {
    let manager: LockManager
    let settings: LiveConfiguration
    let statusLine: StatusLine
    let events: DaemonEvents
    let serviceManager: ServiceManager
    let executor: BlockingExecutor
    let loop: WorkLoop
    let metrics: MetricsExporter
    /// When relocked drives are next tried, after failures.
    let relock = RetryBackoff()
    /// udev's block and NVMe events since the drives were last checked: the drive check then runs
    /// within a second instead of waiting out its interval (a drive pulled and reinserted).
    let deviceEvents = DeviceEventTally()

    private enum Check: CaseIterable { case drives, keyServers, rdlToken, certificates }

    func run() async throws {
        let udev = listenForDeviceEvents()
        await withTaskExecutorPreference(executor) {
            var due: [Check: ContinuousClock.Instant] = [:]
            var known: [String: FaultReport.Fault] = [:]
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let now = ContinuousClock.now
                let current = settings.current
                let intervals = [Check.drives: current.driveInterval, .keyServers: current.keyServerInterval,
                                 .rdlToken: current.tokenInterval, .certificates: current.certificateInterval]
                if let (count, last) = deviceEvents.take() {
                    events.logger.info("udev: \(count) device event(s), the last \(last.action) of \(last.deviceNode ?? last.subsystem): checking the drives now")
                    due[.drives] = now
                }
                // A request changed drives: the line says what it knows at once, the look confirms.
                if statusLine.takeRecheck() { due[.drives] = now }
                var ran = false
                for check in Check.allCases where due[check].map({ $0 <= now }) ?? true {
                    await perform(check)
                    due[check] = now + .milliseconds(Int64((intervals[check] ?? 60) * 1000))
                    ran = true
                }
                if ran { known = evaluateFaults(known) }
                // Whatever requests and checks freed since the last wake goes back to the kernel.
                ProcessMemory.releaseFreeMemory()
                let next = due.values.min() ?? now + .seconds(1)
                // Wake at least every second, so a reload's new intervals apply soon.
                try? await Task.sleep(until: min(next, ContinuousClock.now + .seconds(1)), clock: .continuous)
            }
        }
        await udev?.stop()
    }

    /// udev's events for block devices and NVMe controllers, where udev runs; without them the
    /// drive interval alone finds a drive that came back.
    private func listenForDeviceEvents() -> DeviceEvents? {
        let tally = deviceEvents
        do {
            let listening = try DeviceEvents(subsystems: ["block", "nvme"]) { tally.add($0) }
            events.logger.info("udev: listening for block and NVMe device events")
            return listening
        } catch {
            events.logger.notice("udev events are not heard (\(error.description)): drives are checked every drive interval only")
            return nil
        }
    }

    private func perform(_ check: Check) async {
        do throws(ControlError) {
            switch check {
            case .drives:
                for drive in try manager.lookForUnmanagedDrives() {
                    let what = "a drive that is not the array's is in reach: \(drive.address) (\(drive.model) \(drive.serial), \(drive.subsystems.joined(separator: ", "))"
                            + "\(drive.owned == true ? ", owned" : ", factory SID")); sedlock leaves it alone — `sedlock array add \(drive.address)` makes it the array's"
                    events.logger.notice("\(what)", metadata: ["DRIVE": "\(drive.address)"])
                }
                let report = try await manager.checkDrives()
                statusLine.drives(report)
                metrics.record { $0.status = report }
                await unlockRelocked(report)
            case .keyServers:
                let report = try manager.probeKeyServers()
                statusLine.keyServers(report)
                metrics.record { $0.keyServers = report }
            case .rdlToken:
                if case .lockNow(let why) = try await manager.rdlMonitor() {
                    events.logger.critical("Rapid Data Locking: \(why); locking every drive now (lock on loss)",
                                           metadata: ["MESSAGE_ID": "\(MessageID.lock)", "FAULT": "RdlTokenUnavailable"])
                    let manager = self.manager
                    let response = await loop.perform {
                        await LockManager.$requester.withValue("sedlockd (RDL lock on loss)") {
                            await manager.respond(to: .lock(LockRequest(drives: .all)))
                        }
                    }
                    if let response { events.answered(.lock(LockRequest(drives: .all)), response, requester: "RDL lock on loss") }
                }
            case .certificates: break  // evaluated with the state's faults, below
            }
        } catch {
            events.logger.error("\(check) monitor: \(error.description)")
        }
    }

    /// Drives locked that nobody locked on purpose (pulled and reinserted, power-cycled alone, a
    /// boot that was held) are unlocked again through the work loop, with every guard of an
    /// operator's unlock. While that fails (keys not yet in hand), it is asked again after a
    /// doubling delay, one drive interval to ten minutes.
    private func unlockRelocked(_ report: StatusReport) async {
        let relocked = report.drives.filter(\.relocked).map(\.address)
        guard !relocked.isEmpty, relock.isDue() else { return }
        events.logger.notice("drives locked without an operator's lock: unlocking \(relocked.joined(separator: ", ")) again",
                             metadata: ["MESSAGE_ID": "\(MessageID.unlock)"])
        let manager = self.manager
        let request = ControlRequest.unlock(UnlockRequest(drives: .some(relocked)))
        let response = await loop.perform {
            await LockManager.$requester.withValue("sedlockd (relocked drives)") { await manager.respond(to: request) }
        }
        guard let response else { return }
        events.answered(request, response, requester: "sedlockd (relocked drives)")
        let unlocked = if case .array(let outcome) = response { outcome.drives.filter { $0.result == .unlocked }.count } else { 0 }
        metrics.record { $0.relockedUnlocked += unlocked }
        relock.settle(allDone: unlocked == relocked.count, interval: settings.current.driveInterval)
    }

    /// Reads the open faults (evaluating the state's own), logs what changed since `known`.
    private func evaluateFaults(_ known: [String: FaultReport.Fault]) -> [String: FaultReport.Fault] {
        let report: FaultReport
        do { report = try manager.faults() } catch {
            events.logger.error("fault evaluation: \(error.description)")
            return known
        }
        var now: [String: FaultReport.Fault] = [:]
        for fault in report.open { now["\(fault.name) \(fault.object)"] = fault }
        for (key, fault) in now where known[key] == nil { events.faultRaised(fault) }
        let newlyRaised = now.filter { known[$0.key] == nil }.map(\.value.name)
        metrics.record { snapshot in
            snapshot.faults = report
            for name in newlyRaised { snapshot.raised[name, default: 0] += 1 }
        }
        do { try metrics.writeFile() } catch {
            events.logger.warning("metrics file: \(error)")
        }
        for (key, fault) in known where now[key] == nil { events.faultCleared(fault) }
        statusLine.faults(open: now.count)
        serviceManager.status(statusLine.text)
        return now
    }
}

/// A bounded, doubling retry: due at once; after a failure not before `interval`, then twice as
/// long each time, at most ten minutes; a success makes it due at once again.
final class RetryBackoff: Sendable {
    private struct State {
        var next: ContinuousClock.Instant?
        var delay: Duration = .zero
    }

    private let state = Mutex(State())
    static let longest = Duration.seconds(600)

    func isDue() -> Bool { state.withLock { $0.next.map { ContinuousClock.now >= $0 } ?? true } }

    func settle(allDone: Bool, interval: Double) {
        state.withLock { state in
            if allDone {
                state = State()
                return
            }
            let first = Duration.milliseconds(Int64(interval * 1000))
            state.delay = state.delay == .zero ? first : min(state.delay * 2, Self.longest)
            state.next = ContinuousClock.now + state.delay
        }
    }
}

/// udev events counted between two drive checks, and the last of them (to log).
final class DeviceEventTally: Sendable {
    private let state = Mutex<(count: Int, last: DeviceEvent?)>((0, nil))

    func add(_ event: DeviceEvent) { state.withLock { $0 = ($0.count + 1, event) } }

    /// The events since the last take, or nil when there were none.
    func take() -> (Int, DeviceEvent)? {
        state.withLock { state in
            defer { state = (0, nil) }
            return state.last.map { (state.count, $0) }
        }
    }
}
