import Foundation
import Opal
import Platform
import SedSimulator
import SimulatorTestSupport
import TCGStorage
import Testing

@Suite("Faulty drives give clear host errors, never hangs")
struct FaultTests {
    @Test("a dropped response times out within the bound")
    func dropped() throws {
        let fixture = try ArrayFixture()
        let opal = try OpalDrive(transport: fixture.transport(), timeout: 0.5)
        var plan = FaultPlan()
        plan.droppedResponses = 1
        fixture.array.drives[0].setFaults(plan)
        let start = Date()
        #expect { _ = try opal.readMSID() } throws: { ($0 as? OpalError)?.code == .timedOut }
        #expect(Date().timeIntervalSince(start) < 5)
        // The drive works again once the fault is spent.
        _ = try opal.readMSID()
    }

    @Test("a delayed response is waited for")
    func delayed() throws {
        let fixture = try ArrayFixture()
        let opal = try OpalDrive(transport: fixture.transport(), timeout: 5)
        var plan = FaultPlan()
        plan.delayedResponses = 3
        plan.delayPolls = 5
        fixture.array.drives[0].setFaults(plan)
        #expect(try opal.readMSID().count == 32)
    }

    @Test("a corrupted response is a malformed-response error")
    func corrupted() throws {
        let fixture = try ArrayFixture()
        let opal = try OpalDrive(transport: fixture.transport(), timeout: 1)
        var plan = FaultPlan()
        plan.corruptedResponses = 1
        fixture.array.drives[0].setFaults(plan)
        #expect { _ = try opal.readMSID() } throws: {
            let code = ($0 as? OpalError)?.code
            return code == .malformedResponse || code == .timedOut
        }
    }

    @Test("SP_BUSY on StartSession is waited out within the command timeout, and reported when it lasts longer")
    func busy() throws {
        let fixture = try ArrayFixture()
        let time = ManualTime()
        let opal = try OpalDrive(transport: fixture.transport(), timeout: 1, time: time)
        var plan = FaultPlan()
        plan.busySessions = 3
        fixture.array.drives[0].setFaults(plan)
        _ = try opal.readMSID()
        plan.busySessions = 1_000
        fixture.array.drives[0].setFaults(plan)
        #expect { _ = try opal.readMSID() } throws: { ($0 as? OpalError)?.code == .spBusy }
        fixture.array.drives[0].setFaults(FaultPlan())
        _ = try opal.readMSID()
    }

    @Test("ComID management: VERIFY_COMID_VALID says issued, or associated while a session is open; STACK_RESET aborts it; nothing asked answers NO_RESPONSE_AVAILABLE; a bad request code is refused")
    func comIDManagement() throws {
        let fixture = try ArrayFixture()
        let transport = fixture.transport()
        let comID: UInt16 = 0x1000
        func ask(_ code: UInt8) throws -> [UInt8] {
            try transport.securityProtocolOut(protocolID: 0x02, spSpecific: comID,
                                              payload: [0x10, 0x00, 0, 0, 0, 0, 0, code] + [UInt8](repeating: 0, count: 504))
            return try transport.securityProtocolIn(protocolID: 0x02, spSpecific: comID, allocationLength: 512)
        }
        func state(_ answer: [UInt8]) -> UInt32 { answer[12..<16].reduce(0) { $0 << 8 | UInt32($1) } }
        let idle = try ask(1)
        #expect(Array(idle[0..<12]) == [0x10, 0x00, 0, 0, 0, 0, 0, 1, 0, 0, 0, 34] && state(idle) == 2)  // Issued
        // Nothing asked since: NO_RESPONSE_AVAILABLE.
        let nothing = try transport.securityProtocolIn(protocolID: 0x02, spSpecific: comID, allocationLength: 46)
        #expect(Array(nothing[0..<12]) == [0x10, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])

        // A write session left open by a host that went away.
        let opal = try OpalDrive(transport: transport, timeout: 0.5)
        let msid = try opal.readMSID()
        var plan = FaultPlan()
        plan.droppedResponses = 2
        plan.dropAfterResponses = 1   // StartSession answered, then the next two answers lost
        fixture.array.drives[0].setFaults(plan)
        _ = try? opal.withSession(.adminSP, as: .sid, credential: msid, write: true) { s throws(OpalError) in
            _ = try s.get(.cPinMSID, columns: Column.CPin.pin...Column.CPin.pin, operation: "read")
        }
        // sedlock reset the stack on its way out: no session is left.
        #expect(fixture.array.drives[0].statusReport(index: 0).openSessions == 0)
        #expect(state(try ask(1)) == 2)

        // By hand: a session open, STACK_RESET, and the drive says it is gone.
        fixture.array.drives[0].setFaults(FaultPlan())
        plan = FaultPlan()
        plan.droppedResponses = 1000
        plan.dropAfterResponses = 1
        fixture.array.drives[0].setFaults(plan)
        _ = try? OpalDrive(transport: transport, timeout: 0.2).withSession(.adminSP, as: .sid, credential: msid, write: true) { _ throws(OpalError) in
            throw OpalError(.invalidState, device: "test", operation: "test", "give up without ending")
        }
        fixture.array.drives[0].setFaults(FaultPlan())
        let reset = try ask(2)
        #expect(Array(reset[0..<12]) == [0x10, 0x00, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4] && state(reset) == 0)
        #expect(fixture.array.drives[0].statusReport(index: 0).openSessions == 0)
        #expect {  // ILLEGAL REQUEST
            try transport.securityProtocolOut(protocolID: 0x02, spSpecific: comID, payload: [0x10, 0x00, 0, 0, 0, 0, 0, 9])
        } throws: { "\($0)".contains("request code 9") }
    }

    @Test("a reply lost in the middle of a write session: the next write session starts at once, not after the drive's 30 s session timeout")
    func abandonedSessionRecovered() throws {
        let fixture = try ArrayFixture()
        let opal = try OpalDrive(transport: fixture.transport(), timeout: 0.5)
        let msid = try opal.readMSID()
        for (dropped, after) in [(1, 1), (2, 1), (1, 0)] {  // the method's answer; it and EndOfSession's; SyncSession itself
            var plan = FaultPlan()
            plan.droppedResponses = dropped
            plan.dropAfterResponses = after
            fixture.array.drives[0].setFaults(plan)
            #expect(throws: OpalError.self) {
                try opal.withSession(.adminSP, as: .sid, credential: msid, write: true) { s throws(OpalError) in
                    _ = try s.get(.cPinMSID, columns: Column.CPin.pin...Column.CPin.pin, operation: "read")
                }
            }
            let start = Date()
            try opal.withSession(.adminSP, as: .sid, credential: msid, write: true) { _ throws(OpalError) in }
            #expect(Date().timeIntervalSince(start) < 0.5, "dropped \(dropped) after \(after)")
        }
    }
}
