/// A validated dataflow: what `apus run` starts and what `apus check` / `apus graph` describe.
public struct DataflowDescriptor: Sendable, Equatable {
    /// The longest duration any key or option takes, in seconds: a week.
    public static let maximumDuration: Double = 7 * 24 * 3600

    /// How large a dataflow may be; past these a file is refused with the limit named, so that a
    /// huge or hostile file costs neither time nor memory.
    public enum Limits {
        /// Bytes of a dataflow file.
        public static let fileSize = 1 << 20
        public static let nodes = 10_000
        /// Per node (an inbox has at most 4096 rings).
        public static let inputs = 4096
        /// Per node.
        public static let outputs = 4096
        /// Per `env` mapping.
        public static let envVariables = 4096
    }

    /// The file as the user named it (used in messages).
    public var file: String
    /// Absolute folder of the file: node paths resolve against it and nodes run in it.
    public var directory: String
    /// Variables for every node; a node's own `env` wins.
    public var env: [EnvVariable]
    public var nodes: [NodeDescriptor]
    /// Whether a node whose data inputs have all closed gets STOP even if it also has timers
    /// (true, Apus's default), or its timers keep it running until the dataflow stops (false).
    public var exitWhenNodesFinish = true
    /// Seconds between checks of the nodes that have a `health_check_timeout`.
    public var healthCheckInterval: Double = 5
    /// Problems that do not stop a run: type annotations that do not fit (errors with
    /// `strict_types: true`). `apus check` and `apus run` show them.
    public var warnings: [DataflowDiagnostic] = []

    public init(file: String, directory: String, env: [EnvVariable], nodes: [NodeDescriptor]) {
        self.file = file
        self.directory = directory
        self.env = env
        self.nodes = nodes
    }

    public func node(_ id: String) -> NodeDescriptor? {
        nodes.first { $0.id == id }
    }
}

/// One node of a dataflow: a process Apus starts and wires.
public struct NodeDescriptor: Sendable, Equatable {
    public var id: String
    public var name: String?
    public var description: String?
    /// `path` as written in the file.
    public var path: String
    /// `path` made absolute against the dataflow folder, or found on `PATH` for a bare command name.
    public var resolvedPath: String
    /// `args` split like a shell does.
    public var args: [String]
    public var env: [EnvVariable]
    /// Shell lines run (in the dataflow folder) before the node starts.
    public var build: String?
    public var inputs: [InputDescriptor]
    public var outputs: [String]
    public var restartPolicy: RestartPolicy
    /// Restarts allowed before the failure stands; 0 means unlimited.
    public var maxRestarts: Int
    /// Seconds before the first restart; doubles on each later one.
    public var restartDelay: Double?
    /// Upper bound, in seconds, for the doubling restart delay.
    public var maxRestartDelay: Double?
    /// Output on which each stdout line of the node is also sent as a utf8 message.
    public var sendStdoutAs: String?
    /// Its log entries (apus_node_log, Python logging) as JSON messages on this output.
    /// `max_restarts` counts restarts within this many seconds from the first of a window.
    public var restartWindow: Double?
    /// Seconds without a word from the node (a send, a receive) after which it is killed and its
    /// restart_policy applies.
    public var healthCheckTimeout: Double?
    /// CPUs the node's process may run on (sched_setaffinity).
    public var cpuAffinity: [Int] = []
    /// How the node waits for its inputs (`wait`); nil: the default, adaptive.
    public var wait: WaitMode?
    /// `deploy`: the machine the node runs on (none: where the dataflow was started).
    public var deployment = Deployment()
    public var sendLogsAs: String?
    /// Lines below this level are dropped from the console, the log file and `send_logs_as`.
    public var minLogLevel: LogLevel?
    /// Its log file is rotated at this many bytes, keeping `maxRotatedFiles` old ones.
    public var maxLogSize: Int?
    public var maxRotatedFiles: Int = 5
    /// Declared types of its outputs and inputs (`output_types`, `input_types`), and the metadata
    /// keys each message of an output must carry (`output_metadata`, and `pattern`'s).
    public var outputTypes: [PortType] = []
    public var inputTypes: [PortType] = []
    public var outputMetadata: [String: [String]] = [:]
    /// The operators of a runtime node (empty for a node that runs a program). The node's inputs
    /// and outputs are then theirs, named `OPERATOR/ID` (plain `ID` for a single `operator:`).
    public var operators: [OperatorDescriptor] = []
    /// Written as `operator:` (one operator, whose outputs are addressed `NODE/OUTPUT`).
    public var isSingleOperator = false

