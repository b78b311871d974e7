// A node's `deploy` (dora's `_unstable_deploy` too): the machine it runs on, and where.
import Yams

/// Where a node runs: `machine` names a machine whose daemon runs it (`apus daemon --machine
/// NAME`); nil, where the dataflow was started.
public struct Deployment: Sendable, Equatable {
    public var machine: String?
    /// The folder the node runs in on its machine; its relative `path` is found from there.
    public var workingDirectory: String?
    /// dora's `local: true`: the node runs where the dataflow was started (with `machine`, that
    /// machine is the one `apus run` runs on).
    public var local = false

    public init(machine: String? = nil, workingDirectory: String? = nil, local: Bool = false) {
        self.machine = machine
        self.workingDirectory = workingDirectory
        self.local = local
    }
}

extension DataflowParser {
    static let deployKeys = ["machine", "working_dir", "local", "distribute"]

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
                deployment.machine = parseID(item, keyScope, what: "machine name")
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
                report(keyNode, scope, "key 'labels' is not supported yet: name the node's machine with 'machine'")
            default:
                report(keyNode, scope, "unknown key '\(key)' (expected one of \(Self.deployKeys.joined(separator: ", ")))")
            }
        }
        return deployment
    }
}
