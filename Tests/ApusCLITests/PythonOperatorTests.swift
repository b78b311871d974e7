import Foundation
import Testing

/// Python operators (dora's class Operator) and Numba operators (a @cfunc called through its
/// address), run by the operator runtime's embedded CPython: the Python of `python3` on PATH,
/// with numba installed (scripts/test installs it).
@Suite(.serialized) struct PythonOperatorTests {
    /// Forwards each message on `out`; on the message whose seq is `fail_at` (the file's FAIL_AT)
    /// it raises, or takes `BUSY` seconds of pure Python (holding the GIL) over its first message.
    static let forwarder = """
        import time
        from dora import DoraStatus

        FAIL_AT = -1
        BUSY = 0


        class Operator:
            def __init__(self):
                self.seen = 0

            def on_event(self, dora_event, send_output):
                if dora_event["type"] != "INPUT":
                    return DoraStatus.CONTINUE
                self.seen += 1
                if self.seen == 1 and BUSY:
                    end = time.monotonic() + BUSY
                    while time.monotonic() < end:
                        pass
                seq = dora_event["metadata"]["seq"]
                if seq == FAIL_AT:
                    raise ValueError(f"message {seq} is one too many")
                send_output("out", dora_event["value"], {"seq": seq})
                return DoraStatus.CONTINUE
        """

    /// Numba functions over int64 messages (what apus-test-node sends).
    static let numbaModule = """
        from numba import carray, cfunc, types

        int64p = types.CPointer(types.int64)


        @cfunc(types.int64(int64p, types.int64, int64p, types.int64, types.int64))
        def offset(data, n, out, capacity, by):
            values = carray(data, n)
            result = carray(out, capacity)
            for i in range(n):
                result[i] = values[i] + by
            return n


        @cfunc(types.int32(int64p, types.int64, int64p, types.int64))
        def fails_at_two(data, n, out, capacity):
            values = carray(data, n)
            if n > 0 and values[0] == 2:
                return -7
            result = carray(out, capacity)
            for i in range(n):
                result[i] = values[i]
            return n


        @cfunc(types.float64(types.float64, types.float64))
        def not_an_operator(a, b):
            return a + b


        def plain_function(data, n):
            return n
        """

    /// A source of 10 int64 messages, a runtime node with `operators`, and a sink of the one named.
    static func dataflow(operators: String, sink: String) -> String {
        """
        nodes:
        \(RunHarness.tickingSource())
          - id: runtime
            operators:
        \(operators)
          - id: sink
            path: \(RunHarness.testNode)
            inputs: { in: \(sink) }
        """
    }

    static func operatorEntry(_ id: String, _ kind: String, extra: String = "") -> String {
        """
              - id: \(id)
                \(kind)
                inputs: { in: source/out }
                outputs: [out]\(extra.isEmpty ? "" : "\n        " + extra)
        """
    }

