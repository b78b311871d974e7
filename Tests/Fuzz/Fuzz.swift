// Fuzz harnesses for what Apus reads from outside: dataflow files, the node control protocol,
// the daemon's requests, sample metadata and what comes over DDS from other machines. Each takes
// any bytes and must neither crash nor hang.
//
// Built by `scripts/fuzz` with -sanitize=fuzzer and -DAPUS_FUZZ, this is a libFuzzer target; the
// harness comes from APUS_FUZZ_TARGET. In an ordinary build it replays files instead:
// `apus-fuzz TARGET FILE...` runs each file through the harness (what the tests do with the
// committed corpus).
import ApusDataflow
import ApusNetwork
import Foundation

@_spi(Fuzzing) import ApusDaemon

@_spi(Fuzzing) import ApusTransport

enum Harness: String, CaseIterable {
    case dataflow
    case nodeProtocol = "node-protocol"
    case daemonRequest = "daemon-request"
    case metadata
    case network

    func run(_ bytes: UnsafeRawBufferPointer) {
        switch self {
        case .dataflow:
            // Paths are not looked up: the parser's work, not the file system's, is under test.
            let text = String(decoding: bytes, as: UTF8.self)
            guard
                let dataflow = try? DataflowLoader(environment: ["PATH": "/usr/bin"], checksPaths: false).parse(
                    yaml: text, file: "fuzz.yml", directory: "/fuzz")
            else { return }
            // What `apus graph` and `apus run` make of a valid file.
            _ = DataflowGraph(dataflow).render(.mermaid)
            _ = DataflowGraph(dataflow).render(.dot)
            _ = RunPlan(dataflow)
        case .nodeProtocol:
            _ = try? NodeMessage(decoding: Array(bytes))
            // The same bytes as a stream of frames, as a channel reads them.
            var buffer = Array(bytes)
            while let frame = try? Frame.take(from: &buffer, limit: ControlChannel.maxMessageSize) {
                _ = try? NodeMessage(decoding: frame)
            }
        case .daemonRequest:
            _ = ControlRequest.decode(Array(bytes))
        case .metadata:
            // The first byte picks the element type the entry would claim.
            guard let first = bytes.first else { return }
            let elementType = ElementType(rawValue: first % 16) ?? .uint8
            _ = try? MetadataCodec.decode(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), elementType: elementType, timestamp: 0)
        case .network:
            // The first byte picks what the rest is taken as.
            guard let first = bytes.first else { return }
            let rest = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
            switch first % 4 {
            case 0: runRequest(rest)
            case 1: _ = Federation.Presence(rest)
            case 2: _ = try? BridgeMessage.metadata(header: rest, timestamp: 0)
            default:
                // A credit (its sequence number) against what was sent and the depth; a message's
                // send time against this machine's clocks.
                guard rest.count >= 24 else { return }
                let values = (0..<3).map { rest.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
                _ = BridgeMessage.mustWait(sent: values[0], credit: values[1], depth: values[2])
                let clocks = BridgeMessage.Clocks(monotonic: values[1], wall: values[2])
                _ = BridgeMessage.monotonic(fromWallClock: values[0], now: clocks)
                _ = BridgeMessage.wallClock(fromMonotonic: values[0], now: clocks)
            }
        }
    }

    /// A request to a machine's daemon, as its agent plans it and its part's `apus run` splits
    /// the dataflow.
    func runRequest(_ bytes: UnsafeRawBufferPointer) {
        guard let request = Federation.Request(bytes), let plan = try? MachineAgent.plan(request, machine: "B", domain: 0),
            let dataflow = try? DataflowLoader(checksPaths: false).parse(yaml: request.yaml, file: plan.file, directory: plan.folder)
        else { return }
        let placements = MachineSplit.placements(request.placements.split(separator: "\n").map(String.init))
        _ = MachineSplit.part(
            of: MachineSplit.placed(dataflow, placements), machine: "B", local: request.local, run: request.run, domain: 0,
            executable: "/usr/bin/apus")
    }
}

#if APUS_FUZZ
    private let harness: Harness = {
        guard let name = ProcessInfo.processInfo.environment["APUS_FUZZ_TARGET"], let harness = Harness(rawValue: name) else {
            let names = Harness.allCases.map(\.rawValue).joined(separator: ", ")
            FileHandle.standardError.write(Data("apus-fuzz: set APUS_FUZZ_TARGET to one of \(names)\n".utf8))
            exit(2)
        }
        return harness
    }()

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        harness.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }

    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// SwiftPM names an executable's entry point after its product; libFuzzer's driver runs from it.
    @_cdecl("apus_fuzz_main")
    public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        var count = argc
        var arguments = argv
        return runFuzzerDriver(&count, &arguments, fuzzOne)
    }
#else
    @main
    struct Replay {
        static func main() {
            let arguments = CommandLine.arguments.dropFirst()
            guard let name = arguments.first, let harness = Harness(rawValue: name) else {
                print("usage: apus-fuzz \(Harness.allCases.map(\.rawValue).joined(separator: "|")) FILE...")
                exit(2)
            }
            var count = 0
            for path in arguments.dropFirst() {
                guard let bytes = FileManager.default.contents(atPath: path) else {
                    print("apus-fuzz: cannot read \(path)")
                    exit(1)
                }
                bytes.withUnsafeBytes { harness.run($0) }
                count += 1
            }
            print("apus-fuzz \(name): \(count) inputs replayed, none crashed")
        }
    }
#endif
