import Yams

/// A 1-based line and column.
struct Position: Equatable {
    var line: Int
    var column: Int
}

/// Turns libyaml's errors into diagnostics that point at the offending line and say what to do.
enum YAMLSyntaxDiagnostics {
    static func diagnostics(for error: YamlError, yaml: String, file: String) -> [DataflowDiagnostic] {
        // Lines as libyaml counts them: CR, LF and CRLF all end one (so do NEL, LS and PS).
        let lines = yaml.split(omittingEmptySubsequences: false) { "\n\r\r\n\u{85}\u{2028}\u{2029}".contains($0) }

        func diagnostic(_ mark: Position, _ message: String) -> DataflowDiagnostic {
            DataflowDiagnostic(file: file, line: mark.line, column: mark.column, message: message)
        }

        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            if let tab = firstTabInIndentation(lines, upTo: mark.line) {
                return [diagnostic(tab, "tab character in indentation; YAML indents with spaces only")]
            }
            if problem.hasPrefix("Maximum nesting level reached") {
                // libyaml's words name its own API; say it in a dataflow's terms.
                return [
                    diagnostic(
                        Position(line: mark.line, column: mark.column),
                        "YAML nested too deeply (more than 1000 levels of lists or mappings)")
                ]
            }
            var message = "YAML syntax: \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            if problem == "mapping values are not allowed in this context" {
                message += "; check the indentation and put a space after each ':'"
            }
            return [diagnostic(Position(line: mark.line, column: mark.column), message)]
        case .duplicatedKeysInMapping(let duplicates, let context):
            return duplicates.sorted().map { key in
                let first = Position(line: context.mark.line, column: context.mark.column)
                let second = secondOccurrence(of: key, after: first, in: lines)
                let at = second ?? first
                let origin = second == nil ? "" : " (first at line \(first.line))"
                return diagnostic(at, "duplicate key '\(key)'\(origin)")
            }
        case .reader(let problem, let offset, _, _):
            let at = offset.map { position(atByteOffset: $0, in: yaml) } ?? Position(line: 1, column: 1)
            return [diagnostic(at, "cannot read the file as YAML: \(problem)")]
        default:
            return [DataflowDiagnostic(file: file, line: nil, column: nil, message: "YAML: \(error)")]
        }
    }

    /// libyaml reports a tab far from where it is; find it ourselves on the lines read so far.
    private static func firstTabInIndentation(_ lines: [Substring], upTo lastLine: Int) -> Position? {
        for (index, line) in lines.prefix(max(lastLine, 1)).enumerated() {
            for (column, character) in line.enumerated() {
                if character == "\t" { return Position(line: index + 1, column: column + 1) }
                if character != " " && character != "-" { break }
            }
        }
        return nil
    }

    /// The duplicate of a block-mapping key: the next line at the same column starting with `key:`.
    private static func secondOccurrence(of key: String, after first: Position, in lines: [Substring]) -> Position? {
        let column = first.column - 1
        guard first.line < lines.count, column >= 0 else { return nil }
        for index in first.line..<lines.count {
            let line = Array(lines[index].unicodeScalars)
            guard line.count > column else { continue }
            let indentation = line[..<column]
            guard indentation.allSatisfy({ $0 == " " || $0 == "-" }) else { continue }
            let rest = String(String.UnicodeScalarView(line[column...]))
            for spelling in [key, "\"\(key)\"", "'\(key)'"] where rest.hasPrefix(spelling) {
                let after = rest.dropFirst(spelling.count).drop { $0 == " " }
                if after.first == ":" { return Position(line: index + 1, column: first.column) }
            }
        }
        return nil
    }

    private static func position(atByteOffset offset: Int, in yaml: String) -> Position {
        var line = 1
        var column = 1
        for byte in yaml.utf8.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return Position(line: line, column: column)
    }
}
