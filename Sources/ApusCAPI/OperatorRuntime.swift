// The operator runtime: the program of a runtime node. It joins the dataflow as one node, loads
// the node's operators, and hands each event of an operator's inputs to that operator.
//
// Threads: operators that feed one another (one's output is another's input) form a group and
// share a thread, since a message between them then needs no hand-off; groups with no edge between
// them run on threads of their own, so a slow operator never delays the events of another group.
// A Python operator is a group of its own: a busy one holds the GIL, and no other operator waits.
// With one group, the receiving thread runs it: no hand-off at all.
@_spi(CAPI) import ApusNode
import ApusTransport
import CApusHeader
import CApusSys
import Glibc
import Synchronization

@c @implementation
public func apus_operator_runtime_main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    OperatorRuntime.main()
}

/// One operator in the runtime: its instance and what is known of it.
final class HostedOperator: @unchecked Sendable {
    let name: String
    let view: CNode
    let handle: OpaquePointer
    let instance: OperatorInstance
    let group: Int
    /// Per node input index that is this operator's, the line a crash while handling it prints.
    var crashLines: [Int: UnsafeMutablePointer<CChar>] = [:]
    let otherCrashLine: UnsafeMutablePointer<CChar>
    /// Set once it stopped, failed, or was dropped: it gets no more events.
    var done = false
    /// From its spec: "never", "on-failure" or "always", at most `maxRestarts` times (0: no limit).
    var restartPolicy = "never"
    var maxRestarts: UInt64 = 0
    var restarts: UInt64 = 0

    /// Whether an instance that ended this way (failed, or asked to stop) is replaced.
    func restarts(afterFailure failed: Bool) -> Bool {
        (restartPolicy == "always" || (restartPolicy == "on-failure" && failed)) && (maxRestarts == 0 || restarts < maxRestarts)
    }

    init(name: String, view: CNode, handle: OpaquePointer, instance: OperatorInstance, group: Int, inputs: [Int]) {
        self.name = name
        self.view = view
        self.handle = handle
        self.instance = instance
        self.group = group
        let node = view.node.id
        for input in inputs {
            crashLines[input] = strdup(
                "apus: operator '\(name)' of node '\(node)' crashed while handling input '\(String(cString: view.eventIDs[input]))'\n")
        }
        otherCrashLine = strdup("apus: operator '\(name)' of node '\(node)' crashed\n")
    }
}

/// The events of one group of operators, handed from the receiving thread to the group's thread.
final class GroupQueue: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var items: [(HostedOperator, Event)] = []
    private var head = 0
    private var closed = false

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    func push(_ target: HostedOperator, _ event: Event) {
        pthread_mutex_lock(&mutex)
        items.append((target, event))
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    func close() {
        pthread_mutex_lock(&mutex)
        closed = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// The next item; nil once closed and empty.
    func pop() -> (HostedOperator, Event)? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while head == items.count {
            if closed { return nil }
            items.removeAll(keepingCapacity: true)
            head = 0
            pthread_cond_wait(&condition, &mutex)
        }
        defer { head += 1 }
        return items[head]
    }
}

enum OperatorRuntime {
    static func main() -> Int32 {
        guard let text = getenv(OperatorSpec.environmentName).map({ String(cString: $0) }), let specs = OperatorSpec.decode(text),
            !specs.isEmpty
        else {
            writeLine(
                2,
                "apus-operator-runtime: runs the operators of a runtime node; `apus run` starts it (\(OperatorSpec.environmentName) is not set)"
            )
            return 2
        }
        let qualified = getenv("APUS_OPERATOR_QUALIFIED").map { String(cString: $0) } != "0"
        apussys_install_crash_report()
        // The operators load before the node says it is ready, so timers start once they have.
        var runtime: Runtime?
        do {
            _ = try Node(beforeStart: { node in runtime = Runtime(node: node, specs: specs, qualified: qualified) })
        } catch {
            writeLine(2, "apus-operator-runtime: \(error)")
            return 1
        }
        return runtime!.run()
    }
}

/// One run of the runtime: the operators, their groups and threads, and the receiving loop.
final class Runtime: @unchecked Sendable {
    let node: Node
    var operators: [HostedOperator] = []
    /// Per node input, its operator (an index into `operators`), if one loaded.
    var owners: [Int?]
    var queues: [GroupQueue] = []
    var threads: [pthread_t] = []
    let failures = Mutex(0)
    /// Per operator, its inputs fed by a node (timers never close) that are still open: once all
    /// have closed it gets STOP, as a node does, and its outputs close in turn.
    var openInputs: [Set<Int>] = []

