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
