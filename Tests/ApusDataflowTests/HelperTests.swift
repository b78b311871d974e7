import Foundation
import Testing

@testable import ApusDataflow

@Suite struct ShellWordsTests {
    @Test func splitsOnWhitespaceAndHonoursQuotes() throws {
        #expect(try ShellWords.split("  a  b\tc ") == ["a", "b", "c"])
        #expect(try ShellWords.split(#"'a b' "c d" e\ f"#) == ["a b", "c d", "e f"])
        #expect(try ShellWords.split(#"x"y"'z'"#) == ["xyz"])
        #expect(try ShellWords.split(#""a\"b\\c\d""#) == [#"a"b\c\d"#])
        #expect(try ShellWords.split("") == [])
        #expect(try ShellWords.split("''") == [""])
    }

    @Test func reportsUnterminatedQuotesAndTrailingBackslash() {
        #expect(throws: ShellWords.SplitError(message: "unterminated single quote")) { try ShellWords.split("'a") }
        #expect(throws: ShellWords.SplitError(message: "unterminated double quote")) { try ShellWords.split("\"a") }
        #expect(throws: ShellWords.SplitError(message: "trailing backslash")) { try ShellWords.split("a\\") }
    }
}

@Suite struct EnvExpansionTests {
    let environment = ["A": "1", "EMPTY": "", "PATH": "/bin"]

    @Test func expandsEveryForm() throws {
        #expect(try EnvExpansion.expand("$A-${A}x", environment: environment) == "1-1x")
        #expect(try EnvExpansion.expand("${EMPTY:-d} ${MISSING:-fallback}", environment: environment) == "d fallback")
        #expect(try EnvExpansion.expand("$ $1 $-", environment: environment) == "$ $1 $-")
        #expect(try EnvExpansion.expand("no dollars", environment: environment) == "no dollars")
    }

    @Test func unsetVariableIsAnError() {
        #expect(
            throws: EnvExpansion.ExpansionError(
                message: "variable 'NOPE' is not set (write ${NOPE:-default} for a default)")
        ) {
            try EnvExpansion.expand("$NOPE", environment: environment)
        }
        #expect(throws: EnvExpansion.ExpansionError(message: "'${' without a closing '}'")) {
            try EnvExpansion.expand("${A", environment: environment)
        }
    }
}

@Suite struct TimerSpecTests {
    @Test func overflowingPeriodIsRefused() {
        guard case .failure(let error) = TimerSpec.parse(unit: "secs", value: "99999999999999") else {
            Issue.record("accepted an overflowing period")
            return
        }
        #expect(error.message == "'99999999999999' gives a period out of range (1 ns to 584 years)")
    }

    @Test func signedOrFractionalIntegersAreRefused() {
        for value in ["+5", "-5", "1.5", "", "1e3"] {
            guard case .failure = TimerSpec.parse(unit: "millis", value: Substring(value)) else {
                Issue.record("accepted millis/\(value)")
                continue
            }
        }
    }
}

@Suite struct LimitsTests {
    func problems(_ yaml: String) -> [String] {
        do {
            _ = try DataflowLoader(checksPaths: true).parse(yaml: yaml, file: "limits.yml", directory: "/nonexistent")
            return []
        } catch {
            return error.diagnostics.map(\.positionedMessage)
        }
    }

    /// A 5000-byte path was echoed whole, twice; quoted values are cut to their ends and length.
    @Test func aHugeValueIsNotEchoedWhole() {
        let path = String(repeating: "p", count: 5000)
        let messages = problems("nodes:\n  - id: camera\n    path: \(path)\n")
        #expect(messages.count == 1)
        let message = messages.first ?? ""
        #expect(message.utf8.count < 400, "\(message)")
        #expect(message.hasPrefix("3:11: node 'camera': key 'path': '\(path.prefix(40))…\(path.suffix(20))' (5000 bytes) not found"))
        #expect(DataflowDiagnostic.shortened("short 'value' stays") == "short 'value' stays")
        #expect(DataflowDiagnostic.shortened("an 'unclosed \(path)") == "an 'unclosed \(path)")
    }

    /// A file past the size limit is refused before it is read: a huge YAML tree costs memory.
    @Test func aFileOverTheSizeLimitIsRefusedUnread() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("apus-huge-\(getpid()).yml").path
        defer { unlink(path) }
        let size = DataflowDescriptor.Limits.fileSize + 1
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: UInt8(ascii: "#"), count: size)))
        #expect(throws: DataflowErrors.self) { try DataflowLoader().load(file: path) }
        do {
            _ = try DataflowLoader().load(file: path)
        } catch {
            #expect(error.diagnostics.map(\.description) == ["\(path): is \(size) bytes; a dataflow file may have at most 1 MiB"])
        }
    }

    /// Large counts are refused naming the limit, and checking up to the limit stays linear.
    @Test func countsPastTheLimitsAreRefusedAndUpToThemCheckedQuickly() {
        let limit = DataflowDescriptor.Limits.outputs
        func outputs(_ count: Int) -> String {
            "nodes:\n  - id: wide\n    path: /bin/true\n    outputs: [" + (0..<count).map { "o\($0)" }.joined(separator: ", ") + "]\n"
        }
        #expect(problems(outputs(40_000)) == ["4:14: node 'wide': key 'outputs': 40000 outputs; a node may have at most \(limit)"])
        let started = ContinuousClock.now
        #expect(problems(outputs(limit)) == [])
        #expect(ContinuousClock.now - started < .seconds(5), "checking \(limit) outputs took too long")
        let env = "env:\n" + (0..<5000).map { "  V\($0): x\n" }.joined() + "nodes:\n  - id: a\n    path: /bin/true\n"
        #expect(problems(env) == ["2:3: env: 5000 variables; an env may have at most \(DataflowDescriptor.Limits.envVariables)"])
        let inputs =
            "nodes:\n  - id: a\n    path: /bin/true\n    outputs: [o]\n    inputs:\n"
            + (0..<4097).map { "      i\($0): a/o\n" }.joined()
        #expect(problems(inputs) == ["6:7: node 'a': key 'inputs': 4097 inputs; a node may have at most 4096"])
    }
}

@Suite struct LineBreakTests {
    /// A duplicate key after CR line breaks made the loader trap: libyaml counts CR as a line
    /// break, and the lines it was looked for in were split at LF only. (Found by the fuzzer.)
    @Test func carriageReturnLineBreaksArePositionedLikeLinefeeds() {
        do {
            _ = try DataflowLoader(checksPaths: false).parse(yaml: "x: 0\rm:\r  a: 1\r  a: 2\r", file: "cr.yml", directory: "/")
            Issue.record("a duplicate key was accepted")
        } catch {
            #expect(error.diagnostics.map(\.positionedMessage) == ["4:3: duplicate key 'a' (first at line 3)"])
        }
    }
}
