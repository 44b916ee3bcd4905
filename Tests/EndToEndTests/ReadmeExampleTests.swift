import Foundation
import Testing
import TestSupport

/// One command line of a README example, with what its comment promises.
struct ReadmeExampleLine {
    var command: String
    /// `(exit N` in the comment (`(exit 12)`, `(exit 12: why)`); 0 otherwise.
    var expectedStatus: Int32
    /// Each "quoted" phrase of the comment (a trailing … dropped) must appear in the output.
    var expectedText: [String]
    /// Ends in `&`: a server, ready once it has printed something.
    var background: Bool
}

/// README's runnable examples: every ```sh block whose paragraph starts "For example".
enum ReadmeExamples {
    static func parse(_ readme: String) -> [(title: String, lines: [ReadmeExampleLine])] {
        var examples: [(String, [ReadmeExampleLine])] = []
        let lines = readme.components(separatedBy: "\n")
        var index = 0
        while index < lines.count {
            let line = lines[index]
            index += 1
            guard line.hasPrefix("For example") else { continue }
            while index < lines.count, lines[index].trimmingCharacters(in: .whitespaces).isEmpty { index += 1 }
            guard index < lines.count, lines[index] == "```sh" else { continue }
            index += 1
            var block: [ReadmeExampleLine] = []
            var pending = ""
            while index < lines.count, lines[index] != "```" {
                var text = lines[index]
                index += 1
                if text.hasSuffix("\\") {
                    text.removeLast()
                    pending += text
                    continue
                }
                if let parsed = parseLine(pending + text) { block.append(parsed) }
                pending = ""
            }
            examples.append((line, block))
        }
        return examples
    }

    static func parseLine(_ text: String) -> ReadmeExampleLine? {
        var command = text, comment = ""
        if let mark = text.range(of: "  # ") ?? (text.hasPrefix("# ") ? text.range(of: "# ") : nil) {
            command = String(text[..<mark.lowerBound])
            comment = String(text[mark.upperBound...])
        }
        command = command.trimmingCharacters(in: .whitespaces)
        guard !command.isEmpty else { return nil }
        let background = command.hasSuffix("&") && !command.hasSuffix("&&")
        if background { command = String(command.dropLast()).trimmingCharacters(in: .whitespaces) }
        var status: Int32 = 0
        if let exit = comment.range(of: #"\(exit \d+"#, options: .regularExpression) {
            status = Int32(comment[exit].filter(\.isNumber)) ?? 0
        }
        let quoted = comment.components(separatedBy: "\"").enumerated().filter { $0.offset % 2 == 1 }.map {
            $0.element.replacingOccurrences(of: "…", with: "").trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        return ReadmeExampleLine(command: command, expectedStatus: status, expectedText: quoted, background: background)
    }
}

@Suite("README's examples run as written", .serialized)
struct ReadmeExampleTests {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static let examples = (try? String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8))
        .map(ReadmeExamples.parse) ?? []

    @Test("README has runnable examples next to the simulator's synopses")
    func examplesExist() {
        #expect(Self.examples.count >= 3)
        #expect(Self.examples.allSatisfy { !$0.lines.isEmpty })
    }

    /// Runs one example in a bash of its own, as a newcomer would after `. scripts/env`: /tmp
    /// becomes a scratch directory and the key server's port 5696 a free one, so parallel runs and
    /// the machine's own /tmp are left alone. Each line's status and output are kept apart.
    @Test("each example: every line exits as its comment says and prints what it quotes", arguments: 0..<3)
    func example(_ number: Int) throws {
        try #require(number < Self.examples.count)
        let (title, lines) = Self.examples[number]
        let scratch = "/tmp/sedlock-readme-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let port = try LoopbackPort.free()
        func localised(_ command: String) -> String {
            command.replacingOccurrences(of: "/tmp/", with: "\(scratch)/").replacingOccurrences(of: "5696", with: "\(port)")
        }
        var script = "cd \(scratch)\nexport PATH=\(Binaries.directory.path):$PATH\n"
        for (i, line) in lines.enumerated() {
            if line.background {
                script += "\(localised(line.command)) > \(scratch)/out-\(i) 2>&1 &\n"
                script += "for _ in $(seq 600); do [ -s \(scratch)/out-\(i) ] && break; sleep 0.05; done\n"
            } else {
                script += "{ \(localised(line.command))\n} > \(scratch)/out-\(i) 2>&1; echo $? > \(scratch)/status-\(i)\n"
            }
        }
        // Whatever an example left running (a failed line before its kill) stops with it.
        script += "kill $(jobs -p) 2>/dev/null; wait\n"
        let ran = try ProcessRunner.run("/bin/bash", ["-c", script], timeout: 120)
        #expect(ran.status == 0, "\(title): \(ran.stderr)")
        for (i, line) in lines.enumerated() where !line.background {
            let output = (try? String(contentsOfFile: "\(scratch)/out-\(i)", encoding: .utf8)) ?? ""
            let status = (try? String(contentsOfFile: "\(scratch)/status-\(i)", encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            #expect(status == line.expectedStatus, "\(line.command) exited \(status.map(String.init) ?? "?"): \(output)")
            for text in line.expectedText {
                #expect(output.contains(text), "\(line.command) did not print \"\(text)\": \(output)")
            }
        }
    }
}
