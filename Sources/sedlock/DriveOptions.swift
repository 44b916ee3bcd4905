import ArgumentParser
import ControlAPI
import Foundation
import Keys
import Opal
import SecurityTransport
import SimulatorTransport
import TCGStorage

extension PinDerivation: ExpressibleByArgument {}
extension SerialSalt: ExpressibleByArgument {}

/// The drive a command acts on, and how long to wait for it.
struct DeviceOptions: ParsableArguments {
    @Argument(help: "The drive: a device node (/dev/…) or a simulated drive (sim:DIR/N).", completion: DeviceCompletion.kind)
    var device: String

    @Option(help: "Seconds to wait for each drive command before giving up.")
    var timeout: Double = 10

    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        do { _ = try DeviceAddress.parse(device) } catch { throw ValidationError(error.description) }
        guard timeout > 0 && timeout <= 600 else { throw ValidationError("--timeout must be between 0 and 600 seconds") }
    }

    func openTransport() throws -> any SecurityTransport {
        let address: DeviceAddress
        do { address = try DeviceAddress.parse(device) } catch { throw CommandFailure(error) }
        return try TransportFactory.withSimulator.open(address, commandTimeout: timeout)
    }

    func open() throws -> OpalDrive {
        try OpalDrive(transport: try openTransport(), timeout: timeout)
    }

    /// What a drive command did, as one line of text or (--json) one object:
    /// `{"device":…,"operation":"lock","range":0,"result":"locked"}`.
    func done(_ operation: String, _ result: String, range: Int? = nil, authority: String? = nil) {
        struct Done: Encodable {
            let device: String
            let operation: String
            let range: Int?
            let authority: String?
            let result: String
        }
        if json {
            printJSON(Done(device: device, operation: operation, range: range, authority: authority, result: result))
        } else {
            print("\(device): \(range.map { "range \($0) " } ?? "")\(authority.map { "\($0) " } ?? "")\(result)")
        }
    }
}

/// How passwords in PIN files become drive PINs.
struct DerivationOptions: ParsableArguments {
    @Option(help: "How a password becomes the PIN: raw, sedutil-sha1, sedutil-sha512.")
    var pinDerivation: PinDerivation = .raw
    @Option(help: "For sedutil derivations, the bytes salted: reported (sedutil 1.15+), ata-unswapped, trimmed, nul-padded, sas-vendor (default on SAS, as sedutil 1.20 does; reported elsewhere).")
    var pinSalt: SerialSalt?

    func pin(_ path: String, option: String, for drive: OpalDrive) throws -> Secret {
        let password = try PinFile.read(path, option: option)
        do {
            return try pinDerivation.pin(from: password, serialNumberField: drive.identity.serialNumberField,
                                         vendorIdentification: drive.identity.vendorIdentification ?? [],
                                         salt: pinSalt ?? .sedutilDefault(for: drive.identity.interface))
        } catch {
            throw CommandFailure("\(option): \(error.description)", .badArguments)
        }
    }
}

/// Parses LockOnReset lists such as `power-cycle,programmatic`.
func parseResets(_ text: String) throws -> [ResetType] {
    var out: [ResetType] = []
    for word in text.split(separator: ",") where !word.isEmpty {
        guard let reset = ResetType.allCases.first(where: { $0.description == word }), reset != .hotPlug else {
            throw ValidationError("'\(word)' is not a reset type; use power-cycle, hardware or programmatic")
        }
        if !out.contains(reset) { out.append(reset) }
    }
    return out
}

/// Prints a value as pretty JSON.
func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    // As on the control socket: seconds since 1970, not Foundation's 2001 reference date.
    encoder.dateEncodingStrategy = .secondsSince1970
    if let data = try? encoder.encode(value) { print(String(decoding: data, as: UTF8.self)) }
}

/// How an adopted drive's password became its PIN (setup and array add).
struct AdoptionDerivation: ParsableArguments {
    @Option(help: "How the adopted password became the PIN: raw, sedutil-sha1, sedutil-sha512.")
    var pinDerivation: PinDerivation = .raw
    @Option(help: """
        For sedutil derivations, the bytes the sedutil build salted with: reported (DTA sedutil 1.15+), \
        ata-unswapped, trimmed (udev's serial), nul-padded (SAS), sas-vendor (SAS: the INQUIRY vendor \
        identification, as sedutil 1.20 and master salt there, and the default on SAS). Needed when they \
        differ for a drive elsewhere: nothing is tried until it is known.
        """)
    var pinSalt: SerialSalt?

    func validate() throws {
        if pinSalt != nil && !pinDerivation.isSalted {
            throw ValidationError("--pin-salt goes with a sedutil --pin-derivation; '\(pinDerivation.rawValue)' takes no salt")
        }
    }

    var adoption: SetupRequest.Adoption { .init(derivation: pinDerivation.rawValue, salt: pinSalt?.rawValue) }
}
