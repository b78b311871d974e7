// Sending: copies and zero-copy samples, closing outputs, and what checks every send.
import ApusTransport
import CApusSys
import Dispatch
import Glibc

extension Node {
    /// Sends a copy of `bytes` on `output` (one copy, into shared memory). The length must be a
    /// whole number of `metadata.elementType` elements, and match `metadata.shape` if one is set.
    public func send(_ output: String, _ bytes: UnsafeRawBufferPointer, metadata: Metadata = Metadata()) throws(NodeError) {
        try send(output: try outputIndex(output), bytes, metadata: metadata)
    }

    /// Sends `values` as a typed array: the receiver sees their element type (and `metadata.shape`).
    public func send<T: Element>(_ output: String, _ values: [T], metadata: Metadata = Metadata()) throws(NodeError) {
        var metadata = metadata
        metadata.elementType = T.elementType
        let index = try outputIndex(output)
        try values.withUnsafeBytes { bytes in
            Result { () throws(NodeError) in try send(output: index, bytes, metadata: metadata) }
        }.get()
    }

    /// Sends `text` as `utf8`.
    public func send(_ output: String, _ text: String, metadata: Metadata = Metadata()) throws(NodeError) {
        var metadata = metadata
        metadata.elementType = .utf8
        var text = text
        let index = try outputIndex(output)
        try text.withUTF8 { utf8 in
            Result { () throws(NodeError) in try send(output: index, UnsafeRawBufferPointer(utf8), metadata: metadata) }
        }.get()
    }

    /// Sends a copy of `bytes` on the output at `index` in `outputIDs`, with `metadata` as given.
    @_spi(CAPI) public func send(output index: Int, _ bytes: UnsafeRawBufferPointer, metadata: Metadata) throws(NodeError) {
        try validate(length: bytes.count, metadata)
        try contracts?.check(output: index, name: outputIDs[index], metadata)
        try sendLocked(output: index) { () throws(TransportError) in
            try publishing(output: index, bytes, metadata) { () throws(TransportError) in
                _ = try publisher.send(bytes, output: index, metadata: metadata)
            }
        }
    }

    /// Runs `publish` and, when the output is read on other machines, writes what it published
    /// to the output's topic (also when `publish` failed after queuing it for the bridge-out).
    /// Under the send lock: messages go to the topic in the order of their numbers.
    @inline(__always)
    func publishing(
        output index: Int, _ payload: UnsafeRawBufferPointer, _ metadata: Metadata, _ publish: () throws(TransportError) -> Void
    ) throws(TransportError) {
        guard let remote, remote.outputs[index] != nil else { return try publish() }
        // The bridge-out is woken (when it is due) once the message is on its way: woken first,
        // it could take this CPU before the write.
        defer { publisher.ringDeferred(output: index) }
        guard let position = remote.position(index) else { return try publish() }
        var failure: TransportError?
        do throws(TransportError) { try publish() } catch { failure = error }
        remote.write(output: index, position: position, payload: payload, metadata: metadata)
        if let failure { throw failure }
    }

    /// `send(output:_:metadata:)` only if it will not wait: false, having sent nothing, when
    /// a consumer's queue under backpressure is full, no slot is free, another thread is sending,
    /// or control messages are pending. For a thread that must never wait, such as Cyclone's
    /// receive thread in the stand-in of a remote node; the caller sends what is left with `send`.
    @_spi(Bridge) public func sendWithoutWaiting(output index: Int, _ bytes: UnsafeRawBufferPointer, metadata: Metadata)
        throws(NodeError) -> Bool
    {
        try validate(length: bytes.count, metadata)
        try contracts?.check(output: index, name: outputIDs[index], metadata)
        guard !subscriber.controlPending else { return false }
        let outcome = sendLock.lockedIfFree { () -> Result<Bool, NodeError> in
            guard !closedOutputs[index] else { return .failure(.outputClosed(outputIDs[index])) }
            do throws(TransportError) {
                return .success(try publisher.sendWithoutWaiting(bytes, output: index, metadata: metadata) != nil)
            } catch {
                return .failure(.transport(error))
            }
        }
        return try (outcome ?? .success(false)).get()
    }

