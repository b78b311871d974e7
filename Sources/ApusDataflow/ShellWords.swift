/// Splits a command line into words the way a POSIX shell does, without expansion:
/// whitespace separates words, `'...'` is literal, `"..."` allows `\"`, `\\`, `\$`, `` \` ``,
/// and a backslash outside quotes escapes the next character.
enum ShellWords {
    struct SplitError: Error, Equatable {
        var message: String
    }

    static func split(_ line: String) throws(SplitError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var iterator = line.makeIterator()

        while let character = iterator.next() {
            switch character {
            case " ", "\t", "\n", "\r":
                if inWord {
                    words.append(current)
                    current = ""
                    inWord = false
                }
            case "'":
                inWord = true
                var closed = false
                while let next = iterator.next() {
                    if next == "'" {
                        closed = true
                        break
                    }
                    current.append(next)
                }
                guard closed else { throw SplitError(message: "unterminated single quote") }
            case "\"":
                inWord = true
                var closed = false
                while let next = iterator.next() {
                    if next == "\"" {
                        closed = true
                        break
                    }
                    if next == "\\" {
                        guard let escaped = iterator.next() else { break }
                        if !"\"\\$`\n".contains(escaped) { current.append("\\") }
                        if escaped != "\n" { current.append(escaped) }
                        continue
                    }
                    current.append(next)
                }
                guard closed else { throw SplitError(message: "unterminated double quote") }
            case "\\":
                inWord = true
                guard let escaped = iterator.next() else {
                    throw SplitError(message: "trailing backslash")
                }
                if escaped != "\n" { current.append(escaped) }
            default:
                inWord = true
                current.append(character)
            }
        }
        if inWord { words.append(current) }
        return words
    }
}