    init(node: Node, specs: [OperatorSpec], qualified: Bool) {
        self.node = node
        owners = Array(repeating: nil, count: node.inputIDs.count)
        func belongs(_ id: String, to name: String) -> Bool { !qualified || id.hasPrefix("\(name)/") }
        func local(_ id: String) -> String {
            guard qualified, let slash = id.firstIndex(of: "/") else { return id }
            return String(id[id.index(after: slash)...])
        }
        // Groups: operators joined by an edge inside this node (union-find over the operators). A
        // Python operator has a thread of its own: while it runs Python, nothing else waits for it.
        var parent = Array(specs.indices)
        func root(_ index: Int) -> Int { parent[index] == index ? index : root(parent[index]) }
        for (consumer, spec) in specs.enumerated() where spec.kind != "python" {
            for (input, source) in node.inputSources.enumerated() where belongs(node.inputIDs[input], to: spec.id) {
                guard source.hasPrefix("\(node.id)/") else { continue }
                let output = String(source.dropFirst(node.id.count + 1))
                if let producer = specs.indices.first(where: { belongs(output, to: specs[$0].id) }), specs[producer].kind != "python" {
                    parent[root(consumer)] = root(producer)
                }
            }
        }
        let roots = Array(Set(specs.indices.map(root))).sorted()
        for (index, spec) in specs.enumerated() {
            let inputs = node.inputIDs.indices.filter { belongs(node.inputIDs[$0], to: spec.id) }
            let outputs = node.outputIDs.indices.filter { belongs(node.outputIDs[$0], to: spec.id) }
            let view = CNode(operator: spec.id, of: node, inputs: inputs, outputs: outputs, local: local)
            guard let handle = HandleTable.shared.insert(view, kind: .node) else { continue }
            do throws(OperatorLoadError) {
                let instance: OperatorInstance
                switch spec.kind {
                case "shared-library":
                    instance = try loadSharedLibraryOperator(path: spec.location, view: view, handle: handle)
                case "wasm":
                    instance = try WasmOperator(
                        path: spec.location, view: view, fuelPerEvent: spec.fuelPerEvent, memoryLimit: spec.memoryLimit)
                case "python":
                    instance = try PythonOperator(path: spec.location, id: spec.id, view: view, handle: handle)
                case "numba":
                    instance = try NumbaOperator(
                        path: spec.location, function: spec.function, id: spec.id, parameters: spec.parameters.map { ($0.name, $0.value) },
                        view: view)
                default:
                    throw OperatorLoadError(description: "operator kind '\(spec.kind)' is not one this runtime runs")
                }
                let hosted = HostedOperator(
                    name: spec.id, view: view, handle: handle, instance: instance, group: roots.firstIndex(of: root(index))!, inputs: inputs
                )
                hosted.restartPolicy = spec.restartPolicy
                hosted.maxRestarts = spec.maxRestarts
                for input in inputs { owners[input] = operators.count }
                operators.append(hosted)
                openInputs.append(Set(inputs.filter { !node.inputSources[$0].hasPrefix("apus/timer/") }))
            } catch {
                writeLine(2, "apus: operator '\(spec.id)' of node '\(node.id)': \(error)")
                failures.withLock { $0 += 1 }
                _ = HandleTable.shared.remove(handle, kind: .node)
                closeOutputs(outputs)
            }
        }
    }

    func run() -> Int32 {
        let groups = Set(operators.map(\.group)).count
        if groups > 1 {
            queues = (0..<groups).map { _ in GroupQueue() }
            for group in 0..<groups { threads.append(startThread(for: queues[group], members: operators.filter { $0.group == group })) }
        }
        receive()
        for queue in queues { queue.close() }
        for thread in threads { pthread_join(thread, nil) }
        if queues.isEmpty {
            for hosted in operators where !hosted.done { finish(hosted) }
        }
        return failures.withLock { $0 } > 0 ? 1 : 0
    }

