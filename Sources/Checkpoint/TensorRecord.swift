/// A reference to one storage of a checkpoint: a flat run of bytes that tensors view.
/// Nothing is read until a tensor's data is asked for.
public struct StorageRef: Hashable, Sendable {
    /// The record key (`"0"`, `"140234"`, ...) exactly as the file names it.
    public private(set) var key: String
    /// The element type of a typed storage; `.uint8` for an untyped (byte) storage.
    public private(set) var dtype: DType
    /// Size of the storage in bytes.
    public private(set) var byteCount: Int
    /// Where the storage starts inside the record `key`: non-zero only for the storage views
    /// of pre-1.0 files.
    public private(set) var byteOffset: Int = 0
    /// Saved device (`"cpu"`, `"cuda:0"`): informational only, everything loads on the CPU.
    public private(set) var location: String

    /// The storage view of a pre-1.0 file: `count` elements from element `offset` of this
    /// storage. The caller has checked that the view lies inside it.
    func view(offset: Int, count: Int) -> StorageRef {
        var view = self
        view.byteOffset += offset * dtype.size
        view.byteCount = count * dtype.size
        return view
    }

    /// `byteCount` bytes from `byteOffset` of this storage, as elements of `dtype`: torch's
    /// legacy loader slices the untyped storage in the dtype of the record naming the view.
    /// The caller has checked that the view lies inside this storage.
    func view(byteOffset offset: Int, byteCount count: Int, dtype: DType) -> StorageRef {
        var view = self
        view.byteOffset += offset
        view.byteCount = count
        view.dtype = dtype
        return view
    }
}

/// One tensor as the checkpoint describes it: a strided view into a storage.
/// `storageOffset` and `strides` count elements of `dtype`, as PyTorch does.
///
/// Records are made only by `validated(...)` and cannot be changed afterwards: the readers
/// index storages without bounds checks in release builds, trusting what validation proved.
public struct TensorRecord: Sendable {
    /// The storage the tensor views.
    public private(set) var storage: StorageRef
    /// The element type, which is also the unit of `strides` and `storageOffset`.
    public private(set) var dtype: DType
    /// Size of each dimension, outermost first (`[64, 3, 7, 7]`); empty for a scalar.
    public private(set) var shape: [Int]
    /// Elements to step in the storage for one step along each dimension, as torch's `Tensor.stride()` gives them.
    public private(set) var strides: [Int]
    /// Index, in elements, of the tensor's first element within the storage.
    public private(set) var storageOffset: Int

    /// The number of elements: 0 when any dimension is 0, however large the others (validation
    /// proved that the product of a non-empty shape fits in an `Int`).
    public var elementCount: Int { Self.elementCount(shape) ?? 0 }

    /// The product of `shape`, 0 when a dimension is 0, nil when it overflows.
    static func elementCount(_ shape: [Int]) -> Int? {
        if shape.contains(0) { return 0 }
        var count = 1
        for size in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            if overflow { return nil }
            count = product
        }
        return count
    }

    /// True when the elements are laid out densely in row-major order (strides of size-1
    /// dimensions do not matter), so the data can be taken as one run of bytes. An empty
    /// tensor is contiguous whatever its strides.
    public var isContiguous: Bool {
        if shape.contains(0) { return true }
        var expected = 1
        for (size, stride) in zip(shape, strides).reversed() where size != 1 {
            if stride != expected { return false }
            // Cannot overflow for a validated non-empty record: `expected` stays <= elementCount.
            let (product, overflow) = expected.multipliedReportingOverflow(by: size)
            if overflow { return false }
            expected = product
        }
        return true
    }

    /// The bytes of a contiguous tensor within its storage. Empty for a tensor with no elements,
    /// whose offset may lie anywhere, even past the storage or near `Int.max`, as torch allows;
    /// otherwise inside the storage, as `validated` proved, so nothing here can overflow.
    var contiguousBytes: Range<Int> {
        let count = elementCount
        guard count > 0 else { return 0 ..< 0 }
        return storageOffset * dtype.size ..< (storageOffset + count) * dtype.size
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
        // An empty tensor (a 0 anywhere in its shape) is valid whatever its other sizes: torch
        // loads a [0, 2^62, 2^62] tensor, and it has no data to read.
        guard let elements = elementCount(shape) else { throw fail("element count of shape \(shape) overflows") }
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
            let (endElements, o3) = end.addingReportingOverflow(1)
            let (endBytes, o4) = endElements.multipliedReportingOverflow(by: dtype.size)
            guard !o3, !o4, endBytes <= storage.byteCount else {
                throw fail("view (offset \(storageOffset), shape \(shape), strides \(strides)) of \(dtype.rawValue) "
                    + "needs \(o3 || o4 ? "more than Int.max" : String(endBytes)) bytes but the storage has \(storage.byteCount)")
            }
        }
        return TensorRecord(storage: storage, dtype: dtype, shape: shape, strides: strides,
                            storageOffset: storageOffset)
    }
}
