// Fuzz harnesses for what Apus reads from outside: dataflow files, the node control protocol,
// the daemon's requests and sample metadata. Each takes any bytes and must neither crash nor hang.
//
// Built by `scripts/fuzz` with -sanitize=fuzzer and -DAPUS_FUZZ, this is a libFuzzer target; the
// harness comes from APUS_FUZZ_TARGET. In an ordinary build it replays files instead:
// `apus-fuzz TARGET FILE...` runs each file through the harness (what the tests do with the
// committed corpus).
import ApusDaemon
import ApusDataflow
import Foundation

@_spi(Fuzzing) import ApusTransport

enum Harness: String, CaseIterable {
    case dataflow
    case nodeProtocol = "node-protocol"
    case daemonRequest = "daemon-request"
    case metadata

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
        }
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
