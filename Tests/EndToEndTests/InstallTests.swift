import Foundation
import Platform
import TestSupport
import Testing

/// What a storage admin gets around the commands: the install into a staged root and back, man
/// pages rendered by man(1), and completion scripts that load in bash and zsh and complete drives.
@Suite("Install, man pages, completions", .serialized)
struct InstallTests {
    static let tools = ["sedlock", "sedlockd", "sedsim"]
    static let units = ["sedlockd.service", "sedlockd.socket", "sedlock-unlock.service", "sedlock-unlock-network.service"]

    private func script(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try ProcessRunner.run("/bin/bash", [packageRoot.appendingPathComponent("scripts/\(name)").path] + arguments,
                              timeout: 300, environment: environment)
    }

    @Test("DESTDIR install with --prefix /usr: binaries, units naming the prefix, snippets, man pages, completions; systemd-analyze verify --root passes; --uninstall removes every file it put there")
    func installRoundTrip() throws {
        let root = "/tmp/sedlock-stage-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let install = try script("install", ["--prefix", "/usr", "--bin-dir", Binaries.directory.path], environment: ["DESTDIR": root])
        #expect(install.status == 0, "\(install.stderr)")
        let manifest = try String(contentsOfFile: root + "/usr/share/sedlock/installed-files", encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let expected = Self.tools.map { "/usr/bin/\($0)" } + Self.units.map { "/usr/lib/systemd/system/\($0)" }
            + ["/usr/lib/sysusers.d/sedlock.conf", "/usr/lib/tmpfiles.d/sedlock.conf", "/usr/lib/systemd/catalog/sedlock.catalog",
               "/usr/share/man/man8/sedlock.8",
               "/usr/share/man/man8/sedlockd.8", "/usr/share/man/man1/sedsim.1"]
            + Self.tools.map { "/usr/share/bash-completion/completions/\($0)" } + Self.tools.map { "/usr/share/zsh/vendor-completions/_\($0)" }
        #expect(Set(manifest) == Set(expected), "\(manifest)")
        for path in expected { #expect(FileManager.default.fileExists(atPath: root + path), "\(path)") }
        let service = try String(contentsOfFile: root + "/usr/lib/systemd/system/sedlockd.service", encoding: .utf8)
        #expect(service.contains("ExecStart=/usr/bin/sedlockd serve") && !service.contains("/usr/local/bin"))

        // The base system the units refer to (targets, slices, /bin/kill) comes from this machine.
        let base = try ProcessRunner.run("/bin/sh", ["-c", "cp -a /lib/systemd/system/*.target /lib/systemd/system/*.slice \(root)/usr/lib/systemd/system/ && mkdir -p \(root)/bin && cp /bin/kill \(root)/bin/"])
        #expect(base.status == 0, "\(base.stderr)")
        let verify = try ProcessRunner.run("/usr/bin/systemd-analyze", ["verify", "--root=\(root)"] + Self.units.map { "/usr/lib/systemd/system/\($0)" })
        #expect(verify.status == 0 && verify.stderr.isEmpty && verify.output.isEmpty, "\(verify.output)\(verify.stderr)")

        // The journal catalog compiles, and explains every MESSAGE_ID sedlockd logs.
        let update = try ProcessRunner.run("/usr/bin/journalctl", ["--root=\(root)", "--update-catalog"])
        #expect(update.status == 0, "\(update.stderr)")
        let catalog = try ProcessRunner.run("/usr/bin/journalctl", ["--root=\(root)", "--list-catalog"])
        let daemonSources = try String(contentsOfFile: packageRoot.appendingPathComponent("Sources/sedlockd/DaemonEvents.swift").path, encoding: .utf8)
        let ids = daemonSources.matches(of: /static let \w+ = "([0-9a-f]{32})"/).map { String($0.1) }
        #expect(ids.count >= 9)
        for id in ids { #expect(catalog.output.contains(id), "the catalog lacks \(id)") }
        try? FileManager.default.removeItem(atPath: root + "/var/lib/systemd/catalog/database")

        let uninstall = try script("install", ["--uninstall", "--prefix", "/usr"], environment: ["DESTDIR": root])
        #expect(uninstall.status == 0, "\(uninstall.stderr)")
        for path in expected + ["/usr/share/sedlock/installed-files"] {
            #expect(!FileManager.default.fileExists(atPath: root + path), "\(path) left behind")
        }
        #expect(!FileManager.default.fileExists(atPath: root + "/usr/share/man"), "directories the install made are gone when empty")
        #expect(try script("install", ["--uninstall", "--prefix", "/usr"], environment: ["DESTDIR": root]).status != 0)
        #expect(try script("install", ["--prefix", "relative"], environment: ["DESTDIR": root]).status == 64)
    }

    @Test("scripts/package builds sedlock_VERSION_ARCH.deb: stripped binaries (debug info in the dbgsym package, by build id), Depends from the binaries, lintian without errors; dpkg --root installs it into a scratch root (group, directories) and purge leaves nothing but what holds keys")
    func debianPackage() throws {
        let out = "/tmp/sedlock-package-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let built = try script("package", ["--bin-dir", Binaries.directory.path, "--out", out])
        #expect(built.status == 0, "\(built.stderr)")
        let packages = built.output.split(separator: "\n").map(String.init)
        let deb = try #require(packages.first { $0.contains("/sedlock_") && $0.hasSuffix(".deb") }, "\(built.output)")
        let dbgsym = try #require(packages.first { $0.contains("/sedlock-dbgsym_") }, "\(built.output)")

        let depends = try ProcessRunner.run("/usr/bin/dpkg-deb", ["--field", deb, "Depends"]).output
        for library in ["libssl3", "libsgutils2", "libsqlite3-0", "libsystemd0", "libc6"] {
            #expect(depends.contains(library), "Depends lacks \(library): \(depends)")
        }
        let contents = try ProcessRunner.run("/usr/bin/dpkg-deb", ["--contents", deb]).output
        for path in Self.tools.map({ "./usr/bin/\($0)" }) + Self.units.map({ "./usr/lib/systemd/system/\($0)" })
            + ["./usr/lib/sysusers.d/sedlock.conf", "./usr/lib/tmpfiles.d/sedlock.conf", "./usr/lib/systemd/catalog/sedlock.catalog",
               "./usr/share/man/man8/sedlock.8.gz", "./usr/share/doc/sedlock/copyright", "./usr/share/zsh/vendor-completions/_sedlock"] {
            #expect(contents.contains(" " + path + "\n") || contents.hasSuffix(" " + path), "the package lacks \(path)")
        }
        #expect(!contents.contains("installed-files"))
        #expect(try ProcessRunner.run("/usr/bin/dpkg-deb", ["--contents", dbgsym]).output.contains("./usr/lib/debug/.build-id/"))

        // Errors only, and not the one a development build cannot help (its RUNPATH to the Swift
        // toolchain; the self-contained release build has none).
        let lintian = try ProcessRunner.run("/usr/bin/lintian", ["--suppress-tags", "custom-library-search-path", deb], timeout: 300)
        let errors = lintian.output.split(separator: "\n").filter { $0.hasPrefix("E:") }
        #expect(errors.isEmpty, "\(lintian.output)")

        let extracted = out + "/extracted"
        #expect(try ProcessRunner.run("/usr/bin/dpkg-deb", ["-x", deb, extracted]).status == 0)
        for tool in Self.tools {
            let sections = try ProcessRunner.run("/usr/bin/readelf", ["-S", "\(extracted)/usr/bin/\(tool)"]).output
            #expect(!sections.contains(".debug_info") && sections.contains(".gnu_debuglink"), "\(tool) is not stripped")
        }

        // Into a scratch root: the maintainer scripts make only files there (DPKG_ROOT), no service.
        let root = out + "/root"
        // The least of a system: /etc (where sysusers writes the group) and an empty dpkg database.
        for dir in ["etc", "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true)
        }
        for file in ["var/lib/dpkg/status", "var/lib/dpkg/available"] { FileManager.default.createFile(atPath: "\(root)/\(file)", contents: nil) }
        let dpkg = ["--root=\(root)", "--force-script-chrootless", "--force-depends", "--log=/dev/null"]
        let installed = try ProcessRunner.run("/usr/bin/dpkg", dpkg + ["-i", deb], timeout: 300)
        #expect(installed.status == 0, "\(installed.output) \(installed.stderr)")
        #expect(FileManager.default.fileExists(atPath: root + "/usr/bin/sedlockd"))
        var info = stat()
        #expect(stat(root + "/var/lib/sedlock", &info) == 0 && info.st_mode & 0o777 == 0o700, "tmpfiles.d made the state directory")
        #expect(((try? String(contentsOfFile: root + "/etc/group", encoding: .utf8)) ?? "").contains("sedlock:"), "sysusers.d made the group")

        let purged = try ProcessRunner.run("/usr/bin/dpkg", dpkg + ["--purge", "sedlock"], timeout: 300)
        #expect(purged.status == 0, "\(purged.output) \(purged.stderr)")
        let left = try ProcessRunner.run("/usr/bin/find", [root, "-mindepth", "1", "-not", "-path", "\(root)/var/lib/dpkg*",
                                                           "-not", "-path", "\(root)/etc*", "-not", "-type", "d"]).output
        #expect(left.isEmpty, "left behind: \(left)")
        #expect(!FileManager.default.fileExists(atPath: root + "/usr/bin") && !FileManager.default.fileExists(atPath: root + "/var/lib/sedlock")
                && !FileManager.default.fileExists(atPath: root + "/etc/sedlock"))
    }

    @Test("man pages from the argument parser's definitions: man -l renders each without warnings, with exit status, files and examples")
    func manPages() throws {
        let out = "/tmp/sedlock-man-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let generated = try script("man", [out, Binaries.directory.path])
        #expect(generated.status == 0, "\(generated.stderr)")
        for page in ["sedlock.8", "sedlockd.8", "sedsim.1"] {
            let rendered = try ProcessRunner.run("/usr/bin/man", ["--warnings", "-l", "\(out)/\(page)"], environment: ["MANWIDTH": "100", "MAN_KEEP_FORMATTING": ""])
            #expect(rendered.status == 0 && rendered.stderr.isEmpty, "\(page): \(rendered.stderr)")
            let headings = rendered.output.split(separator: "\n").filter { $0.first?.isUppercase == true && $0.allSatisfy { $0.isUppercase || $0 == " " } }
            for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"] {
                #expect(headings.contains { $0 == section }, "\(page) has no \(section)")
            }
        }
        let sedlock = try ProcessRunner.run("/usr/bin/man", ["-l", "\(out)/sedlock.8"], environment: ["MANWIDTH": "100"]).output
        // Every subcommand the parser knows is in the page, and every exit status the CLI uses.
        for word in ["setup", "unlock", "lock", "rekey", "rdl", "keyserver", "drive", "kmip", "cert", "/etc/sedlock/sedlockd.toml",
                     "/var/lib/sedlock", "/run/sedlock/control.sock", "SEDLOCK_CONTROL_SOCKET"] {
            #expect(sedlock.contains(word), "sedlock.8 lacks \(word)")
        }
        for status in ["10", "11", "12", "13", "14", "15", "16", "17", "64"] {
            #expect(sedlock.contains("     \(status)    "), "sedlock.8 lacks exit status \(status)")
        }
    }

    @Test("completion scripts load in bash and zsh without errors; bash completes sedlock unlock with the array's drives from sedlockd")
    func completions() throws {
        let out = "/tmp/sedlock-completion-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: out) }
        for tool in Self.tools {
            for shell in ["bash", "zsh"] {
                let script = try run(tool, ["--generate-completion-script", shell])
                #expect(script.status == 0)
                try script.stdout.write(to: URL(fileURLWithPath: "\(out)/\(tool).\(shell)"))
            }
            let bash = try ProcessRunner.run("/bin/bash", ["-c", "source /usr/share/bash-completion/bash_completion; source \(out)/\(tool).bash && declare -F _\(tool)"])
            #expect(bash.status == 0 && bash.stderr.isEmpty && bash.output.contains("_\(tool)"), "\(tool) bash: \(bash.stderr)")
            let zsh = try ProcessRunner.run("/usr/bin/zsh", ["-f", "-c", "autoload -Uz compinit && compinit -u -D && source \(out)/\(tool).zsh && whence -w _\(tool)"])
            #expect(zsh.status == 0 && zsh.stderr.isEmpty && zsh.output.contains("function"), "\(tool) zsh: \(zsh.output) \(zsh.stderr)")
        }

        // A managed array behind sedlockd: its drives are what `sedlock unlock <TAB>` offers.
        let array = try ServedArray(drives: 2)
        let socket = out + "/control.sock"
        let daemon = try SpawnedProcess(Binaries.url("sedlockd").path, ["serve", "--config", "/dev/null", "--state-dir", out + "/state",
                                                                        "--control-socket", socket])
        defer { daemon.stop() }
        #expect(waitFor { ServedArray.canConnect(socket) })
        #expect(try run("sedlock", ["setup", "--drives", array.device(0), array.device(1), "--control-socket", socket]).status == 0)
        let sedlock = Binaries.url("sedlock").path
        let complete = try ProcessRunner.run("/bin/bash", ["-c", """
            source /usr/share/bash-completion/bash_completion; source \(out)/sedlock.bash
            COMP_WORDS=(\(sedlock) unlock ""); COMP_CWORD=2; COMP_LINE="\(sedlock) unlock "; COMP_POINT=${#COMP_LINE}
            _sedlock; printf '%s\\n' "${COMPREPLY[@]}"
            """], environment: ["SEDLOCK_CONTROL_SOCKET": socket])
        #expect(complete.status == 0, "\(complete.stderr)")
        #expect(complete.output.contains(array.device(0)) && complete.output.contains(array.device(1)), "\(complete.output) \(complete.stderr)")
        // zsh: what the script hands _describe (stubbed to print it) is each drive whole, its colon escaped.
        let zsh = try ProcessRunner.run("/usr/bin/zsh", ["-f", "-c", """
            autoload -Uz compinit && compinit -u -D && source \(out)/sedlock.zsh
            _describe() { print -rl -- "${(@P)3}" }
            command_name=\(sedlock); command_line=(\(sedlock) unlock ""); SAP_SHELL=zsh
            export SAP_SHELL; __sedlock_custom_complete ---completion unlock -- positional@0 2 0
            """], environment: ["SEDLOCK_CONTROL_SOCKET": socket])
        let offered = zsh.output.split(separator: "\n").map(String.init)
        #expect(offered.contains(array.device(0).replacingOccurrences(of: ":", with: "\\:")) && !offered.contains("sim"),
                "\(zsh.output) \(zsh.stderr)")
    }
}
