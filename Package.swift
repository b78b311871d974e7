// swift-tools-version: 6.1
import Foundation
import PackageDescription

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

/// Release builds of the hand-off path let their callers (the node library, the C API, the
/// benchmarks) inline it across the module boundary.
let crossModuleOptimization: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]

let package = Package(
    name: "apus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "apus", targets: ["apus"]),
        .executable(name: "sender", targets: ["sender"]),
        .executable(name: "receiver", targets: ["receiver"]),
        .executable(name: "relay", targets: ["relay"]),
        .executable(name: "monitor", targets: ["monitor"]),
        .executable(name: "apus-operator-runtime", targets: ["apus-operator-runtime"]),
        .library(name: "ApusDataflow", targets: ["ApusDataflow"]),
        .library(name: "ApusTransport", targets: ["ApusTransport"]),
        .library(name: "ApusNode", targets: ["ApusNode"]),
        // The C node API; installed as libapus.so (scripts/install). The name differs from the
        // `apus` executable because SwiftPM allows one product per name.
        .library(name: "ApusCAPI", type: .dynamic, targets: ["ApusCAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        // Wasm operators: a WebAssembly interpreter in Swift, so guests need no toolchain in the host.
        .package(url: "https://github.com/swiftwasm/WasmKit", exact: "0.4.2"),
    ],
    targets: [
        .target(
            name: "ApusDataflow",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        .target(name: "CApusSys"),
        .target(
            name: "ApusTransport",
            dependencies: ["CApusSys"],
            swiftSettings: crossModuleOptimization
        ),
        .target(
            name: "ApusNode",
            dependencies: ["ApusNetwork", "ApusTransport", "CApusSys"],
            swiftSettings: crossModuleOptimization
        ),
        .systemLibrary(name: "CApusHeader"),
        // libffi (libffi-dev): Numba operators call functions whose signature is read at run time.
        .systemLibrary(name: "CLibFFI", providers: [.apt(["libffi-dev"])]),
        .target(
            name: "ApusCAPI",
            dependencies: [
                "ApusNode", "ApusTransport", "CApusHeader", "CApusSys", "CLibFFI", .product(name: "WasmKit", package: "WasmKit"),
            ],
            exclude: ["exports.map"],
            linkerSettings: [
                // Export the C API and nothing else: no Swift symbols, no shim functions.
                .unsafeFlags(["-Xlinker", "--version-script=\(packageRoot)/Sources/ApusCAPI/exports.map"])
            ]
        ),
        // The program of a runtime node: a few lines of C that load libapus.so and run its runtime.
        .executableTarget(name: "apus-operator-runtime", path: "Sources/OperatorRuntime", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "ApusRecording", dependencies: ["ApusTransport"], linkerSettings: [.linkedLibrary("dl")]),
        // Eclipse Cyclone DDS for edges between machines, loaded at run time (dlopen): a dataflow
        // without `deploy` never needs it, and building Apus needs none of its files.
        .target(name: "CApusDDS", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "ApusNetwork", dependencies: ["ApusTransport", "CApusDDS"]),
        .target(
            name: "ApusDaemon",
            dependencies: ["ApusDataflow", "ApusNetwork", "ApusTransport", "CApusHeader", "CApusSys"]
        ),
        .executableTarget(
            name: "apus",
            dependencies: [
                "ApusDataflow",
                "ApusDaemon",
                "ApusNetwork",
                "ApusNode",
                "ApusRecording",
                "ApusTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ApusDataflowTests",
            dependencies: ["ApusDataflow"],
            exclude: ["Fixtures"]
        ),
        .target(
            name: "TransportTestSupport",
            dependencies: ["ApusTransport"],
            path: "Tests/TransportTestSupport"
        ),
        .executableTarget(
            name: "apus-transport-peer",
            dependencies: ["ApusTransport", "TransportTestSupport"],
            path: "Tests/TransportPeer"
        ),
        .executableTarget(
            name: "transport-bench",
            dependencies: ["ApusTransport"],
            path: "bench/transport/Sources/transport-bench"
        ),
        .executableTarget(name: "bench-pingpong", dependencies: ["ApusNode"], path: "bench/nodes/swift-pingpong"),
        .testTarget(
            name: "ApusTransportTests",
            dependencies: ["ApusTransport", "TransportTestSupport", "apus-transport-peer"]
        ),
        .executableTarget(name: "sender", dependencies: ["ApusNode"], path: "nodes/swift/sender"),
        .executableTarget(name: "receiver", dependencies: ["ApusNode"], path: "nodes/swift/receiver"),
        .executableTarget(name: "relay", dependencies: ["ApusNode"], path: "nodes/swift/relay"),
        .executableTarget(name: "monitor", dependencies: ["ApusNode"], path: "nodes/swift/monitor"),
        .executableTarget(name: "apus-test-node", dependencies: ["ApusNode"], path: "Tests/TestNode"),
        .executableTarget(name: "apus-api-node", dependencies: ["ApusNode"], path: "Tests/APINode"),
        // Publishes raw bytes as requests to a machine's daemon: the tests' hostile host on DDS.
        .executableTarget(name: "apus-dds-send", dependencies: ["ApusNetwork"], path: "Tests/DDSSend"),
        .executableTarget(
            name: "apus-fuzz",
            dependencies: ["ApusDaemon", "ApusDataflow", "ApusNetwork", "ApusTransport"],
            path: "Tests/Fuzz",
            exclude: ["corpus"]
        ),
        .testTarget(name: "ApusNodeTests", dependencies: ["ApusNode", "ApusTransport"]),
        .testTarget(name: "ApusRecordingTests", dependencies: ["ApusRecording"]),
        .testTarget(name: "ApusDaemonTests", dependencies: ["ApusDaemon", "ApusDataflow", "ApusNetwork", "ApusTransport"]),
        .testTarget(
            name: "ApusCLITests",
            dependencies: [
                "apus", "sender", "receiver", "relay", "monitor", "apus-test-node", "apus-api-node", "apus-fuzz",
                "apus-operator-runtime",
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
