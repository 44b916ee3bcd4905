import ArgumentParser

@main
struct Sedlock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sedlock",
        abstract: "Lock manager for self-encrypting drives (TCG Opal).",
        discussion: """
        Exit status: 0 success, 64 bad arguments, 10 not authorized, 11 locked out, \
        12 transport error or timeout, 13 drive error.
        """,
        subcommands: [DriveCommand.self, KMIPCommand.self, CertCommand.self])
}
