import ApusTransport
import Synchronization

public typealias Metadata = SampleMetadata
public typealias Parameter = ApusTransport.Parameter
public typealias ElementType = ApusTransport.ElementType

extension SampleMetadata {
    /// Metadata with user parameters, e.g. `Metadata(["seq": .int(7)])`; keys keep their order.
    public init(_ parameters: KeyValuePairs<String, Parameter>) {
        self.init(parameters: parameters.map { ($0.key, $0.value) })
    }
}

/// A plain value type that can travel as a typed array, tagged with its element type.
public protocol Element: BitwiseCopyable {
    static var elementType: ElementType { get }
}

extension UInt8: Element { public static var elementType: ElementType { .uint8 } }
extension UInt16: Element { public static var elementType: ElementType { .uint16 } }
extension UInt32: Element { public static var elementType: ElementType { .uint32 } }
extension UInt64: Element { public static var elementType: ElementType { .uint64 } }
extension Int8: Element { public static var elementType: ElementType { .int8 } }
extension Int16: Element { public static var elementType: ElementType { .int16 } }
extension Int32: Element { public static var elementType: ElementType { .int32 } }
extension Int64: Element { public static var elementType: ElementType { .int64 } }
extension Float16: Element { public static var elementType: ElementType { .float16 } }
extension Float: Element { public static var elementType: ElementType { .float32 } }
extension Double: Element { public static var elementType: ElementType { .float64 } }
extension Bool: Element { public static var elementType: ElementType { .bool } }

/// What a node receives.
public enum Event: @unchecked Sendable {
    /// A message on an input (timer ticks are inputs with an empty payload).
    case input(Input)
    /// The producer of this input finished; nothing more will arrive on it.
    case inputClosed(id: String)
    /// The dataflow is stopping: finish up and return.
    case stop
    /// A node feeding some of this node's inputs failed (they close next).
    case nodeFailed(NodeFailure)
    /// Something went wrong receiving; the node can carry on.
    case error(String)

    var isStop: Bool {
        if case .stop = self { true } else { false }
    }
}

public struct NodeFailure: Sendable, Equatable {
    /// The node that failed.
    public var node: String
    /// This node's inputs it was feeding.
    public var inputs: [String]
    /// What happened, e.g. "exited with status 1".
    public var message: String
}

/// One received message. Its payload is the producer's shared memory, mapped read-only: no copy
/// was made. It stays valid until `release()` or until the `Input` is gone, whichever comes first.
public final class Input: @unchecked Sendable {
    public let id: String
    /// The input's position in `Node.inputIDs`.
    public let index: Int
    public let metadata: Metadata
    private let payload: UnsafeRawBufferPointer
    private let sample: ReceivedSample?
    private let subscriber: Subscriber?
    private let released = Atomic<Bool>(false)

    init(id: String, index: Int, metadata: Metadata, sample: ReceivedSample?, subscriber: Subscriber?) {
        self.id = id
        self.index = index
        self.metadata = metadata
        self.sample = sample
        self.subscriber = subscriber
        self.payload = sample?.payload ?? UnsafeRawBufferPointer(start: nil, count: 0)
    }

    public var elementType: ElementType { metadata.elementType }
    public var shape: [UInt64] { metadata.shape }
    /// Monotonic nanoseconds at which the message was sent (from another machine: its send time
    /// through the machines' wall clocks, never later than its arrival here).
    public var timestamp: UInt64 { metadata.timestamp }
    /// Nanoseconds since the message was sent (its latency, when read on arrival).
    public var ageNanoseconds: UInt64 { monotonicNanoseconds() &- metadata.timestamp }
    public subscript(parameter key: String) -> Parameter? { metadata[key] }

    /// The payload in place (read-only shared memory), or empty once released.
    public var bytes: UnsafeRawBufferPointer {
        released.load(ordering: .acquiring) ? UnsafeRawBufferPointer(start: nil, count: 0) : payload
    }

    /// A copy of the payload as bytes.
    public var data: [UInt8] { Array(bytes) }

    /// The payload as text, when it was sent as `utf8`.
    public var string: String? {
        elementType == .utf8 ? String(decoding: bytes, as: UTF8.self) : nil
    }

    /// Reads the payload in place as elements of `type`; nil when it was sent with another element type.
    public func withElements<T: Element, Result>(
        of type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> Result
    ) rethrows -> Result? {
        guard elementType == T.elementType, bytes.count % MemoryLayout<T>.stride == 0 else { return nil }
        let bytes = self.bytes
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return try body(UnsafeBufferPointer(start: nil, count: 0)) }
        // Pool payloads are 64-byte aligned, so the memory can be bound in place.
        return try body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: T.self), count: bytes.count / MemoryLayout<T>.stride))
    }

    /// A copy of the payload as an array of `type`; nil when it was sent with another element type.
    public func array<T: Element>(of type: T.Type = T.self) -> [T]? {
        withElements(of: type) { Array($0) }
    }

    /// Gives the sample back to its producer's pool; the payload is unusable afterwards.
    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let sample, let subscriber { subscriber.release(sample) }
    }

    deinit { release() }
}
