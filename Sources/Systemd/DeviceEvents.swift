import CSystemd
import Foundation
import Synchronization

/// What udev reports of a device: its action (add, change, remove …), subsystem and node.
public struct DeviceEvent: Sendable, Hashable {
    public var action: String
    public var subsystem: String
    public var deviceNode: String?
}

/// Why udev's events cannot be heard (sd-device's error, as text).
public struct DeviceEventsError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// udev's device events, as udev broadcasts them once it has processed a device, on a thread of
/// their own (sd-device's monitor on an sd-event loop). Where no udev runs (a container, a host
/// without /run/udev and devtmpfs) sd-device gives a monitor that hears nothing; whoever uses
/// these events keeps an interval of its own for that case.
public final class DeviceEvents: Sendable {
    private final class Context: Sendable {
        let subsystems: Set<String>
        let handler: @Sendable (DeviceEvent) -> Void
        let stopping = Atomic<Bool>(false)
        init(subsystems: Set<String>, handler: @escaping @Sendable (DeviceEvent) -> Void) {
            self.subsystems = subsystems
            self.handler = handler
        }
    }

    private let context: Context
    private let finished = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let ended = Atomic<Bool>(false)

    /// Starts listening; `handler` runs on the listening thread for each event of one of
    /// `subsystems`. Throws with why when sd-device cannot listen (then nothing runs).
    public init(subsystems: Set<String>, handler: @escaping @Sendable (DeviceEvent) -> Void) throws(DeviceEventsError) {
        context = Context(subsystems: subsystems, handler: handler)
        let started = Mutex<Result<Void, DeviceEventsError>?>(nil)
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [context, self] in
            Self.listen(context) { result in
                started.withLock { $0 = result }
                ready.signal()
            }
            ended.store(true, ordering: .sequentiallyConsistent)
            finished.withLock { $0?.resume(); $0 = nil }
        }
        thread.name = "udev-events"
        thread.start()
        ready.wait()
        if case .failure(let error)? = started.withLock({ $0 }) { throw error }
    }

    /// Stops listening; returns once the thread has ended (within its one-second poll).
    public func stop() async {
        context.stopping.store(true, ordering: .sequentiallyConsistent)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = finished.withLock { waiting -> Bool in
                if ended.load(ordering: .sequentiallyConsistent) { return true }
                waiting = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// The loop: every object is made, used and freed on this one thread (sd-event is not
    /// thread-safe). It wakes at least once a second to see whether it is asked to stop.
    private static func listen(_ context: Context, started: (Result<Void, DeviceEventsError>) -> Void) {
        var event: OpaquePointer?
        var monitor: OpaquePointer?
        defer {
            if let monitor { sd_device_monitor_unref(monitor) }
            if let event { sd_event_unref(event) }
        }
        var rc = sd_event_new(&event)
        if rc >= 0 { rc = sd_device_monitor_new(&monitor) }
        if rc >= 0 { rc = sd_device_monitor_attach_event(monitor, event) }
        let box = Unmanaged.passRetained(context)
        defer { box.release() }
        if rc >= 0 {
            rc = sd_device_monitor_start(monitor, { _, device, userdata in
                guard let device, let userdata else { return 0 }
                let context = Unmanaged<Context>.fromOpaque(userdata).takeUnretainedValue()
                var subsystem: UnsafePointer<CChar>?
                guard sd_device_get_subsystem(device, &subsystem) >= 0, let subsystem,
                      context.subsystems.contains(String(cString: subsystem)) else { return 0 }
                var action = sd_device_action_t(rawValue: 0)
                let actionName = sd_device_get_action(device, &action) >= 0 ? DeviceEvents.name(of: action) : "unknown"
                var node: UnsafePointer<CChar>?
                let deviceNode = sd_device_get_devname(device, &node) >= 0 ? node.map { String(cString: $0) } : nil
                context.handler(DeviceEvent(action: actionName, subsystem: String(cString: subsystem), deviceNode: deviceNode))
                return 0
            }, box.toOpaque())
        }
        guard rc >= 0 else {
            started(.failure(DeviceEventsError(description: "sd-device cannot listen for udev events: \(String(cString: strerror(-rc)))")))
            return
        }
        started(.success(()))
        while !context.stopping.load(ordering: .sequentiallyConsistent) {
            // One second at most, in microseconds; an error ends the loop (nothing more is heard).
            if sd_event_run(event, 1_000_000) < 0 { break }
        }
    }

    static func name(of action: sd_device_action_t) -> String {
        switch action {
        case SD_DEVICE_ADD: "add"
        case SD_DEVICE_REMOVE: "remove"
        case SD_DEVICE_CHANGE: "change"
        case SD_DEVICE_MOVE: "move"
        case SD_DEVICE_ONLINE: "online"
        case SD_DEVICE_OFFLINE: "offline"
        case SD_DEVICE_BIND: "bind"
        case SD_DEVICE_UNBIND: "unbind"
        default: "unknown"
        }
    }
}