    /// Reads the node's events and hands each to its operator, until STOP or all operators ended.
    func receive() {
        while !operators.isEmpty, operators.contains(where: { !$0.done }) || !queues.isEmpty {
            let event: Event?
            do {
                event = try node.next()
            } catch {
                writeLine(2, "apus: node '\(node.id)': \(error)")
                failures.withLock { $0 += 1 }
                return
            }
            guard let event else { return }
            switch event {
            case .input(let input):
                if let owner = owners[input.index] { dispatch(operators[owner], event) }
            case .inputClosed(let id):
                guard let index = node.inputIDs.firstIndex(of: id), let owner = owners[index] else { break }
                dispatch(operators[owner], event)
                if openInputs[owner].remove(index) != nil, openInputs[owner].isEmpty { dispatch(operators[owner], .stop) }
            case .nodeFailed(let failure):
                let affected = Set(failure.inputs.compactMap { id in node.inputIDs.firstIndex(of: id).flatMap { owners[$0] } })
                for owner in affected.sorted() { dispatch(operators[owner], event) }
            case .error:
                for hosted in operators { dispatch(hosted, event) }
            case .stop:
                for hosted in operators { dispatch(hosted, event) }  // those that ended already let it pass
                return
            }
            if queues.isEmpty, operators.allSatisfy(\.done) { return }
        }
    }

    func dispatch(_ hosted: HostedOperator, _ event: Event) {
        if queues.isEmpty {
            handle(hosted, event)
        } else {
            queues[hosted.group].push(hosted, event)
        }
    }

    /// Runs one event through its operator, on the operator's thread.
    func handle(_ hosted: HostedOperator, _ event: Event) {
        guard !hosted.done else { return }
        if case .input(let input) = event {
            apussys_set_crash_context(hosted.crashLines[input.index] ?? hosted.otherCrashLine)
        } else {
            apussys_set_crash_context(hosted.otherCrashLine)
        }
        let outcome = hosted.instance.handle(event)
        apussys_set_crash_context(nil)
        switch outcome {
        case .proceed:
            if case .stop = event { finish(hosted) }
        case .stop:
            if case .stop = event { finish(hosted) } else if !restart(hosted, failed: false) { finish(hosted) }
        case .stopAll:
            finish(hosted)
            let reason = "operator '\(hosted.name)' asked to stop the dataflow (STOP_ALL)"
            do {
                try node.stopDataflow(reason: reason)
            } catch {
                writeLine(2, "apus: \(reason), but the coordinator cannot be told: \(error)")
            }
        case .failed(let message):
            writeLine(2, "apus: operator '\(hosted.name)' of node '\(node.id)' failed: \(message)")
            if !restart(hosted, failed: true) {
                failures.withLock { $0 += 1 }
                finish(hosted)
            }
        }
    }

    /// Replaces the operator's instance if its restart_policy says so; false if it stays ended.
    func restart(_ hosted: HostedOperator, failed: Bool) -> Bool {
        guard hosted.restarts(afterFailure: failed) else { return false }
        hosted.restarts += 1
        do {
            try hosted.instance.restart()
        } catch {
            writeLine(2, "apus: operator '\(hosted.name)' of node '\(node.id)' cannot be restarted: \(error)")
            return false
        }
        let limit = hosted.maxRestarts > 0 ? " of \(hosted.maxRestarts)" : ""
        writeLine(2, "apus: operator '\(hosted.name)' of node '\(node.id)' restarted with a fresh instance (\(hosted.restarts)\(limit))")
        return true
    }

    /// The operator gets no more events: it is dropped, its library unloaded, its outputs closed.
    func finish(_ hosted: HostedOperator) {
        guard !hosted.done else { return }
        hosted.done = true
        apussys_set_crash_context(hosted.otherCrashLine)
        hosted.instance.drop()
        apussys_set_crash_context(nil)
        closeOutputs(hosted.view.outputIndices ?? [])
        hosted.view.releaseAllocators()
        _ = HandleTable.shared.remove(hosted.handle, kind: .node)
    }

    func closeOutputs(_ outputs: [Int]) {
        for output in outputs { try? node.closeOutput(node.outputIDs[output]) }
    }

    /// The thread of one group: handles what the receiving thread hands it, then drops its operators.
    func startThread(for queue: GroupQueue, members: [HostedOperator]) -> pthread_t {
        let context = Unmanaged.passRetained(ThreadContext(runtime: self, queue: queue, members: members)).toOpaque()
        var thread = pthread_t()
        pthread_create(
            &thread, nil,
            { raw in
                let context = Unmanaged<ThreadContext>.fromOpaque(raw!).takeRetainedValue()
                while let (hosted, event) = context.queue.pop() { context.runtime.handle(hosted, event) }
                for hosted in context.members where !hosted.done { context.runtime.finish(hosted) }
                return nil
            }, context)
        return thread
    }
}

final class ThreadContext {
    let runtime: Runtime
    let queue: GroupQueue
    let members: [HostedOperator]

    init(runtime: Runtime, queue: GroupQueue, members: [HostedOperator]) {
        self.runtime = runtime
        self.queue = queue
        self.members = members
    }
}
