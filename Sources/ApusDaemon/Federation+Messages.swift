// What daemons and runs say to each other on the federation's topics (Federation, in
// ApusNetwork): a daemon's presence and a request to it, as JSON.
import ApusNetwork
import Foundation

extension Federation {
    /// What a daemon announces: its machine's name and labels, an id of its own (two daemons
    /// that announce the same machine are told apart by it), and its Apus version (empty: one
    /// that did not say).
    public struct Presence: Sendable, Equatable {
        public var machine: String
        public var labels: [String: String]
        public var instance: String
        public var version: String

        public init(machine: String, labels: [String: String] = [:], instance: String, version: String = "") {
            self.machine = machine
            self.labels = labels
            self.instance = instance
            self.version = version
        }

        public func encoded() -> [UInt8] {
            let object: [String: Any] = ["machine": machine, "labels": labels, "instance": instance, "version": version]
            return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
        }

        /// A presence from the network; nil for anything else.
        public init?(_ bytes: UnsafeRawBufferPointer) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                let machine = object["machine"] as? String, !machine.isEmpty,
                let labels = object["labels"] as? [String: String], let instance = object["instance"] as? String, !instance.isEmpty
            else { return nil }
            self.init(machine: machine, labels: labels, instance: instance, version: object["version"] as? String ?? "")
        }
    }

    /// A request to a daemon.
    public struct Request: Sendable, Equatable {
        public enum Kind: String, Sendable { case start, stop }
        public var kind: Kind
        public var run: String
        /// start: the machine `apus run` runs on, the dataflow file's text, its path there, and
        /// the folder to run it in on this machine (its nodes' `deploy.working_dir`; empty: the
        /// file's folder), the machines chosen for nodes by their labels (`NODE=MACHINE` lines),
        /// the run's name (`apus run --name`, else the file's name), and the file `apus run
        /// --record` writes on the machine that started it (empty: none), and the daemon it is for
        /// (its presence's `instance`): one started since, by the same name, ignores it.
        public var local = ""
        public var yaml = ""
        public var file = ""
        public var folder = ""
        public var placements = ""
        public var name = ""
        public var record = ""
        public var instance = ""

        public init(
            kind: Kind, run: String, local: String = "", yaml: String = "", file: String = "", folder: String = "",
            placements: String = "", name: String = "", record: String = "", instance: String = ""
        ) {
            self.kind = kind
            self.run = run
            self.local = local
            self.yaml = yaml
            self.file = file
            self.folder = folder
            self.placements = placements
            self.name = name
            self.record = record
            self.instance = instance
        }

        public func encoded() -> [UInt8] {
            let object: [String: String] = [
                "kind": kind.rawValue, "run": run, "local": local, "yaml": yaml, "file": file, "folder": folder, "placements": placements,
                "name": name, "record": record, "instance": instance,
            ]
            return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
        }

        /// A request from the network; nil for anything else.
        public init?(_ bytes: UnsafeRawBufferPointer) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: String],
                let kind = object["kind"].flatMap(Kind.init(rawValue:)), let run = object["run"], !run.isEmpty,
                run.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }),
                (object["record"] ?? "").isEmpty || (object["record"] ?? "").hasPrefix("/"),
                (object["name"] ?? "").allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) })
            else { return nil }
            self.init(
                kind: kind, run: run, local: object["local"] ?? "", yaml: object["yaml"] ?? "", file: object["file"] ?? "",
                folder: object["folder"] ?? "", placements: object["placements"] ?? "", name: object["name"] ?? "",
                record: object["record"] ?? "", instance: object["instance"] ?? "")
        }
    }
}
