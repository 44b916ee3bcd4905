import Foundation

#if FUZZING
/// libFuzzer's entry point (the fuzzing build: `scripts/fuzz`). SEDLOCK_FUZZ_TARGET names the target.
nonisolated(unsafe) private let target: FuzzTarget = {
    guard let name = ProcessInfo.processInfo.environment["SEDLOCK_FUZZ_TARGET"], let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("set SEDLOCK_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(64)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    target.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry point as `<target>_main` (main is an alias of it); under
/// -parse-as-library none is generated, so this one hands the process to libFuzzer's driver.
@_cdecl("sedlock_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    _ = target
    atexit { FuzzTarget.removeScratchArrays() }
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
}
#else
/// The ordinary build: replays inputs (the seed corpus and every crash kept as a regression) through
/// a target, so that the test suite runs them without the fuzzing toolchain.
/// `sedlock-fuzz TARGET FILE_OR_DIRECTORY...`
@main
enum Replay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "seeds", let root = arguments.dropFirst().first {
            do { try Seeds.write(to: root) } catch {
                FileHandle.standardError.write(Data("cannot write seeds to \(root): \(error)\n".utf8))
                exit(1)
            }
            return
        }
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("usage: sedlock-fuzz TARGET FILE_OR_DIRECTORY... (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))\n".utf8))
            exit(64)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let files = isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                target.run(Array(data))
                count += 1
            }
        }
        FuzzTarget.removeScratchArrays()
        print("\(name): \(count) inputs replayed")
    }
}
#endif
