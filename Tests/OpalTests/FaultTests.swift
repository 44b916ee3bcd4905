import Foundation
import Opal
import Platform
import SedSimulator
import SimulatorTestSupport
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
}