    /// Reserves a sample of `count` elements of `type` in shared memory, to fill in place and `send`
    /// without a copy. A sample that is never sent returns to the pool when it is dropped.
    public func allocate<T: Element>(output: String, count: Int, of type: T.Type = UInt8.self) throws(NodeError) -> OutputSample<T> {
        let index = try outputIndex(output)
        let (length, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard count >= 0, !overflow else { throw .transport(.sampleTooLarge(length: Int.max, maximum: setup.maxSampleSize)) }
        return try allocate(output: index, byteCount: length)
    }

    /// Reserves `byteCount` bytes for a sample on the output at `index` in `outputIDs`.
    @_spi(CAPI) public func allocate<T: Element>(output index: Int, byteCount: Int) throws(NodeError) -> OutputSample<T> {
        let reserved = try sendLocked(output: index) { () throws(TransportError) in try publisher.allocate(byteCount) }
        let buffer = publisher.payload(reserved)
        return OutputSample(node: self, output: index, reserved: reserved, buffer: buffer)
    }

    /// Sends a sample made by `allocate`. `metadata.elementType` is set from the sample's type.
    public func send<T: Element>(_ sample: consuming OutputSample<T>, metadata: Metadata = Metadata()) throws(NodeError) {
        var metadata = metadata
        metadata.elementType = T.elementType
        try send(sample, as: metadata)
    }

    /// Sends a sample made by `allocate` with `metadata` as given, its element type included.
    @_spi(CAPI) public func send<T: Element>(_ sample: consuming OutputSample<T>, as metadata: Metadata) throws(NodeError) {
        let output = sample.output
        let length = sample.byteCount
        let payload = UnsafeRawBufferPointer(start: sample.buffer.baseAddress, count: length)
        var reserved = sample.take()
        do {
            try validate(length: length, metadata)
            try contracts?.check(output: output, name: outputIDs[output], metadata)
            // publish gives the sample back on its own errors; a closed output leaves it here.
            try sendLocked(output: output) { () throws(TransportError) in
                guard let taken = reserved.take() else { return }
                var held = Optional.some(taken)
                try publishing(output: output, payload, metadata) { () throws(TransportError) in
                    if let taken = held.take() { _ = try publisher.publish(taken, output: output, metadata: metadata) }
                }
            }
        } catch {
            if let left = reserved.take() { discard(left) }
            throw error
        }
    }

    func discard(_ reserved: consuming ReservedSample) {
        var held = Optional.some(reserved)
        sendLock.locked { if let taken = held.take() { publisher.discard(taken) } }
    }

    /// Tells this output's consumers that nothing more will come (they get INPUT_CLOSED).
    public func closeOutput(_ output: String) throws(NodeError) {
        let index = try outputIndex(output)
        let first = sendLock.locked {
            defer { closedOutputs[index] = true }
            return !closedOutputs[index]
        }
        guard first else { return }
        // What went to other machines is acknowledged before they are told the output closed.
        remote?.flush(index, timeoutNanoseconds: 5_000_000_000)
        do {
            try controlLock.locked { () throws(TransportError) in try channel.send(.closeOutput(index)) }
        } catch {
            throw error == .disconnected ? .daemonGone : .transport(error)
        }
    }

    /// Asks the coordinator to stop the whole dataflow (what an operator's STOP_ALL does).
    @_spi(CAPI) public func stopDataflow(reason: String) throws(NodeError) {
        do {
            try controlLock.locked { () throws(TransportError) in try channel.send(.stopDataflow(reason: reason)) }
        } catch {
            throw error == .disconnected ? .daemonGone : .transport(error)
        }
    }

    func outputIndex(_ output: String) throws(NodeError) -> Int {
        guard let index = outputIDs.firstIndex(of: output) else { throw .unknownOutput(output, declared: outputIDs) }
        return index
    }

    /// The index in `outputIDs` of the output named by a NUL-terminated UTF-8 string, without
    /// making a String of it.
    @_spi(CAPI) public func outputIndex(cString name: UnsafePointer<CChar>) throws(NodeError) -> Int {
        try outputIndex(utf8: UnsafeRawBufferPointer(start: name, count: strlen(name)))
    }

    /// The index in `outputIDs` of the output named by these UTF-8 bytes.
    @_spi(CAPI) public func outputIndex(utf8 name: UnsafeRawBufferPointer) throws(NodeError) -> Int {
        for (index, id) in outputIDs.enumerated() {
            var id = id
            let equal = id.withUTF8 { utf8 in
                utf8.count == name.count && (name.isEmpty || memcmp(utf8.baseAddress!, name.baseAddress!, name.count) == 0)
            }
            if equal { return index }
        }
        throw .unknownOutput(String(decoding: name, as: UTF8.self), declared: outputIDs)
    }

    /// The payload must be whole elements of the metadata's type, and as many as its shape says.
    func validate(length: Int, _ metadata: Metadata) throws(NodeError) {
        let width = metadata.elementType.byteWidth
        guard length % width == 0 else { throw .lengthMismatch(length: length, elementType: metadata.elementType) }
        guard !metadata.shape.isEmpty else { return }
        var elements: UInt64 = 1
        for dimension in metadata.shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw .shapeMismatch(shape: metadata.shape, length: length, elementType: metadata.elementType) }
            elements = product
        }
        guard elements == UInt64(length / width) else {
            throw .shapeMismatch(shape: metadata.shape, length: length, elementType: metadata.elementType)
        }
    }

    func sendLocked<Result: ~Copyable>(output: Int, _ body: () throws(TransportError) -> Result) throws(NodeError) -> Result {
        beatIfDue()
        // Control first, outside the send lock: a restarted consumer may have replaced an edge.
        if subscriber.controlPending { drainControlForReceiver() }
        return try sendLock.locked { () throws(NodeError) -> Result in
            guard !closedOutputs[output] else { throw .outputClosed(outputIDs[output]) }
            do throws(TransportError) {
                return try body()
            } catch {
                throw .transport(error)
            }
        }
    }
}
