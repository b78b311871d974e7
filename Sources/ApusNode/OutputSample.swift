import ApusTransport

/// A sample reserved in shared memory by `Node.allocate`: fill `buffer`, then `Node.send` it.
public struct OutputSample<T: Element>: ~Copyable {
    let node: Node
    let output: Int
    private var reserved: ReservedSample?
    /// The payload, writable until the sample is sent.
    public private(set) var buffer: UnsafeMutableBufferPointer<T>
    /// The payload's length in bytes: as reserved, or as `resize` made it.
    public private(set) var byteCount: Int

    init(node: Node, output: Int, reserved: consuming ReservedSample, buffer: UnsafeMutableRawBufferPointer) {
        self.node = node
        self.output = output
        self.reserved = .some(reserved)
        self.byteCount = buffer.count
        self.buffer = UnsafeMutableBufferPointer(
            start: buffer.baseAddress?.assumingMemoryBound(to: T.self), count: buffer.count / MemoryLayout<T>.stride)
    }

    /// The most bytes this sample can hold without moving: its slot's capacity.
    public var capacity: Int {
        switch reserved {
        case .some(let held): node.sendLock.locked { node.publisher.capacity(of: held) }
        case .none: 0
        }
    }

    /// Makes the payload `byteCount` bytes long, in place (up to `capacity`); false if it cannot.
    public mutating func resize(to byteCount: Int) -> Bool {
        guard var taken = reserved.take() else { return false }
        let resized = node.sendLock.locked { node.publisher.resize(&taken, to: byteCount) }
        if resized {
            self.byteCount = byteCount
            buffer = UnsafeMutableBufferPointer(start: buffer.baseAddress, count: byteCount / MemoryLayout<T>.stride)
        }
        reserved = .some(taken)
        return resized
    }

    /// The reserved slot, once: sending takes it.
    mutating func take() -> ReservedSample? {
        reserved.take()
    }

    deinit {
        if let reserved = consume reserved { node.discard(reserved) }
    }
}
