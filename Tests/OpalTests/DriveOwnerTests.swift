import Foundation
import Keys
import Opal
import SecurityTransport
import SedSimulator
import SimulatorTestSupport
import Testing

@Suite("Drive owners: one per drive, in parallel")
struct DriveOwnerTests {
    @Test("eight drives unlock in parallel, each through its own owner; a wrong PIN fails only its drive")
    func parallelUnlock() async throws {
        let fixture = try ArrayFixture(drives: 8)
        let pin = secret("parallel-pin")
        for n in 0..<8 {
            let opal = try OpalDrive(transport: fixture.transport(n), timeout: 5)
            try opal.takeOwnership(newSIDPIN: pin)
            try opal.activateLockingSP(sidPIN: pin)
            try opal.configureRange(0, start: nil, length: nil, readLockEnabled: true, writeLockEnabled: true,
                                    lockOnReset: [.powerCycle], adminPIN: pin)
            try fixture.array.drives[n].powerCycle()
        }
        let array = fixture.array
        let factory = fixture.factory
        let owners = (0..<8).map { DriveOwner(address: .simulated(arrayDirectory: fixture.directory.path, drive: $0),
                                              factory: factory, commandTimeout: 5) }
        let wrong = secret("not-the-pin")
        let outcomes = await withTaskGroup(of: (Int, String).self) { group in
            for (n, owner) in owners.enumerated() {
                let key = n == 5 ? wrong : pin
                group.addTask {
                    do {
                        try await owner.withDrive { (d) throws(OpalError) in
                            try d.setLocked(false, range: 0, as: .admin(1), pin: key)
                        }
                        return (n, "unlocked")
                    } catch let error as OpalError { return (n, "\(error.code)") } catch { return (n, "\(error)") }
                }
            }
            var out: [Int: String] = [:]
            for await (n, code) in group { out[n] = code }
            return out
        }
        #expect(outcomes.count == 8)
        for n in 0..<8 {
            if n == 5 {
                #expect(outcomes[n] == "\(OpalError.Code.notAuthorized)")
                #expect(throws: SimulatedDrive.MediaError.dataProtect(range: 0)) { try array.drives[n].read(lba: 0, count: 1) }
            } else {
                #expect(outcomes[n] == "unlocked")
                #expect(try array.drives[n].read(lba: 0, count: 1).count == 512)
            }
        }
    }

    @Test("an address the factory cannot open is a typed error, not a crash")
    func unopenable() async {
        let owner = DriveOwner(address: .simulated(arrayDirectory: "/nonexistent", drive: 0), factory: TransportFactory())
        await #expect { try await owner.withDrive { (_) throws(OpalError) in } } throws: {
            ($0 as? OpalError)?.code == .transport(.unsupportedProtocol)
        }
    }
}
