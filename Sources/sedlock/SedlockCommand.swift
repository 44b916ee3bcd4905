import ArgumentParser
import CommandLineSupport

@main
struct Sedlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sedlock",
        abstract: "Lock manager for self-encrypting drives (TCG Opal).",
        discussion: """
        Exit status: 0 success, 64 bad arguments, 10 not authorized, 11 locked out, \
        12 transport error or timeout, 13 drive error, 14 partial (some drives done, some not), \
        15 held by a guard before any attempt (keys unavailable or unverified, guarded drive, boot-loop hold), \
        16 busy (another sedlock is changing the state), 17 outcome unknown (a change reached the drive \
        and its answer was lost).
        """,
        version: SedlockVersion.number,
        subcommands: [ArraySetup.self, ArrayUnlock.self, ArrayLock.self, ArrayStatus.self, Rekey.self, ArrayCommand.self, EraseCommand.self, ReleaseCommand.self, Guard.self, Faults.self, KeyServerCommand.self,
                      KeysCommand.self, RecoverCommand.self, RDLCommand.self,
                      DriveCommand.self, KMIPCommand.self, CertCommand.self])

    static func main() async {
        refuseUnknownSubcommand()
        await main(nil)
    }
}