    public init(
        id: String, name: String? = nil, description: String? = nil, path: String, resolvedPath: String,
        args: [String] = [], env: [EnvVariable] = [], build: String? = nil,
        inputs: [InputDescriptor] = [], outputs: [String] = [],
        restartPolicy: RestartPolicy = .never, maxRestarts: Int = 0,
        restartDelay: Double? = nil, maxRestartDelay: Double? = nil, sendStdoutAs: String? = nil
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.path = path
        self.resolvedPath = resolvedPath
        self.args = args
        self.env = env
        self.build = build
        self.inputs = inputs
        self.outputs = outputs
        self.restartPolicy = restartPolicy
        self.maxRestarts = maxRestarts
        self.restartDelay = restartDelay
        self.maxRestartDelay = maxRestartDelay
        self.sendStdoutAs = sendStdoutAs
    }

    /// True for Python nodes, which are run with `python3 -u`.
    public var isPython: Bool { operators.isEmpty && path.hasSuffix(".py") }

    /// A node that hosts operators instead of running a program of its own.
    public var isRuntime: Bool { !operators.isEmpty }
    /// Whether it runs Python: a Python node, or a runtime node with Python or Numba operators.
    public var usesPython: Bool { isPython || operators.contains { $0.kind.usesPython } }

    /// What its inputs and outputs are called inside the node for operator `name`'s `id`.
    public func qualified(_ id: String, of name: String) -> String {
        isSingleOperator ? id : "\(name)/\(id)"
    }

    /// Its build steps: its own, or its operators', each once and in order.
    public var builds: [String] {
        var seen: Set<String> = []
        return ([build] + operators.map(\.build)).compactMap { $0 }.filter { seen.insert($0).inserted }
    }
}

/// One operator of a runtime node: a plugin the node loads and calls once per event.
public struct OperatorDescriptor: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A shared library with Apus's or dora's C operator ABI: as written, and as resolved
        /// (`build/op` is `build/libop.so`, as dora names it; a name ending in `.so` is kept).
        case sharedLibrary(path: String, resolvedPath: String)
        /// A WebAssembly module, run sandboxed: as written, and made absolute.
        case wasm(path: String, resolvedPath: String)
        /// A Python file with dora's `class Operator`, run in the runtime's embedded CPython.
        case python(path: String, resolvedPath: String)
        /// A numba `@cfunc` (`module.py:function`), called through its address.
        case numba(path: String, resolvedPath: String, function: String)

        public var name: String {
            switch self {
            case .sharedLibrary: "shared-library"
            case .wasm: "wasm"
            case .python: "python"
            case .numba: "numba"
            }
        }

        /// Where its code is, absolute.
        public var resolvedPath: String {
            switch self {
            case .sharedLibrary(_, let path), .wasm(_, let path), .python(_, let path), .numba(_, let path, _): path
            }
        }

        /// A Numba operator's function ("" for other kinds).
        public var function: String {
            if case .numba(_, _, let function) = self { return function }
            return ""
        }

        /// Whether it runs in the embedded Python interpreter (and needs the apus module).
        public var usesPython: Bool {
            switch self {
            case .python, .numba: true
            default: false
            }
        }
    }

    /// What a Wasm operator may use per event and in all (`limits:`).
    public struct WasmLimits: Sendable, Equatable {
        /// Instructions (WasmKit's fuel) one event may take; an endless loop ends there.
        public static let defaultFuelPerEvent: UInt64 = 100_000_000
        /// Bytes its linear memory may grow to.
        public static let defaultMemory: UInt64 = 64 << 20
        /// The largest memory a 32-bit Wasm module can address.
        public static let maximumMemory: UInt64 = 4 << 30

        public var fuelPerEvent: UInt64 = defaultFuelPerEvent
        public var memory: UInt64 = defaultMemory

        public init(fuelPerEvent: UInt64 = defaultFuelPerEvent, memory: UInt64 = defaultMemory) {
            self.fuelPerEvent = fuelPerEvent
            self.memory = memory
        }
    }

    public var id: String
    public var name: String?
    public var description: String?
    public var kind: Kind
    /// Shell lines run (in the dataflow folder) before the dataflow starts.
    public var build: String?
    /// A Wasm operator's limits (nil for other kinds).
    public var limits: WasmLimits?
    /// Whether a failed Wasm operator gets a fresh instance (the other kinds share their
    /// process, whose node's restart_policy applies), and how many times (0: no limit).
    public var restartPolicy: RestartPolicy = .never
    public var maxRestarts: Int = 0
    /// A Numba operator's scalar arguments by name (`params:`), in the order written: each a
    /// bool, int or float.
    public var params: [EnvVariable] = []
    /// Declared types and required metadata, as for a node (its own port ids).
    public var outputTypes: [PortType] = []
    public var inputTypes: [PortType] = []
    public var outputMetadata: [String: [String]] = [:]
    /// Its own input and output ids (the node's are qualified: see `NodeDescriptor.qualified`).
    public var inputs: [String]
    public var outputs: [String]

    public init(
        id: String, name: String? = nil, description: String? = nil, kind: Kind, build: String? = nil, inputs: [String] = [],
        outputs: [String] = []
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.kind = kind
        self.build = build
        self.inputs = inputs
        self.outputs = outputs
    }
}

