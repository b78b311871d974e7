// apus_allocator_t: blocks of shared memory that are samples of an output, for C code that
// allocates through its caller's allocator. Blocks are known by address, in their node's table:
// free needs no size, and a pointer from anywhere else is refused, never freed.
@_spi(CAPI) import ApusNode
import CApusHeader
import Glibc
import Synchronization

/// A reserved sample handed out as a block, until it is sent or freed.
final class AllocatedBlock: @unchecked Sendable {
    let output: Int
    var sample: OutputSample<UInt8>?

    init(output: Int, sample: consuming OutputSample<UInt8>) {
        self.output = output
        self.sample = consume sample
    }
}

/// What an allocator's ctx stands for: a node (or operator view) and one of its outputs.
final class CAllocator {
    let owner: CNode
    let output: Int

    init(owner: CNode, output: Int) {
        self.owner = owner
        self.output = output
    }
}

/// The largest alignment a block has: pool payloads start on 64-byte boundaries.
private let blockAlignment = 64

extension CNode {
    /// Frees the allocators' handles and returns unsent blocks to their pools.
    func releaseAllocators() {
        for bits in allocators.withLock({ $0.values }) { _ = HandleTable.shared.remove(OpaquePointer(bitPattern: bits), kind: .allocator) }
        allocators.withLock { $0 = [:] }
        let left = blocks.withLock { table in
            defer { table = [:] }
            return Array(table.values)
        }
        for block in left { block.sample = nil }
    }

    /// A new block of `size` bytes of `output`'s samples.
    func allocateBlock(output: Int, size: Int, alignment: Int) throws(APIError) -> UnsafeMutableRawPointer {
        guard alignment >= 0, alignment <= blockAlignment, alignment & (alignment &- 1) == 0 else {
            throw .invalidArgument("alignment \(alignment) is not 0 or a power of two up to \(blockAlignment)")
        }
        let size = try requireLength(size, "size")
        var sample: OutputSample<UInt8> = try nodeCall { () throws(NodeError) in try node.allocate(output: output, byteCount: max(size, 1))
        }
        _ = sample.resize(to: size)
        guard let address = UnsafeMutableRawPointer(sample.buffer.baseAddress) else {
            throw APIError(APUS_ERROR_TRANSPORT, "the sample has no payload address")
        }
        let block = AllocatedBlock(output: output, sample: sample)
        blocks.withLock { $0[UInt(bitPattern: address)] = block }
        return address
    }

    /// Takes the live block at `pointer` out of the table; refused when it is not one.
    func takeBlock(_ pointer: UnsafeMutableRawPointer?, output: Int?) throws(APIError) -> AllocatedBlock {
        let key = UInt(bitPattern: pointer)
        let block = blocks.withLock { table -> AllocatedBlock? in
            guard let block = table[key], output == nil || block.output == output else { return nil }
            return table.removeValue(forKey: key)
        }
        guard let block else {
            let known = blocks.withLock { $0[key] }
            if let known, let output {
                throw .invalidArgument(
                    "the block was allocated for output '\(node.outputIDs[known.output])', not '\(node.outputIDs[output])'")
            }
            throw .invalidArgument(
                "\(pointer == nil ? "NULL" : "the pointer") is not a live block of this allocator (from elsewhere, freed, or sent)")
        }
        return block
    }
}

private func allocator(_ ctx: UnsafeMutableRawPointer?) throws(APIError) -> CAllocator {
    try resolve(OpaquePointer(ctx), .allocator, as: CAllocator.self)
}

private let allocateFunction: @convention(c) (UnsafeMutableRawPointer?, Int, Int) -> UnsafeMutableRawPointer? = { ctx, size, alignment in
    value("apus_allocator_t.alloc", fallback: nil) { () throws(APIError) -> UnsafeMutableRawPointer? in
        let allocator = try allocator(ctx)
        return try allocator.owner.allocateBlock(output: allocator.output, size: size, alignment: alignment)
    }
}

private let reallocateFunction: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int, Int) -> UnsafeMutableRawPointer? =
    {
        ctx, pointer, size, alignment in
        value("apus_allocator_t.realloc", fallback: nil) { () throws(APIError) -> UnsafeMutableRawPointer? in
            let allocator = try allocator(ctx)
            let owner = allocator.owner
            guard let pointer else { return try owner.allocateBlock(output: allocator.output, size: size, alignment: alignment) }
            let size = try requireLength(size, "size")
            let block = try owner.takeBlock(pointer, output: allocator.output)
            // In place while the slot has room.
            if size <= (block.sample?.capacity ?? 0), block.sample?.resize(to: size) == true {
                owner.blocks.withLock { $0[UInt(bitPattern: pointer)] = block }
                return pointer
            }
            let moved: UnsafeMutableRawPointer
            do throws(APIError) {
                moved = try owner.allocateBlock(output: allocator.output, size: size, alignment: alignment)
            } catch {
                owner.blocks.withLock { $0[UInt(bitPattern: pointer)] = block }
                throw error
            }
            moved.copyMemory(from: pointer, byteCount: min(block.sample?.byteCount ?? 0, size))
            block.sample = nil
            return moved
        }
    }

private let freeFunction: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> apus_status_t = { ctx, pointer in
    status("apus_allocator_t.free") { () throws(APIError) in
        let allocator = try allocator(ctx)
        guard pointer != nil else { return }
        try allocator.owner.takeBlock(pointer, output: nil).sample = nil
    }
}

@c @implementation
public func apus_node_output_allocator(_ node: OpaquePointer?, _ output: UnsafePointer<CChar>?) -> apus_allocator_t {
    let ctx = value("apus_node_output_allocator", fallback: nil) { () throws(APIError) -> OpaquePointer? in
        let owner = try resolve(node, .node, as: CNode.self)
        let index = try owner.output(output)
        if let known = owner.allocators.withLock({ $0[index] }) { return OpaquePointer(bitPattern: known) }
        let handle = try register(CAllocator(owner: owner, output: index), .allocator)
        owner.allocators.withLock { $0[index] = UInt(bitPattern: UnsafeRawPointer(handle)) }
        return handle
    }
    return apus_allocator_t(
        ctx: ctx.map { UnsafeMutableRawPointer($0) }, alloc: allocateFunction, realloc: reallocateFunction, free: freeFunction)
}

@c @implementation
public func apus_node_send_allocated(
    _ node: OpaquePointer?, _ output: UnsafePointer<CChar>?, _ pointer: UnsafeMutableRawPointer?, _ length: Int,
    _ metadata: OpaquePointer?
) -> apus_status_t {
    status("apus_node_send_allocated") { () throws(APIError) in
        let owner = try resolve(node, .node, as: CNode.self)
        let index = try owner.output(output)
        let length = try requireLength(length, "length")
        let metadata = try sendMetadata(metadata)
        let block = try owner.takeBlock(pointer, output: index)
        guard var sample = block.sample.take() else { throw .invalidArgument("the block was sent already") }
        guard sample.resize(to: length) else {
            let capacity = sample.capacity
            block.sample = consume sample
            owner.blocks.withLock { $0[UInt(bitPattern: pointer)] = block }
            throw APIError(APUS_ERROR_LENGTH, "length \(length) is more than the block holds (\(capacity) bytes)")
        }
        do throws(NodeError) {
            try owner.node.send(sample, as: metadata)
        } catch {
            throw APIError(error)
        }
    }
}