    func harness(_ yaml: String, files: [String: String]) throws -> RunHarness {
        let harness = try RunHarness(dataflow: yaml)
        for (name, text) in files {
            try text.write(to: harness.folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return harness
    }

    /// dataflows/numba-pipeline.yml: a Python sensor, a Numba and a Python operator in one runtime
    /// node, and a sink that checks every value.
    @Test func theNumbaExampleRuns() throws {
        let example = ApusCommand.repository.appendingPathComponent("dataflows")
        let harness = try RunHarness(dataflow: "nodes: []")
        try FileManager.default.createDirectory(at: harness.folder.appendingPathComponent("numba"), withIntermediateDirectories: true)
        for file in ["numba-pipeline.yml", "numba/sensor.py", "numba/filters.py", "numba/stats.py", "numba/sink.py"] {
            try FileManager.default.copyItem(at: example.appendingPathComponent(file), to: harness.folder.appendingPathComponent(file))
        }
        try harness.start(file: "numba-pipeline.yml")
        let result = try harness.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.lines(of: "sink").last == "sink: all 50 frames and summaries as expected", "\(result.stdout)")
        #expect(result.lines(of: "dsp").contains("stats: summarised 50 frames"), "\(result.stdout)")
        #expect(!result.stderr.contains("dropped"), "\(result.stderr)")
        harness.expectClean()
    }

    /// A Numba operator with a scalar from `params:`, and a Python operator after it in the same
    /// runtime: numbers in, numbers out, and numba's output is what the sink gets.
    @Test func aNumbaOperatorFeedsAPythonOperator() throws {
        let operators = [
            Self.operatorEntry("offset", "numba: ops.py:offset", extra: "params: { by: 100 }"),
            """
                  - id: forward
                    python: forward.py
                    inputs: { in: runtime/offset/out }
                    outputs: [out]
            """,
        ].joined(separator: "\n")
        let forwarder = """
            from dora import DoraStatus

            class Operator:
                def on_event(self, dora_event, send_output):
                    if dora_event["type"] == "INPUT":
                        values = dora_event["value"].to_pylist()
                        print("forward got", values, flush=True)
                        send_output("out", dora_event["value"], {"seq": values[0] - 100})
                    return DoraStatus.CONTINUE
            """
        let harness = try harness(
            Self.dataflow(operators: operators, sink: "runtime/forward/out"), files: ["ops.py": Self.numbaModule, "forward.py": forwarder])
        try harness.start()
        let result = try harness.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.lines(of: "runtime").filter { $0.hasPrefix("forward got") } == (0..<10).map { "forward got [\(100 + $0)]" })
        #expect(result.lines(of: "sink").last == "events done inputs 10 sent 0", "\(result.stdout)")
        harness.expectClean()
    }

