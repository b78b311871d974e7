// Requests on a run's inspection socket (see `RunInspection`): snapshots for `apus top`,
// inspectors' consumers (`apus topic`), and nodes added and removed (`apus node`).
import ApusDataflow
import ApusTransport
import Foundation
import Glibc

extension Supervisor {
    /// Answers a client of the inspection socket (see `RunInspection`).
    func serveInspection() {
        guard let inspection, let (client, verb, body) = inspection.accept() else { return }
        let result: Result<String, SupervisorError>
        switch verb {
        case RunInspection.snapshotVerb:
            if let json = try? JSONEncoder().encode(snapshot()) { try? client.send([UInt8](json)) }
            return
        case "attach":
            result = Result { () throws(SupervisorError) in
                let request = try decode(AttachRequest.self, body)
                return try attachInspector(request, channel: client).id
            }
        case "add":
            result = Result { () throws(SupervisorError) in try addNode(try decode(AddNodeRequest.self, body)).id }
        case "remove":
            result = Result { () throws(SupervisorError) in
                let id = String(decoding: body, as: UTF8.self)
                try remove(id)
                return id
            }
        default:
            result = .failure(SupervisorError("unknown request '\(verb.prefix(40))'"))
        }
        switch result {
        case .success(let text): inspection.answer(client, ok: true, text)
        case .failure(let error): inspection.answer(client, ok: false, error.description)
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8]) throws(SupervisorError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw SupervisorError("a malformed request: \(error)")
        }
    }

    /// An inspector's consumer joins, on the connection it asked on.
    func attachInspector(_ request: AttachRequest, channel: ControlChannel) throws(SupervisorError) -> NodeRuntime {
        guard !request.sources.isEmpty, request.sources.count <= 256 else {
            throw SupervisorError("an inspector takes 1 to 256 outputs, not \(request.sources.count)")
        }
        guard (1...InputDescriptor.maxQueueSize).contains(request.queueSize) else {
            throw SupervisorError("queue size \(request.queueSize) is out of range (1 to \(InputDescriptor.maxQueueSize))")
        }
        var inputs: [InputDescriptor] = []
        for source in request.sources {
            let parts = source.split(separator: "/", maxSplits: 1).map(String.init)
            let outputs = nodes.filter { $0.origin != .attached && $0.state != .finished }.flatMap { node in
                node.plan.descriptor.outputs.map { "\(node.id)/\($0)" }
            }
            guard parts.count == 2, outputs.contains(source) else {
                throw SupervisorError(
                    "the running dataflow has no output '\(source)'"
                        + (outputs.isEmpty ? " (no running node has outputs)" : " (outputs: \(outputs.joined(separator: ", ")))"))
            }
            inputs.append(
                InputDescriptor(
                    id: source, source: .output(node: parts[0], output: parts[1]), queueSize: request.queueSize,
                    queuePolicy: request.backpressure == true ? .backpressure : .dropOldest))
        }
        let stem = request.name.filter { $0.isLetter || $0.isNumber || $0 == "-" }.prefix(40)
        var number = 1
        while nodes.contains(where: { $0.id == "\(stem)-\(number)" }) { number += 1 }
        let descriptor = NodeDescriptor(id: "\(stem)-\(number)", path: "", resolvedPath: "", inputs: inputs)
        return try join(descriptor, origin: .attached, channel: channel)
    }

    /// `apus node add`: the node file is checked as `apus check` checks a dataflow's nodes.
    func addNode(_ request: AddNodeRequest) throws(SupervisorError) -> NodeRuntime {
        let running = nodes.filter { $0.origin != .attached && ($0.state != .finished || $0.origin == .planned) }
        let descriptor: NodeDescriptor
        do {
            descriptor = try DataflowLoader().parseJoiningNode(
                yaml: request.yaml, file: request.file, directory: request.directory, running: running.map(\.plan.descriptor))
        } catch {
            throw SupervisorError(error.description)
        }
        guard !descriptor.isRuntime else {
            throw SupervisorError("\(request.file): node '\(descriptor.id)' hosts operators; a node that joins runs a program")
        }
        if descriptor.usesPython, pythonPath == nil { preparePython(always: true) }  // the first Python node of the run
        return try join(descriptor, origin: .added)
    }
}
