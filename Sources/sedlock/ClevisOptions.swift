import ArgumentParser
import ControlAPI

/// How clevis seals a new key, for `--provider clevis` (setup, rekey).
struct ClevisOptions: ParsableArguments {
    @Option(help: ArgumentHelp("For --provider clevis: the pin's JSON configuration, as `clevis encrypt PIN CONFIG` takes it.",
                               discussion: """
                               tang: '{"url":"http://tang.example"}' (add "thp" to pin the server's key instead of trusting \
                               its advertisement); a threshold of tang servers: --clevis-pin sss \
                               '{"t":2,"pins":{"tang":[{"url":"http://a"},{"url":"http://b"}]}}'; a TPM: --clevis-pin tpm2 '{}'.
                               """))
    var clevis: String?
    @Option(help: "For --provider clevis: the clevis pin (tang, sss, tpm2).") var clevisPin: String?

    func validate() throws {
        if clevisPin != nil && clevis == nil { throw ValidationError("--clevis-pin goes with --clevis CONFIG") }
        if let policy, let problem = policy.problem { throw ValidationError(problem) }
    }

    var policy: ClevisPolicy? { clevis.map { ClevisPolicy(pin: clevisPin ?? "tang", config: $0) } }
}
