// `env` and the typed values every key is read as: text, integers, durations, choices.
import Foundation
import Yams

extension DataflowParser {
    mutating func parseEnv(_ value: Node, _ scope: Scope) -> [EnvVariable] {
        guard case .mapping(let mapping) = value else {
            report(value, scope, "expected a mapping of variable names to values, found \(value.kindDescription)")
            return []
        }
        guard withinLimit(mapping.count, DataflowDescriptor.Limits.envVariables, "variables", of: "an env", at: value, scope) else {
            return []
        }
        var variables: [EnvVariable] = []
        for (keyNode, item) in mapping {
            guard let name = mappingKey(keyNode, scope) else { continue }
            guard EnvExpansion.isVariableName(Substring(name)) else {
                report(keyNode, scope, "'\(name)' is not a valid variable name (letters, digits and '_', not starting with a digit)")
                continue
            }
            let itemScope = scope.with("'\(name)'")
            guard case .scalar(let scalar) = item else {
                report(item, itemScope, "expected a bool, number or string, found \(item.kindDescription)")
                continue
            }
            switch ScalarValue(scalar) {
            case .null:
                report(item, itemScope, "expected a bool, number or string, found nothing")
            case .bool(let flag):
                variables.append(EnvVariable(name: name, value: .bool(flag)))
            case .int(let number):
                variables.append(EnvVariable(name: name, value: .int(number)))
            case .float(let number):
                variables.append(EnvVariable(name: name, value: .float(number)))
            case .string(let text):
                do {
                    let expanded = try EnvExpansion.expand(text, environment: loader.environment)
                    variables.append(EnvVariable(name: name, value: .string(expanded)))
                } catch {
                    report(item, itemScope, error.message)
                }
            }
        }
        return variables
    }

    // MARK: Typed values

    /// Any non-null scalar as the text written; a mapping, list or nothing is reported.
    mutating func text(_ value: Node, _ scope: Scope) -> String? {
        guard case .scalar(let scalar) = value, ScalarValue(scalar) != .null else {
            report(value, scope, "expected a string, found \(value.kindDescription)")
            return nil
        }
        return scalar.string
    }

    mutating func integer(_ value: Node, _ scope: Scope, minimum: Int64, maximum: Int64 = .max) -> Int64? {
        guard case .scalar(let scalar) = value, case .int(let number) = ScalarValue(scalar) else {
            report(value, scope, "expected an integer, found \(value.kindDescription)")
            return nil
        }
        guard number >= minimum else {
            report(value, scope, "must be at least \(minimum), found \(number)")
            return nil
        }
        guard number <= maximum else {
            report(value, scope, "must be at most \(maximum), found \(number)")
            return nil
        }
        return number
    }

    /// A duration in seconds: a finite number greater than zero.
    /// Whether `count` items are allowed; reports "N items; a whole may have at most L" if not.
    mutating func withinLimit(_ count: Int, _ limit: Int, _ items: String, of whole: String, at value: Node, _ scope: Scope) -> Bool {
        guard count > limit else { return true }
        report(value, scope, "\(count) \(items); \(whole) may have at most \(limit)")
        return false
    }

    mutating func duration(_ value: Node, _ scope: Scope) -> Double? {
        let seconds: Double
        switch value {
        case .scalar(let scalar):
            switch ScalarValue(scalar) {
            case .int(let number): seconds = Double(number)
            case .float(let number): seconds = number
            default:
                report(value, scope, "expected a number of seconds, found \(value.kindDescription)")
                return nil
            }
        default:
            report(value, scope, "expected a number of seconds, found \(value.kindDescription)")
            return nil
        }
        guard seconds.isFinite, seconds > 0 else {
            report(value, scope, "must be a finite number of seconds greater than 0, found \(value.scalar?.string ?? "")")
            return nil
        }
        guard seconds <= DataflowDescriptor.maximumDuration else {
            report(
                value, scope,
                "must be at most \(Int(DataflowDescriptor.maximumDuration)) seconds (a week), found \(value.scalar?.string ?? "")")
            return nil
        }
        return seconds
    }

    /// A log file size: bytes, or a number with KB, MB or GB (also written KiB, MiB, GiB; 1024
    /// each way), as dora writes "50MB"; at least 1 KiB.
    mutating func logSize(_ value: Node, _ scope: Scope) -> Int? {
        guard let written = text(value, scope) else { return nil }
        let units: [(String, Int)] = [
            ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1), ("", 1),
        ]
        for (suffix, factor) in units where written.hasSuffix(suffix) {
            let digits = written.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let number = Int(digits), number > 0, number <= (1 << 40) / factor else { break }
            guard number * factor >= 1024 else {
                report(value, scope, "'\(written)' is less than 1KB")
                return nil
            }
            return number * factor
        }
        report(value, scope, "'\(written)' is not a size (write bytes, or a number with KB, MB or GB)")
        return nil
    }

    /// `cpu_affinity: [0, 2]` (or one number): CPU numbers, each 0 to 1023, at least one.
    mutating func parseCPUs(_ value: Node, _ scope: Scope) -> [Int] {
        let items: [Node]
        switch value {
        case .sequence(let sequence): items = Array(sequence)
        case .scalar: items = [value]
        default:
            report(value, scope, "expected a list of CPU numbers, found \(value.kindDescription)")
            return []
        }
        if items.isEmpty { report(value, scope, "names no CPU; leave it out to run on any") }
        return items.compactMap { integer($0, scope, minimum: 0, maximum: 1023).map(Int.init) }
    }

    mutating func boolean(_ value: Node, _ scope: Scope) -> Bool? {
        guard case .scalar(let scalar) = value, case .bool(let flag) = ScalarValue(scalar) else {
            report(value, scope, "expected true or false, found \(value.kindDescription)")
            return nil
        }
        return flag
    }

    mutating func choice<Choice: RawRepresentable & CaseIterable>(
        _ value: Node, _ scope: Scope, _: Choice.Type
    ) -> Choice? where Choice.RawValue == String {
        let values = Choice.allCases.map(\.rawValue).joined(separator: ", ")
        guard case .scalar(let scalar) = value, case .string(let text) = ScalarValue(scalar) else {
            report(value, scope, "expected one of \(values), found \(value.kindDescription)")
            return nil
        }
        guard let choice = Choice(rawValue: text) else {
            report(value, scope, "unknown value '\(text)' (expected one of \(values))")
            return nil
        }
        return choice
    }
}
