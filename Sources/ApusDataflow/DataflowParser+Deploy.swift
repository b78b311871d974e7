// A node's `deploy` (dora's `_unstable_deploy` too): the machine it runs on, and where.
import Yams

/// Where a node runs: `machine` names a machine whose daemon runs it (`apus daemon --machine
/// NAME`); nil, where the dataflow was started. `labels` pick a machine whose daemon has them all
/// (`apus daemon --label KEY=VALUE`); with `machine` too, that machine must have them.
public struct Deployment: Sendable, Equatable {
    public var machine: String?
    public var labels: [String: String] = [:]
    /// The folder the node runs in on its machine; its relative `path` is found from there.
    public var workingDirectory: String?
    /// dora's `local: true`: the node runs where the dataflow was started (with `machine`, that
    /// machine is the one `apus run` runs on).
    public var local = false

    public init(machine: String? = nil, labels: [String: String] = [:], workingDirectory: String? = nil, local: Bool = false) {
        self.machine = machine
        self.labels = labels
        self.workingDirectory = workingDirectory
        self.local = local
    }
}

extension DataflowParser {
    static let deployKeys = ["machine", "labels", "working_dir", "local", "distribute"]

    mutating func parseDeploy(_ value: Node, _ scope: Scope) -> Deployment? {
        guard case .mapping(let mapping) = value else {
            report(value, scope, "must be a mapping such as {machine: gpu}")
            return nil
        }
        var deployment = Deployment()
        for (keyNode, item) in mapping {
            guard let key = mappingKey(keyNode, scope) else { continue }
            let keyScope = scope.with("key '\(key)'")
            switch key {
            case "machine":
                guard let name = parseID(item, keyScope, what: "machine name") else { continue }
                guard !name.hasPrefix("-") else {
                    report(item, keyScope, "machine name '\(name)' must not start with '-': commands take it as an argument")
                    continue
                }
                deployment.machine = name
            case "working_dir":
                if let folder = text(item, keyScope) {
                    if folder.hasPrefix("/") {
                        deployment.workingDirectory = folder
                    } else {
                        report(item, keyScope, "'\(folder)' is relative: give the folder's absolute path on that machine")
                    }
                }
            case "local":
                deployment.local = boolean(item, keyScope) ?? false
            case "distribute":
                // dora's spread of a node over several machines; one machine per node here.
                if let how = text(item, keyScope), how != "local" {
                    report(item, keyScope, "'\(how)' is not supported: a node runs on one machine (distribute: local, the default)")
                }
            case "labels":
                deployment.labels = parseLabels(item, keyScope)
            default:
                report(keyNode, scope, "unknown key '\(key)' (expected one of \(Self.deployKeys.joined(separator: ", ")))")
            }
        }
        return deployment
    }

    /// `labels: {gpu: "true", arch: arm64}`: names to values, each a bool, number or string (as
    /// written), compared as text with the labels a daemon was started with.
    mutating func parseLabels(_ value: Node, _ scope: Scope) -> [String: String] {
        guard case .mapping(let mapping) = value else {
            report(value, scope, "must be a mapping of label names to values such as {gpu: \"true\"}")
            return [:]
        }
        var labels: [String: String] = [:]
        for (keyNode, item) in mapping {
            guard let name = mappingKey(keyNode, scope) else { continue }
            guard Deployment.isLabel(name) else {
                report(keyNode, scope, "label name '\(name)' may contain only letters, digits, '_', '.', '/' and '-'")
                continue
            }
            guard let text = text(item, scope.with("label '\(name)'")) else { continue }
            guard Deployment.isLabel(text) else {
                report(item, scope.with("label '\(name)'"), "value '\(text)' may contain only letters, digits, '_', '.', '/' and '-'")
                continue
            }
            labels[name] = text
        }
        return labels
    }
}

extension Deployment {
    /// Whether `text` may name a label (or be one's value): what a command line and DDS carry
    /// unchanged.
    public static func isLabel(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-/".contains($0)) }
    }

    /// Whether `name` can name a machine, as `deploy.machine` does: letters, digits, '_', '.' and
    /// '-', not starting with '.' or '-'.
    public static func isMachineName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && !name.hasPrefix("-") && name.allSatisfy(\.isIDCharacter)
    }
}
