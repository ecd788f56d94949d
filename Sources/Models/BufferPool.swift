import Foundation

/// Float arrays of finished intermediate tensors, by element count, for the next layer or
/// forward pass that needs one of that size. Bounded, so it holds at most a few activations.
/// `Plan` hands its intermediates back; the CKernels paths and max pooling take their outputs
/// from here.
final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool()
    private let lock = NSLock()
    private var free: [Int: [[Float]]] = [:]
    private var bytes = 0
    /// At most this many bytes wait in the pool.
    var limit = 512 << 20

    func take(_ count: Int) -> [Float]? {
        lock.lock()
        defer { lock.unlock() }
        guard var list = free[count], let data = list.popLast() else { return nil }
        free[count] = list.isEmpty ? nil : list
        bytes -= count * 4
        return data
    }

    func put(_ data: [Float]) {
        let size = data.count * 4
        guard size >= 1 << 16 else { return }
        lock.lock()
        defer { lock.unlock() }
        guard bytes + size <= limit, (free[data.count]?.count ?? 0) < 4 else { return }
        free[data.count, default: []].append(data)
        bytes += size
    }

    /// Hands an intermediate tensor that nothing uses any more back for reuse.
    func recycle(_ t: consuming Tensor) {
        put(t.data)
    }
}

extension Kernels {
    /// Storage for an output tensor that its kernel writes in full, so its contents do not
    /// matter: an array recycled by an earlier layer when one of the same size is free (which
    /// spares the page faults of a fresh allocation), or a new one left uninitialised.
    static func uninitialized(_ shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        if let data = BufferPool.shared.take(count) { return Tensor(shape: shape, data: data) }
        // Safe: Float has no invariants to break, and the caller writes every element before any is read.
        return Tensor(shape: shape, data: [Float](unsafeUninitializedCapacity: count) { _, n in n = count })
    }
}
