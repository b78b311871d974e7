/// A built-in periodic source, written `apus/timer/<unit>/<n>` (or `dora/timer/...`).
public struct TimerSpec: Sendable, Hashable, CustomStringConvertible {
    public enum Unit: String, Sendable, CaseIterable {
        case secs, millis, micros, nanos, hz

        /// Nanoseconds in one of the unit (1 for `hz`, whose period is computed).
        var nanoseconds: UInt64 {
            switch self {
            case .secs: 1_000_000_000
            case .millis: 1_000_000
            case .micros: 1_000
            case .nanos, .hz: 1
            }
        }
    }

    public var unit: Unit
    /// The number as written (an integer for every unit but `hz`).
    public var value: Double
    /// Period in nanoseconds; two timers with the same period are one source.
    public var periodNanoseconds: UInt64

    /// Parses the part after `apus/timer/`, e.g. `millis/33` or `hz/29.97`.
    /// Returns a message naming what is wrong on failure.
    static func parse(unit unitText: Substring, value valueText: Substring) -> Result<TimerSpec, TimerError> {
        guard let unit = Unit(rawValue: String(unitText)) else {
            return .failure(.unknownUnit(String(unitText)))
        }
        if unit == .hz {
            guard let hz = Double(valueText), hz.isFinite, hz > 0, valueText.first != "+" else {
                return .failure(.notPositiveNumber(String(valueText)))
            }
            let period = (1e9 / hz).rounded()
            guard period >= 1, period < 1.8e19 else { return .failure(.outOfRange(String(valueText))) }
            return .success(TimerSpec(unit: unit, value: hz, periodNanoseconds: UInt64(period)))
        }
        guard valueText.allSatisfy(\.isASCIIDigit), let count = UInt64(valueText), count > 0 else {
            return .failure(.notPositiveInteger(String(valueText)))
        }
        let (period, overflow) = count.multipliedReportingOverflow(by: unit.nanoseconds)
        guard !overflow else { return .failure(.outOfRange(String(valueText))) }
        return .success(TimerSpec(unit: unit, value: Double(count), periodNanoseconds: period))
    }

    /// Canonical spelling, e.g. `apus/timer/millis/33`. (The count comes from the period, which is
    /// exact; `value` as a Double is not, for counts near 2^64.)
    public var description: String {
        let number = unit == .hz ? formatNumber(value) : String(periodNanoseconds / unit.nanoseconds)
        return "apus/timer/\(unit.rawValue)/\(number)"
    }

    enum TimerError: Error {
        case unknownUnit(String)
        case notPositiveInteger(String)
        case notPositiveNumber(String)
        case outOfRange(String)

        var message: String {
            switch self {
            case .unknownUnit(let unit):
                "unknown unit '\(unit)' (units: \(Unit.allCases.map(\.rawValue).joined(separator: ", ")))"
            case .notPositiveInteger(let value):
                "'\(value)' is not a positive integer"
            case .notPositiveNumber(let value):
                "'\(value)' is not a positive number"
            case .outOfRange(let value):
                "'\(value)' gives a period out of range (1 ns to 584 years)"
            }
        }
    }
}

/// Shortest text for a number: `30` rather than `30.0`, `29.97` as is.
func formatNumber(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return String(value)
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