    /// Runs the operator `kind` (its kind line) beside a healthy Python forwarder in one runtime:
    /// the run fails, the output has each of `reasons`, and the sibling passed all 10 messages on.
    func expectFailsAlone(_ kind: String, files: [String: String], _ reasons: [String], sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        let operators = [Self.operatorEntry("faulty", kind), Self.operatorEntry("healthy", "python: healthy.py")]
        let harness = try harness(
            Self.dataflow(operators: operators.joined(separator: "\n"), sink: "runtime/healthy/out"),
            files: files.merging(["healthy.py": Self.forwarder]) { mine, _ in mine })
        try harness.start()
        let result = try harness.wait(timeout: 120)
        let output = result.stdout + result.stderr
        #expect(result.status == 1, "\(output)", sourceLocation: sourceLocation)
        for reason in reasons { #expect(output.contains(reason), "\(reason): \(output)", sourceLocation: sourceLocation) }
        #expect(result.lines(of: "sink").last == "events done inputs 10 sent 0", "\(output)", sourceLocation: sourceLocation)
        harness.expectClean(sourceLocation: sourceLocation)
    }

    /// A Python operator that raises: reported with its traceback, node and operator id; it
    /// stops, and its sibling in the same process passes every message on.
    @Test func aPythonOperatorThatRaisesStopsAlone() throws {
        try expectFailsAlone(
            "python: faulty.py", files: ["faulty.py": Self.forwarder.replacingOccurrences(of: "FAIL_AT = -1", with: "FAIL_AT = 2")],
            [
                "apus: operator 'faulty' of node 'runtime' failed: on_event raised an exception:", "Traceback (most recent call last):",
                "ValueError: message 2 is one too many",
            ])
    }

    /// A cfunc that returns a negative number: reported with the operator and the code; it stops,
    /// its sibling runs on.
    @Test func aNumbaFunctionThatReturnsAnErrorStopsAlone() throws {
        try expectFailsAlone(
            "numba: ops.py:fails_at_two", files: ["ops.py": Self.numbaModule],
            ["apus: operator 'faulty' of node 'runtime' failed: returned -7, an error"])
    }

    /// What cannot load is refused at start-up, with the reason; the sibling still runs.
    @Test(arguments: [
        (
            "numba: ops.py:not_an_operator",
            "'not_an_operator' has signature (float64, float64) -> float64, which Apus cannot call: it returns float64, not an integer; "
                + "it must be (T* data, int64 n, U* out, int64 capacity, scalars...) -> int64"
        ),
        ("numba: ops.py:missing", "ops.py' has no function 'missing' (its @cfunc functions: fails_at_two, not_an_operator, offset)"),
        ("numba: ops.py:plain_function", "'plain_function' in '"),
        ("numba: ops.py:offset", "'offset' takes by (int64), which `params:` does not give"),
        ("python: ops.py", "ops.py' defines no class Operator (dora's shape: a class Operator whose on_event"),
        ("python: broken.py", "ModuleNotFoundError: No module named 'no_such_module_here'"),
    ])
    func whatCannotLoadIsRefusedWithItsReason(kind: String, reason: String) throws {
        try expectFailsAlone(
            kind, files: ["ops.py": Self.numbaModule, "broken.py": "import no_such_module_here\n"],
            ["apus: operator 'faulty' of node 'runtime': ", reason])
    }

    /// Wrong params for the function's arguments are refused by name.
    @Test(arguments: [
        ("params: { by: 1.5 }", "params: by is 1.5, which is not a int64"),
        ("params: { by: 1, scale: 2 }", "params: 'offset' has no argument 'scale' (its arguments: data, n, out, capacity, by)"),
    ])
    func paramsMustFitTheFunction(params: String, reason: String) throws {
        let harness = try harness(
            Self.dataflow(operators: Self.operatorEntry("offset", "numba: ops.py:offset", extra: params), sink: "source/out"),
            files: ["ops.py": Self.numbaModule])
        try harness.start()
        let result = try harness.wait(timeout: 120)
        #expect(result.status == 1)
        #expect((result.stdout + result.stderr).contains("apus: operator 'offset' of node 'runtime': \(reason)"), "\(result.stdout)")
        harness.expectClean()
    }

    /// A Python operator that runs pure Python for 2 s holds the GIL all that time; a C and a Wasm
    /// operator in the same runtime go on meanwhile (they never take it).
    @Test func aBusyPythonOperatorBlocksNoOtherOperator() throws {
        let faulty = ApusCommand.repository.appendingPathComponent("Tests/CNodes/operators/faulty.c").path
        let guest = ApusCommand.repository.appendingPathComponent("Tests/WasmGuests/guest.c").path
        let operators = [
            Self.operatorEntry("busy", "python: busy.py"),
            Self.operatorEntry(
                "native", "shared-library: ./native",
                extra: "build: gcc -std=c99 -shared -fPIC $(apus config --cflags) -o libnative.so \(faulty)"),
            Self.operatorEntry("sandboxed", "wasm: guest.wasm", extra: "build: apus wasm-cc -DFORWARD -o guest.wasm \(guest)"),
        ]
        let yaml =
            Self.dataflow(operators: operators.joined(separator: "\n"), sink: "runtime/native/out") + """

                  - id: wasm-sink
                    path: \(RunHarness.testNode)
                    args: --print-inputs
                    inputs: { in: runtime/sandboxed/out }
                """
        let harness = try harness(
            yaml.replacingOccurrences(
                of: "inputs: { in: runtime/native/out }", with: "args: --print-inputs\n    inputs: { in: runtime/native/out }"),
            files: ["busy.py": Self.forwarder.replacingOccurrences(of: "BUSY = 0", with: "BUSY = 2")])
        try harness.start()
        // The source's last message goes out 0.2 s after its first, when the Python operator began
        // its 2 s: the C and Wasm operators' copies must follow at once.
        let delay = try harness.seconds(from: "[source] events done", until: ["[sink] got in 9", "[wasm-sink] got in 9"])
        #expect(delay < 1.0, "the C and Wasm operators' last messages came \(delay) s after they were sent")
        let result = try harness.wait(timeout: 60)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        harness.expectClean()
    }

    /// Without numba, a dataflow with a Numba operator is told how to install it; one with only
    /// Python operators runs, and never imports numba. The interpreter is a real venv with the
    /// machine's packages but numba and llvmlite.
    @Test func withoutNumbaOnlyNumbaDataflowsCare() throws {
        let venv = FileManager.default.temporaryDirectory.appendingPathComponent("apus-no-numba-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: venv) }
        let python = try makeVenvWithoutNumba(at: venv)

        let numba = try harness(
            Self.dataflow(operators: Self.operatorEntry("offset", "numba: ops.py:offset", extra: "params: { by: 1 }"), sink: "source/out"),
            files: ["ops.py": Self.numbaModule])
        try numba.start(environment: ["APUS_PYTHON": python])
        let refused = try numba.wait(timeout: 180)
        #expect(refused.status == 1)
        #expect(
            (refused.stdout + refused.stderr).contains(
                "apus: operator 'offset' of node 'runtime': numba is not installed for \(python): \(python) -m pip install numba"),
            "\(refused.stdout)\n\(refused.stderr)")
        numba.expectClean()

        let checker = Self.forwarder.replacingOccurrences(
            of: "class Operator:", with: "import sys\nprint('numba imported:', 'numba' in sys.modules, flush=True)\n\n\nclass Operator:")
        let plain = try harness(
            Self.dataflow(operators: Self.operatorEntry("forward", "python: forward.py"), sink: "runtime/forward/out"),
            files: ["forward.py": checker])
        try plain.start(environment: ["APUS_PYTHON": python])
        let result = try plain.wait(timeout: 180)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.lines(of: "runtime").contains("numba imported: False"), "\(result.stdout)")
        #expect(result.lines(of: "sink").last == "events done inputs 10 sent 0", "\(result.stdout)")
        plain.expectClean()
    }