/// One input of a node: where it comes from and how it queues.
public struct InputDescriptor: Sendable, Equatable {
    public static let defaultQueueSize = 10
    /// Rings are allocated up front in shared memory, so their size is bounded.
    public static let maxQueueSize = 1 << 20

    public var id: String
    public var source: InputSource
    public var queueSize: Int
    public var queuePolicy: QueuePolicy
    /// Seconds without a message after which the input is reported as timed out.
    public var inputTimeout: Double?

    public init(
        id: String, source: InputSource, queueSize: Int = InputDescriptor.defaultQueueSize,
        queuePolicy: QueuePolicy = .dropOldest, inputTimeout: Double? = nil
    ) {
        self.id = id
        self.source = source
        self.queueSize = queueSize
        self.queuePolicy = queuePolicy
        self.inputTimeout = inputTimeout
    }
}

public enum InputSource: Sendable, Hashable, CustomStringConvertible {
    /// An output of another node (or of the same node).
    case output(node: String, output: String)
    case timer(TimerSpec)

    public var isTimer: Bool {
        if case .timer = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .output(let node, let output): "\(node)/\(output)"
        case .timer(let timer): timer.description
        }
    }
}

/// What a producer does when an input's queue is full.
public enum QueuePolicy: String, Sendable, CaseIterable {
    /// Evict the oldest queued message (counted as dropped).
    case dropOldest = "drop_oldest"
    /// Make the producer wait for room, bounded by a timeout.
    case backpressure
}

/// A node's `wait` key: how it waits for its inputs (ApusTransport's WaitPolicy, by name).
public enum WaitMode: String, Sendable, CaseIterable {
    case adaptive, spin, sleep
}

public enum RestartPolicy: String, Sendable, CaseIterable {
    case never
    case onFailure = "on-failure"
    case always
}

/// A variable set in a node's environment.
public struct EnvVariable: Sendable, Equatable {
    public var name: String
    public var value: EnvValue

    public init(name: String, value: EnvValue) {
        self.name = name
        self.value = value
    }
}

/// An `env` value as typed in the file; strings have had `$VAR` expanded.
public enum EnvValue: Sendable, Equatable, CustomStringConvertible {
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)

    /// The text the node sees in its environment.
    public var description: String {
        switch self {
        case .bool(let value): String(value)
        case .int(let value): String(value)
        case .float(let value): String(value)
        case .string(let value): value
        }
    }
}

/// A declared type of one output or input, and where it is written.
public struct PortType: Sendable, Hashable {
    public var port: String
    public var type: TypeURN
    public var line: Int?
    public var column: Int?

    public init(port: String, type: TypeURN, line: Int? = nil, column: Int? = nil) {
        self.port = port
        self.type = type
        self.line = line
        self.column = column
    }
}

/// How much a log line says, least first. `stdout` is what a node prints itself (any line that
/// is not a log entry); the rest are entries made by apus_node_log or a logging library.
public enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case stdout, trace, debug, info, warn, error

    public static func < (left: LogLevel, right: LogLevel) -> Bool {
        allCases.firstIndex(of: left)! < allCases.firstIndex(of: right)!
    }
}
