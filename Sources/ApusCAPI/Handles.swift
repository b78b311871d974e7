// Handles given to C: checked on every use, so a stale or foreign handle is refused, never dereferenced.
import Synchronization

/// What a handle stands for. It is part of the handle's bits, so a handle of one kind passed
/// where another is expected is refused.
enum HandleKind: UInt64 {
    case node = 1
    case event, sample, metadata, allocator

    var name: String {
        switch self {
        case .node: "node"
        case .event: "event"
        case .sample: "sample"
        case .metadata: "metadata"
        case .allocator: "allocator"
        }
    }
}

/// The objects behind the handles given to C. A handle is not a pointer: it packs a kind (3 bits),
/// the generation of its slot (29 bits) and the slot's index (32 bits). Freeing a handle bumps its
/// slot's generation, so the handle no longer matches: a double free or a use after free is
/// reported as an error instead of touching freed memory.
///
/// Lookups take no lock: slots live in chunks that are never moved or freed, and a slot changes
/// only when its own handle is created or freed, which the API's threading rules order before
/// any use of that handle.
final class HandleTable: @unchecked Sendable {
    static let shared = HandleTable()

    private static let chunkShift = 10
    private static let chunkSize = 1 << chunkShift
    private static let chunkCount = 4096
    private static let generationMask: UInt64 = (1 << 29) - 1

    private struct Slot {
        var generation: UInt32
        var object: Unmanaged<AnyObject>?
    }

    private let chunks: UnsafeMutablePointer<UnsafeMutablePointer<Slot>?>
    /// Slot indices free for reuse, and the number of slots ever handed out.
    private let allocation = Mutex<(free: [UInt32], used: Int)>(([], 0))

    private init() {
        chunks = .allocate(capacity: Self.chunkCount)
        chunks.initialize(repeating: nil, count: Self.chunkCount)
    }

    enum LookupFailure: Error {
        case null
        case stale
    }

    /// Registers `object` and returns its handle, or nil when four million handles are live.
    func insert(_ object: AnyObject, kind: HandleKind) -> OpaquePointer? {
        let index: UInt32? = allocation.withLock { state in
            if let index = state.free.popLast() { return index }
            guard state.used < Self.chunkSize * Self.chunkCount else { return nil }
            let index = state.used
            let chunk = index >> Self.chunkShift
            if chunks[chunk] == nil {
                let slots = UnsafeMutablePointer<Slot>.allocate(capacity: Self.chunkSize)
                slots.initialize(repeating: Slot(generation: 0, object: nil), count: Self.chunkSize)
                chunks[chunk] = slots
            }
            state.used += 1
            return UInt32(index)
        }
        guard let index else { return nil }
        let slot = slotPointer(Int(index))
        var generation = (UInt64(slot.pointee.generation) &+ 1) & Self.generationMask
        if generation == 0 { generation = 1 }
        slot.pointee.generation = UInt32(generation)
        slot.pointee.object = Unmanaged.passRetained(object)
        return OpaquePointer(bitPattern: UInt(kind.rawValue << 61 | generation << 32 | UInt64(index)))
    }

    /// The live object behind `handle`, if it is one of `kind`.
    func object(_ handle: OpaquePointer?, kind: HandleKind) -> Result<AnyObject, LookupFailure> {
        guard let handle else { return .failure(.null) }
        guard let slot = liveSlot(handle, kind: kind), let object = slot.pointee.object else { return .failure(.stale) }
        return .success(object.takeUnretainedValue())
    }

    /// Frees `handle`: its object is released and the handle stops matching its slot.
    func remove(_ handle: OpaquePointer?, kind: HandleKind) -> Result<AnyObject, LookupFailure> {
        guard let handle else { return .failure(.null) }
        guard let slot = liveSlot(handle, kind: kind), let object = slot.pointee.object else { return .failure(.stale) }
        slot.pointee.object = nil
        let index = UInt32(truncatingIfNeeded: UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle))))
        allocation.withLock { $0.free.append(index) }
        return .success(object.takeRetainedValue())
    }

    private func liveSlot(_ handle: OpaquePointer, kind: HandleKind) -> UnsafeMutablePointer<Slot>? {
        let bits = UInt64(UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle))))
        guard bits >> 61 == kind.rawValue else { return nil }
        let index = Int(bits & 0xFFFF_FFFF)
        let chunk = index >> Self.chunkShift
        guard chunk < Self.chunkCount, let slots = chunks[chunk] else { return nil }
        let slot = slots + (index & (Self.chunkSize - 1))
        guard UInt64(slot.pointee.generation) == (bits >> 32) & Self.generationMask else { return nil }
        return slot
    }

    private func slotPointer(_ index: Int) -> UnsafeMutablePointer<Slot> {
        chunks[index >> Self.chunkShift]! + (index & (Self.chunkSize - 1))
    }
}
