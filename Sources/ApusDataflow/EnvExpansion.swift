/// Expands `$NAME`, `${NAME}` and `${NAME:-default}` in env strings, like a shell would,
/// except that an unset variable without a default is an error rather than an empty string.
enum EnvExpansion {
    struct ExpansionError: Error, Equatable {
        var message: String
    }

    static func expand(_ text: String, environment: [String: String]) throws(ExpansionError) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            guard character == "$" else {
                result.append(character)
                index = text.index(after: index)
                continue
            }
            let afterDollar = text.index(after: index)
            if afterDollar < text.endIndex, text[afterDollar] == "{" {
                guard let close = text[afterDollar...].firstIndex(of: "}") else {
                    throw ExpansionError(message: "'${' without a closing '}'")
                }
                let body = text[text.index(after: afterDollar)..<close]
                let name: Substring
                let fallback: Substring?
                if let separator = body.range(of: ":-") {
                    name = body[..<separator.lowerBound]
                    fallback = body[separator.upperBound...]
                } else {
                    name = body
                    fallback = nil
                }
                guard isVariableName(name) else {
                    throw ExpansionError(message: "'${\(body)}' is not a variable reference")
                }
                if let value = environment[String(name)], !(fallback != nil && value.isEmpty) {
                    result += value
                } else if let fallback {
                    result += fallback
                } else {
                    throw ExpansionError(message: "variable '\(name)' is not set (write ${\(name):-default} for a default)")
                }
                index = text.index(after: close)
                continue
            }
            let nameEnd = text[afterDollar...].firstIndex { !isNameCharacter($0) } ?? text.endIndex
            let name = text[afterDollar..<nameEnd]
            guard isVariableName(name) else {
                result.append("$")
                index = afterDollar
                continue
            }
            guard let value = environment[String(name)] else {
                throw ExpansionError(message: "variable '\(name)' is not set (write ${\(name):-default} for a default)")
            }
            result += value
            index = nameEnd
        }
        return result
    }

    static func isVariableName(_ name: Substring) -> Bool {
        guard let first = name.first, first == "_" || first.isASCIILetter else { return false }
        return name.allSatisfy(isNameCharacter)
    }

    static func isNameCharacter(_ character: Character) -> Bool {
        character == "_" || character.isASCIILetter || character.isASCIIDigit
    }
}

extension Character {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    /// What an id (a node's, an output's, a machine's) is made of: letters, digits, '_', '.', '-'.
    var isIDCharacter: Bool { isASCIILetter || isASCIIDigit || "_.-".contains(self) }
}
