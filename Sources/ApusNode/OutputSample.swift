import ApusTransport

/// A sample reserved in shared memory by `Node.allocate`: fill `buffer`, then `Node.send` it.
public struct OutputSample<T: Element>: ~Copyable {
    let node: Node
    let output: Int
    private var reserved: ReservedSample?
    /// The payload, writable until the sample is sent.
    public let buffer: UnsafeMutableBufferPointer<T>
    /// The payload's length in bytes, as reserved.
    public let byteCount: Int

    init(node: Node, output: Int, reserved: consuming ReservedSample, buffer: UnsafeMutableRawBufferPointer) {
        self.node = node
        self.output = output
        self.reserved = .some(reserved)
        self.byteCount = buffer.count
        self.buffer = UnsafeMutableBufferPointer(
            start: buffer.baseAddress?.assumingMemoryBound(to: T.self), count: buffer.count / MemoryLayout<T>.stride)
    }

    /// The reserved slot, once: sending takes it.
    mutating func take() -> ReservedSample? {
        reserved.take()
    }

    deinit {
        if let reserved = consume reserved { node.discard(reserved) }
    }
}