    /// A Python built without a shared libpython cannot be embedded, and the message says so. The
    /// interpreter is python3 telling the runtime what such a build's sysconfig says (its library
    /// a static libpython.a); everything else it runs as python3 does.
    @Test func aPythonWithoutASharedLibpythonIsNamed() throws {
        let harness = try harness(
            Self.dataflow(operators: Self.operatorEntry("forward", "python: forward.py"), sink: "runtime/forward/out"),
            files: [
                "forward.py": Self.forwarder,
                "static-python": """
                #!/bin/sh
                # python3, as if it had been built without --enable-shared
                if [ "$1" = "-c" ]; then
                    exec python3 -c 'import sys, sysconfig; v = sysconfig.get_config_vars(); v["LDLIBRARY"] = v["INSTSONAME"] = "libpython3.a"; exec(sys.argv[1])' "$2"
                fi
                exec python3 "$@"

                """,
            ])
        let python = harness.folder.appendingPathComponent("static-python").path
        #expect(chmod(python, 0o755) == 0)
        try harness.start(environment: ["APUS_PYTHON": python])
        let result = try harness.wait(timeout: 120)
        #expect(result.status == 1)
        #expect(
            (result.stdout + result.stderr).contains(
                "apus: operator 'forward' of node 'runtime': \(python) has no shared libpython (it was built without --enable-shared), "
                    + "so operators cannot embed it"), "\(result.stdout)\n\(result.stderr)")
        harness.expectClean()
    }

    /// A venv of `python3` whose site-packages links every package of the base one but numba's.
    func makeVenvWithoutNumba(at folder: URL) throws -> String {
        let made = try ApusCommand.run(program: "python3", ["-m", "venv", "--without-pip", folder.path])
        #expect(made.status == 0, "\(made.stderr)")
        let python = folder.appendingPathComponent("bin/python").path
        let base = try ApusCommand.run(program: "python3", ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        let mine = try ApusCommand.run(program: python, ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        let from = base.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let into = mine.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for entry in try FileManager.default.contentsOfDirectory(atPath: from) {
            let lowered = entry.lowercased()
            if lowered.hasPrefix("numba") || lowered.hasPrefix("llvmlite") || lowered.hasPrefix("_distutils_hack") { continue }
            try FileManager.default.createSymbolicLink(atPath: "\(into)/\(entry)", withDestinationPath: "\(from)/\(entry)")
        }
        return python
    }
}
