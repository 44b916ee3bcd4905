import ArgumentParser

/// The executables' entry points: refuse an unknown subcommand next to a help request (see
/// `UnknownSubcommand`) with exit 64, then parse and run as swift-argument-parser does.
extension ParsableCommand {
    public static func refuseUnknownSubcommand(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) {
        guard let unknown = UnknownSubcommand.find(in: arguments, root: self) else { return }
        exit(withError: ValidationError(unknown.description))
    }
}
