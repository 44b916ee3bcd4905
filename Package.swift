// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "sedlock",
    products: [
        .library(name: "TCGStorage", targets: ["TCGStorage"]),
        .library(name: "SecurityTransport", targets: ["SecurityTransport"]),
        .library(name: "Opal", targets: ["Opal"]),
        .library(name: "KMIPCodec", targets: ["KMIPCodec"]),
        .library(name: "KMIP", targets: ["KMIP"]),
        .library(name: "SedSimulator", targets: ["SedSimulator"]),
        .executable(name: "sedlock", targets: ["sedlock"]),
        .executable(name: "sedsim", targets: ["sedsim"]),
        .executable(name: "sedlockd", targets: ["sedlockd"]),
        // The decoders under libFuzzer (scripts/fuzz builds it with -DFUZZING); ordinarily a replayer of the corpus.
        .executable(name: "sedlock-fuzz", targets: ["sedlock-fuzz"]),
        // LD_PRELOAD library that shows simulated drives to any program as device nodes.
        .library(name: "sedsim-preload", type: .dynamic, targets: ["SedsimPreload"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.14.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // System libraries: OpenSSL is the crypto boundary; sg3_utils and libsystemd come in later layers.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSGUtils", path: "Sources/CSGUtils", providers: [.apt(["libsgutils2-dev"])]),
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd", pkgConfig: "libsystemd",
                       providers: [.apt(["libsystemd-dev"])]),
        // Wrappers for C macros and variadic functions Swift cannot call directly.
        .target(name: "CShims", path: "Sources/CShims"),

        // The one error protocol (kind, reason code, summary, fix) every module's errors conform to.
        .target(name: "Failures", path: "Sources/Failures"),
        // Clock and deadline, atomic files, file locks, the serial executor: what every layer stands on.
        .target(name: "Platform", dependencies: ["CShims", "Failures"], path: "Sources/Platform"),
        // Pure TCG Storage wire format: bytes in, values out.
        .target(name: "TCGStorage", dependencies: ["Failures"], path: "Sources/TCGStorage"),
        // The framing spoken between host and `sedsim serve` (the simulated bus): defined once in C
        // (sedsim_link.h) for the preload library and the Swift side.
        .target(name: "CSimulatorLink", path: "Simulator/CSimulatorLink"),
        .target(name: "SimulatorLink", dependencies: ["CSimulatorLink", "Platform"], path: "Simulator/SimulatorLink"),
        .target(name: "SecurityTransport", dependencies: ["Failures", "Platform", "CShims", "CSGUtils"],
                path: "Sources/SecurityTransport"),
        // The host-facing adapter for `sim:DIR/N` addresses; only executables and tests plug it in.
        .target(name: "SimulatorTransport", dependencies: ["SecurityTransport", "SimulatorLink", "Platform"],
                path: "Simulator/SimulatorTransport"),
        .target(name: "Keys", dependencies: ["COpenSSL", "CShims", "Failures", "Platform"], path: "Sources/Keys"),
        // The KMIP wire format, pure: TTLV, tags, messages, attributes.
        .target(name: "KMIPCodec", dependencies: ["Failures"], path: "Sources/KMIPCodec"),
        .target(name: "KMIP", dependencies: ["Failures", "KMIPCodec", "Certificates", "COpenSSL", "Keys", "Platform"], path: "Sources/KMIP"),
        .target(name: "Certificates", dependencies: ["COpenSSL", "Failures"], path: "Sources/Certificates"),
        // The lock manager's persistent state: one SQLite database (GRDB), WAL, synchronous=FULL.
        .target(name: "LockState", dependencies: ["Failures", "Platform", .product(name: "GRDB", package: "GRDB.swift")],
                path: "Sources/LockState"),
        // The typed requests and reports shared by the CLI and sedlockd's control socket.
        .target(name: "ControlAPI", dependencies: ["Failures"], path: "Sources/ControlAPI"),
        // The control socket's two ends: sedlockd's server (peer credentials, limits) and the CLI's client.
        .target(name: "ControlSocket", dependencies: ["Failures", "ControlAPI", "Platform", .product(name: "Logging", package: "swift-log")],
                path: "Sources/ControlSocket"),
        // The systemd protocol (notify, watchdog, listen fds) and the journal: the only importer of CSystemd.
        .target(name: "Systemd", dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")],
                path: "Sources/Systemd"),
        // The array's lock manager: inventory, keytable, key sources, guards, journaled setup.
        .target(name: "LockManager", dependencies: ["Failures", "ControlAPI", "LockState", "Opal", "Keys", "SecurityTransport", "Platform",
                                                    "KMIP", "Certificates"],
                path: "Sources/LockManager"),
        .target(name: "Opal", dependencies: ["Failures", "TCGStorage", "SecurityTransport", "Keys", "Platform"], path: "Sources/Opal"),
        // What sedlock's and sedsim's command lines share on top of swift-argument-parser.
        .target(name: "CommandLineSupport", dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
                path: "Sources/CommandLineSupport"),
        .executableTarget(name: "sedlock", dependencies: [
            "Failures", "Opal", "SecurityTransport", "SimulatorTransport", "TCGStorage", "Keys", "KMIP", "Certificates", "Platform",
            "ControlAPI", "ControlSocket", "LockManager", "LockState", "CommandLineSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/sedlock"),
        .executableTarget(name: "sedlockd", dependencies: [
            "Failures", "CommandLineSupport", "ControlAPI", "ControlSocket", "LockManager", "LockState", "Systemd", "Platform", "Keys", "SecurityTransport",
            "SimulatorTransport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "TOMLKit", package: "TOMLKit"),
            // Prometheus text for the metrics (served on loopback by MetricsEndpoint where configured).
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], path: "Sources/sedlockd"),

        // Benchmarks live outside Sources/: they drive host and simulator together.
        .executableTarget(name: "sedlock-bench", dependencies: ["Opal", "SecurityTransport", "SimulatorTransport", "SedSimulator",
                                                                "TCGStorage", "Keys", "KMIP", "Platform", "ControlAPI",
                                                                "ControlSocket", "LockManager", "LockState"],
                          path: "Benchmarks/sedlock-bench"),

        .target(name: "SedSimulator", dependencies: ["TCGStorage", "KMIPCodec", "SimulatorLink", "Platform", "COpenSSL", "CShims"],
                path: "Simulator/SedSimulator"),
        // Plain C, loaded into arbitrary programs (swiftc's link step adds libswiftCore as a dependency).
        .target(name: "SedsimPreload", dependencies: ["CSimulatorLink"], path: "Simulator/SedsimPreload"),
        .executableTarget(name: "sedsim", dependencies: [
            "SedSimulator", "SimulatorLink", "TCGStorage", "Platform", "CShims", "ControlSocket", "CommandLineSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Simulator/sedsim"),

        .executableTarget(name: "sedlock-fuzz", dependencies: [
            "TCGStorage", "KMIPCodec", "SecurityTransport", "SedSimulator", "SimulatorLink",
        ], path: "Fuzz/sedlock-fuzz"),

        // Helpers shared by test targets (seeded randomness for the mutation loops).
        .target(name: "TestSupport", dependencies: ["Platform", "CShims"], path: "Tests/TestSupport"),
        // Simulated drives in process, for tests above the transport.
        .target(name: "SimulatorTestSupport", dependencies: ["SedSimulator", "SecurityTransport"], path: "Tests/SimulatorTestSupport"),
        .testTarget(name: "PlatformTests", dependencies: ["Platform"]),
        .testTarget(name: "KeysTests", dependencies: ["Keys", "TestSupport"]),
        .testTarget(name: "LockStateTests", dependencies: ["LockState", "Platform", "TestSupport",
                                                        .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "TCGStorageTests", dependencies: ["TCGStorage", "TestSupport"]),
        .testTarget(name: "SecurityTransportTests", dependencies: ["SecurityTransport", "TestSupport"]),
        .testTarget(name: "SimulatorTests", dependencies: ["SedSimulator", "TCGStorage", "SimulatorLink", "SimulatorTransport", "SecurityTransport", "TestSupport"]),
        .testTarget(name: "OpalTests", dependencies: ["Opal", "Keys", "SecurityTransport", "SedSimulator", "TCGStorage", "Platform",
                                                   "SimulatorTestSupport"]),
        .testTarget(name: "LockManagerTests", dependencies: ["Failures", "LockManager", "ControlAPI", "LockState", "Opal", "Keys", "SedSimulator",
                                                          "SecurityTransport", "Platform", "SimulatorTestSupport", "TestSupport",
                                                          "KMIP", "KMIPTestSupport"]),
        // PyKMIP's server and a test PKI, for tests against a real KMIP server.
        .target(name: "KMIPTestSupport", dependencies: ["KMIP", "TestSupport", "Platform", "SedSimulator"], path: "Tests/KMIPTestSupport"),
        .testTarget(name: "KMIPTests", dependencies: ["KMIP", "KMIPCodec", "Keys", "TestSupport", "SedSimulator", "KMIPTestSupport", "Platform"]),
        .testTarget(name: "CertificatesTests", dependencies: ["Certificates", "TestSupport"]),
        .testTarget(name: "ControlSocketTests", dependencies: ["ControlSocket", "ControlAPI", "Platform",
                                                            .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SystemdModuleTests", dependencies: ["Systemd", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "EndToEndTests", dependencies: ["TCGStorage", "TestSupport", "Platform", "Keys"]),
    ],
    swiftLanguageModes: [.v6]
)
