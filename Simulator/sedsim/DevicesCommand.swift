import ArgumentParser
import Foundation
import SedSimulator
import SimulatorLink

/// Names device nodes for an array's drives and prints the environment that makes any program
/// (sedlock, sg3_utils, nvme-cli, sedutil-cli) see them through the preload library.
struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show device nodes for the drives and the LD_PRELOAD environment that makes programs see them.",
        discussion: """
            SAS and SATA drive N appear as /dev/sg<first+N>; NVMe drive N as the controller /dev/nvme<first+N> and \
            its namespace /dev/nvme<first+N>n1. The default numbers are chosen so they do not name real nodes: \
            without the preload library such a path simply does not exist. Use it as
              eval "$(sedsim devices DIR --shell)"
            """)
    @OptionGroup var array: ArrayDirectory
    @Option(help: "Number of the first node.") var first: Int = 200
    @Flag(help: "Print `export` lines for a shell.") var shell = false

    func validate() throws {
        guard (0...9_000).contains(first) else { throw ValidationError("--first must be 0…9000") }
    }

    func run() throws {
        let manifest = array.url.appendingPathComponent("array.json")
        guard let data = try? Data(contentsOf: manifest),
              let spec = try? JSONDecoder().decode(ArraySpecification.self, from: data) else {
            fail("\(array.url.path) has no readable array.json; create it with `sedsim create`")
        }
        var nodes: [(node: String, drive: Int)] = []
        for n in 0..<spec.drives {
            if spec.kind == .nvme {
                nodes.append(("/dev/nvme\(first + n)", n))
                nodes.append(("/dev/nvme\(first + n)n1", n))
            } else {
                nodes.append(("/dev/sg\(first + n)", n))
            }
        }
        let mapping = nodes.map { "\($0.node)=\(array.url.path)/\($0.drive)" }.joined(separator: ",")
        let library = Self.preloadLibrary()
        if shell {
            print("export LD_PRELOAD=\(Self.quoted(library))")
            print("export SEDSIM_DEVICES=\(Self.quoted(mapping))")
            return
        }
        for (node, drive) in nodes { print("\(node)  drive \(drive) (\(spec.kind.rawValue))") }
        print("LD_PRELOAD=\(library)")
        print("SEDSIM_DEVICES=\(mapping)")
        if !FileManager.default.fileExists(atPath: library) {
            FileHandle.standardError.write(Data("sedsim: \(library) is missing; build it with `swift build`\n".utf8))
        }
        if !ArrayAccess(array.url).isServed {
            FileHandle.standardError.write(Data("sedsim: nobody serves \(array.url.path) yet; start `sedsim serve \(array.url.path)`\n".utf8))
        }
    }

    /// The preload library is built beside this executable (`swift build` puts both in .build/<config>).
    static func preloadLibrary() -> String {
        let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return executable.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("libsedsim-preload.so").path
    }

    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
