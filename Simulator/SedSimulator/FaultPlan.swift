/// Faults a test can inject into one drive. Counters are consumed as the faults fire.
public struct FaultPlan: Codable, Sendable, Hashable {
    /// The next N responses stay "still processing" (OutstandingData = 1) for `delayPolls` receives each.
    public var delayedResponses = 0
    public var delayPolls = 3
    /// The next N responses are lost: IF-RECV reports nothing outstanding.
    public var droppedResponses = 0
    /// Responses delivered normally before the dropping starts (to cut a host off part way).
    public var dropAfterResponses = 0
    /// The next N StartSession calls answer SP_BUSY.
    public var busySessions = 0
    /// The next N responses have bytes flipped on the wire.
    public var corruptedResponses = 0
    /// The next command that changes persistent state kills the simulator halfway through saving it.
    public var crashDuringNextCommand = false

    public init() {}

    public var isEmpty: Bool { self == FaultPlan() }

    /// What is still armed, one phrase a fault (empty when nothing is): a plan stays armed until
    /// its commands come, however long that takes, so `sedsim status` shows it.
    public var armed: [String] {
        func plural(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
        var phrases: [String] = []
        if droppedResponses > 0 {
            phrases.append("drop the next " + plural(droppedResponses, "response")
                           + (dropAfterResponses > 0 ? " after " + plural(dropAfterResponses, "normal one") : ""))
        }
        if delayedResponses > 0 { phrases.append("delay the next " + plural(delayedResponses, "response") + " (\(plural(delayPolls, "poll")) each)") }
        if busySessions > 0 { phrases.append("SP_BUSY to the next " + plural(busySessions, "StartSession")) }
        if corruptedResponses > 0 { phrases.append("corrupt the next " + plural(corruptedResponses, "response")) }
        if crashDuringNextCommand { phrases.append("crash while saving the next state change") }
        return phrases
    }
}
