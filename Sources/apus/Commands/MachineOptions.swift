// The options of dataflows across machines: those that make a daemon serve as a machine (`apus
// up`, `apus daemon`), those of a run that spans machines (`apus run`, `apus start`), and the
// bridges' own.
import ApusDaemon
import ApusDataflow
import ArgumentParser

struct MachineOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Serve as this machine for dataflows started on other machines (nodes with deploy: {machine: NAME}), over DDS.",
            valueName: "name"))
    var machine: String?

    @Option(help: ArgumentHelp("The DDS domain to serve on (default 0; with --machine).", valueName: "id"))
    var ddsDomain: UInt32?

    @Option(
        help: ArgumentHelp(
            "A label of this machine (with --machine), for nodes with deploy: {labels: {KEY: VALUE}}; repeat for several.",
            valueName: "key=value"))
    var label: [String] = []

    func validate() throws {
        try checkMachineOptions(machine: machine, labels: label)
        if machine == nil, !label.isEmpty || ddsDomain != nil {
            throw ValidationError("\(label.isEmpty ? "--dds-domain" : "--label") needs --machine: it is about serving as a machine")
        }
    }

    /// The labels, checked by `validate`.
    var labels: [String: String] { (try? MachineSplit.labels(fromArguments: label)) ?? [:] }

    /// These options as `apus daemon` takes them.
    var arguments: [String] {
        (machine.map { ["--machine", $0] } ?? []) + (ddsDomain.map { ["--dds-domain", String($0)] } ?? [])
            + label.flatMap { ["--label", $0] }
    }
}

/// This machine's name and labels, and how to find the others' daemons, for a run across machines.
struct AcrossMachinesOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "This machine's name, for nodes with deploy: {machine: NAME}.",
            discussion:
                "Nodes without deploy, and those of this machine, run here; every other machine needs `apus daemon --machine NAME` running on the same DDS domain. By default the machine of the nodes with deploy: {local: true}, else `local`.",
            valueName: "name"))
    var machine: String?

    @Option(help: ArgumentHelp("The DDS domain the machines' daemons are on (default 0).", valueName: "id"))
    var ddsDomain: UInt32?

    @Option(
        help: ArgumentHelp(
            "A label of this machine, for nodes with deploy: {labels: {KEY: VALUE}} (repeat for several).",
            discussion: "Such a node runs here when this machine has all its labels, else on the first machine by name whose daemon has.",
            valueName: "key=value"))
    var label: [String] = []

    @Option(help: ArgumentHelp("How long to look for the other machines' daemons before failing (default 10s).", valueName: "duration"))
    var discoveryTimeout: String?

    func validate() throws {
        if let discoveryTimeout, parseDuration(discoveryTimeout) == nil {
            throw ValidationError(durationProblem("--discovery-timeout", discoveryTimeout))
        }
        try checkMachineOptions(machine: machine, labels: label)
    }

    /// `--dds-domain`, or its default.
    var domain: UInt32 { ddsDomain ?? 0 }

    /// `--discovery-timeout` in seconds (checked by `validate`), or its default.
    var discoverySeconds: Double { discoveryTimeout.flatMap(parseDuration) ?? 10 }
}

/// Checks a `--machine NAME` and `--label KEY=VALUE` options as `apus run`, `apus start`, `apus up`
/// and `apus daemon` take them: a name that no `deploy.machine` could name is refused.
func checkMachineOptions(machine: String?, labels: [String]) throws {
    if let machine, !Deployment.isMachineName(machine) {
        throw ValidationError(
            "--machine '\(machine)': a machine name may contain only letters, digits, '_', '.' and '-', and not start with '.' or '-' (as in deploy: {machine: NAME})"
        )
    }
    do {
        _ = try MachineSplit.labels(fromArguments: labels)
    } catch {
        throw ValidationError(error.description)
    }
}

/// The options both bridges (`apus bridge-in`, `apus bridge-out`) take: which run, on which domain.
struct BridgeOptions: ParsableArguments {
    @Option(name: .customLong("run"), help: "The run's id, which names its topics.") var runID: String
    @Option(help: "The DDS domain.") var domain: UInt32 = 0
}
