import ArgumentParser

/// A word on the command line that names no subcommand where only a subcommand can stand.
///
/// swift-argument-parser stops at the first word it cannot place and, when help was asked for,
/// prints the help of the command it reached: `sedlock range --help` printed sedlock's own help
/// with exit 0, so a typo looked like an answer. This finds such a word before parsing so the
/// executables can refuse it (exit 64) and list what would have been accepted.
public struct UnknownSubcommand: Equatable, Sendable, CustomStringConvertible {
    /// The command path reached before the unknown word, e.g. `sedlock drive`.
    public let parentPath: [String]
    public let word: String
    /// The subcommands the parent does have.
    public let known: [String]

    public var description: String {
        let parent = parentPath.joined(separator: " ")
        return "'\(parent)' has no subcommand '\(word)'; its subcommands are: \(known.joined(separator: ", "))."
    }

    /// Looks for an unknown subcommand when help is requested (`--help`, `-h`, `--help-hidden`
    /// anywhere, or the built-in `help` subcommand first). Without a help request the parser
    /// already refuses the word itself.
    public static func find(in arguments: [String], root: any ParsableCommand.Type) -> UnknownSubcommand? {
        var words = arguments
        if words.first == "help" {
            words.removeFirst()
        } else if !words.contains(where: { ["--help", "-h", "--help-hidden"].contains($0) }) {
            return nil
        }
        var command: any ParsableCommand.Type = root
        var path = [commandName(of: root)]
        for word in words {
            // An option (its value may follow) or the end of options: the rest is not a command path.
            if word.hasPrefix("-") { return nil }
            let configuration = command.configuration
            // A leaf, or a command with a default subcommand, takes positional arguments here.
            if configuration.subcommands.isEmpty || configuration.defaultSubcommand != nil { return nil }
            guard let next = configuration.subcommands.first(where: { commandNames(of: $0).contains(word) }) else {
                return UnknownSubcommand(parentPath: path, word: word,
                                         known: configuration.subcommands.map { commandName(of: $0) })
            }
            command = next
            path.append(commandName(of: next))
        }
        return nil
    }

    private static func commandName(of command: any ParsableCommand.Type) -> String {
        command.configuration.commandName ?? command._commandName
    }

    private static func commandNames(of command: any ParsableCommand.Type) -> [String] {
        [commandName(of: command)] + command.configuration.aliases
    }
}
