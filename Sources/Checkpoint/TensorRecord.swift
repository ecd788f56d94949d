/// A reference to one storage of a checkpoint: a flat run of bytes that tensors view.
/// Nothing is read until a tensor's data is asked for.
public struct StorageRef: Hashable, Sendable {
    /// The record key (`"0"`, `"140234"`, ...) exactly as the file names it.
    public var key: String
    /// The element type of a typed storage; `.uint8` for an untyped (byte) storage.
    public var dtype: DType
    /// Size of the storage in bytes.
    public var byteCount: Int
    /// Where the storage starts inside the record `key`: non-zero only for the storage views
    /// of pre-1.0 files.
    public var byteOffset: Int = 0
    /// Saved device (`"cpu"`, `"cuda:0"`): informational only, everything loads on the CPU.
    public var location: String
}

/// One tensor as the checkpoint describes it: a strided view into a storage.
/// `storageOffset` and `strides` count elements of `dtype`, as PyTorch does.
public struct TensorRecord: Sendable {
    public var storage: StorageRef
    public var dtype: DType
    public var shape: [Int]
    public var strides: [Int]
    public var storageOffset: Int

    public var elementCount: Int { shape.reduce(1, *) }

    /// True when the elements are laid out densely in row-major order (strides of size-1
    /// dimensions do not matter), so the data can be taken as one run of bytes.
    public var isContiguous: Bool {
        var expected = 1
        for (size, stride) in zip(shape, strides).reversed() where size != 1 {
            if stride != expected { return false }
            expected *= size
        }
        return true
    }

    /// The most elements a view may materialise beyond those of the storage it views
    /// (1 GiB as float32).
    static let maxRepeatedElements = 1 << 28

    /// Checks shape, strides and offset against the storage with overflow-safe arithmetic,
    /// so that reading the tensor can never touch a byte outside its storage.
    static func validated(storage: StorageRef, dtype: DType, shape: [Int], strides: [Int],
                          storageOffset: Int) throws -> TensorRecord {
        func fail(_ message: String) -> CheckpointError {
            CheckpointError(.corrupt, path: "", "tensor on storage \(storage.key): \(message)")
        }
        guard shape.count == strides.count else {
            throw fail("shape \(shape) and strides \(strides) differ in rank")
        }
        guard shape.count <= 64 else { throw fail("rank \(shape.count) exceeds 64") }
        guard storageOffset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw fail("negative size, stride or offset (shape \(shape), strides \(strides), offset \(storageOffset))")
        }
        var elements = 1
        for size in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard !overflow else { throw fail("element count of shape \(shape) overflows") }
            elements = product
        }
        // A view may repeat elements (stride 0, as `expand` makes), but zoo materialises views:
        // beyond its storage's own elements, a view may grow to `maxRepeatedElements`, no further.
        let storageElements = storage.byteCount / dtype.size
        guard elements <= max(storageElements, maxRepeatedElements) else {
            throw fail("view of shape \(shape) strides \(strides) makes \(elements) elements of a \(storageElements)-element storage; "
                + "zoo expands a storage to at most \(maxRepeatedElements) elements")
        }
        if elements > 0 {
            // The highest element index the view touches, plus one, in elements then bytes.
            var end = storageOffset
            for (size, stride) in zip(shape, strides) {
                let (step, o1) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, o2) = end.addingReportingOverflow(step)
                guard !o1, !o2 else { throw fail("extent of shape \(shape) strides \(strides) overflows") }
                end = sum
            }
            let (endBytes, o3) = (end + 1).multipliedReportingOverflow(by: dtype.size)
            guard !o3, endBytes <= storage.byteCount else {
                throw fail("view (offset \(storageOffset), shape \(shape), strides \(strides)) of \(dtype.rawValue) "
                    + "needs \(o3 ? "more than Int.max" : String(endBytes)) bytes but the storage has \(storage.byteCount)")
            }
        }
        return TensorRecord(storage: storage, dtype: dtype, shape: shape, strides: strides,
                            storageOffset: storageOffset)
    }
}
