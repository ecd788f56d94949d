import Foundation

/// A PyTorch checkpoint opened for reading, in any format torch has written.
///
/// Opening parses only the pickle (or header): listing the tensors of a 550 MB file reads a
/// few kilobytes. Tensor data is read when asked for, one storage at a time.
///
/// ```swift
/// let checkpoint = try CheckpointFile(path: "resnet18-f37072fd.pth")
/// for (key, tensor) in checkpoint.stateDict.entries { print(key, tensor.shape) }
/// let weights = try checkpoint.floats(of: checkpoint.stateDict["fc.weight"]!)
/// ```
public final class CheckpointFile {
    /// The path the checkpoint was opened from, as given.
    public let path: String
    /// Which of torch's layouts the file uses (zip, legacy, tar, TorchScript, safetensors).
    public let format: CheckpointFormat
    /// The tensors found in the file under their state-dict keys, with the rest of its contents summarised.
    public let stateDict: StateDict
    /// True when the archive's `byteorder` record says `big`; data is swapped on reading.
    public let isBigEndian: Bool
    /// Format facts worth reporting (zip prefix folder, archive version).
    public let facts: [String: String]
    /// Every symbol the file's pickles name, with its verdict and where it is used; empty for
    /// safetensors. A loaded checkpoint lists no `hostile` one (those refuse the file).
    public let symbols: [PickleSymbol]
    /// The `foreign` symbols: inert here, but importable by `torch.load(weights_only=False)`.
    public var foreignSymbols: [PickleSymbol] { symbols.filter { $0.verdict == .foreign } }

    private let backing: StorageBacking
    /// Owns the unpickled objects the state dict was found in.
    private let arena: PickleArena?
    /// The last zip storage read, so tensors sharing a storage read it once in a row.
    private var cached: (key: String, bytes: [UInt8])?

    /// Opens and parses a checkpoint, deciding its format from its bytes.
    /// - Parameter path: a `.pth`, `.pt`, `.bin`, `.ckpt` or `.safetensors` file, whatever its extension.
    public convenience init(path: String) throws {
        try self.init(path: path, format: nil)
    }

    /// Opens `path` as `format`, or as what its bytes say when `format` is nil. Forcing a
    /// format is for the fuzzers, which must reach a reader whatever the mutated magic bytes.
    package init(path: String, format forced: CheckpointFormat?) throws {
        self.path = path
        do {
            let format = try forced ?? Self.sniff(path: path)
            let loaded: LoadedPickle
            switch format {
            case .zip, .torchscript: loaded = try ZipReader.load(path: path)
            case .legacy: loaded = try LegacyReader.load(path: path)
            case .tar: loaded = try TarReader.load(path: path)
            case .safetensors:
                let file = try MappedFile(path: path)
                let header = try SafetensorsHeader.parse(file.bytes, path: path)
                self.format = .safetensors
                self.stateDict = try SafetensorsHeader.stateDict(header, path: path)
                // Storages are named by their index in the header (see `SafetensorsHeader.stateDict`).
                self.backing = .mapped(file, offsets: Dictionary(uniqueKeysWithValues: header.entries.enumerated().map {
                    (String($0.offset), header.dataStart + $0.element.begin) }))
                self.isBigEndian = false
                self.facts = ["header_bytes": String(header.headerLength)]
                self.arena = nil
                self.symbols = []
                return
            }
            self.format = loaded.format
            self.stateDict = try StateDictExtractor.extract(loaded.root, format: loaded.format, path: path,
                                                            scriptClasses: loaded.scriptClasses)
            try Self.checkExpansion(stateDict)
            self.backing = loaded.backing
            self.isBigEndian = loaded.bigEndian
            self.facts = loaded.facts
            self.arena = loaded.arena
            self.symbols = SymbolVerdicts.report(loaded.arena.symbols, roots: [("", loaded.root)],
                                                 hidden: loaded.arena.hiddenSymbols)
        } catch let error as CheckpointError {
            throw error.with(path: path)
        }
    }

    /// Reading every tensor of a state dict may take at most `TensorRecord.maxRepeatedElements`
    /// more elements than its storages hold: views and shared keys repeat data, a few
    /// legitimately, a hostile file without limit (a thousand keys each expanding one byte).
    static func checkExpansion(_ stateDict: StateDict) throws {
        var stored: [String: Int] = [:]
        var viewed = 0
        // Saturating sums: storages may claim up to Int.max bytes each, and any sum past
        // Int.max is over the limit anyway.
        func add(_ a: Int, _ b: Int) -> Int {
            let (sum, overflow) = a.addingReportingOverflow(b)
            return overflow ? Int.max : sum
        }
        for (_, tensor) in stateDict.entries {
            let storage = tensor.storage
            let end = add(storage.byteOffset, storage.byteCount) / tensor.dtype.size
            stored[storage.key] = max(stored[storage.key] ?? 0, end)
            viewed = add(viewed, tensor.elementCount)  // each at most its storage's elements + 2^28, validated
        }
        let storageElements = stored.values.reduce(0, add)
        let maxRepeatedElements = TensorRecord.maxRepeatedElements
        guard viewed <= add(storageElements, maxRepeatedElements) else {
            throw CheckpointError(.corrupt, path: "", "its \(stateDict.entries.count) tensors view \(viewed) elements but their storages hold \(storageElements): "
                + "views repeat more than \(maxRepeatedElements) elements, which no real checkpoint does")
        }
    }

    /// The format of a file, from its first bytes.
    public static func sniff(path: String) throws -> CheckpointFormat {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read (permissions?)" : "no such file"
            throw CheckpointError(.io, path: path, reason)
        }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 512)) ?? Data()
        let size = Int((try? handle.seekToEnd()) ?? 0)
        return try head.withUnsafeBytes { try CheckpointFormat.sniff($0, fileSize: size, path: path) }
    }

    // MARK: Data

    /// Calls `body` with the bytes of a storage, as stored (big-endian archives unswapped).
    public func withBytes<R>(of storage: StorageRef, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        switch backing {
        case .mapped(let file, let offsets):
            guard let start = offsets[storage.key] else {
                throw CheckpointError(.corrupt, path: path, "storage \(storage.key) has no data in the file")
            }
            let (offset, overflow) = start.addingReportingOverflow(storage.byteOffset)
            guard !overflow else { throw CheckpointError(.corrupt, path: path, "storage \(storage.key) starts past Int.max") }
            return try body(try file.slice(offset, storage.byteCount, "storage \(storage.key)"))
        case .zip(let archive, let prefix):
            if cached?.key != storage.key {
                cached = nil  // free the previous storage before reading the next
                cached = (storage.key, try archive.read(prefix + "data/" + storage.key, limit: storage.byteOffset + storage.byteCount))
            }
            guard cached!.bytes.count - storage.byteOffset >= storage.byteCount else {
                throw CheckpointError(.corrupt, path: path, at: "zip entry \(prefix)data/\(storage.key)",
                    "holds \(cached!.bytes.count) bytes, the pickle says \(storage.byteOffset + storage.byteCount)")
            }
            return try cached!.bytes.withUnsafeBytes { all in
                // In range: the record holds at least byteOffset + byteCount bytes, checked above.
                try body(UnsafeRawBufferPointer(rebasing: all[storage.byteOffset ..< storage.byteOffset + storage.byteCount]))
            }
        }
    }

    /// Copies `destination.count` bytes of a storage, from `offset`, into `destination`: by pread
    /// for mapped files (no page faults), from the record for zip archives.
    public func readBytes(of storage: StorageRef, at offset: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        guard offset >= 0, destination.count <= storage.byteCount - offset else {
            throw CheckpointError(.corrupt, path: path, "read of \(destination.count) bytes at \(offset) past storage \(storage.key)")
        }
        try withBytes(of: storage) { raw in
            // In range: checked against the storage's size just above.
            let region = UnsafeRawBufferPointer(rebasing: raw[offset ..< offset + destination.count])
            if case .mapped(let file, _) = backing {
                try file.copy(region, into: destination)
            } else {
                destination.copyMemory(from: region)
            }
        }
    }

    /// Where a storage's bytes start in a mapped file (nil inside an archive).
    func fileOffset(of storage: StorageRef) -> Int? {
        guard case .mapped(_, let offsets) = backing else { return nil }
        return offsets[storage.key].map { $0 + storage.byteOffset }
    }

    /// The tensor's elements in row-major order, little-endian, `dtype.size` bytes each.
    public func data(of tensor: TensorRecord) throws -> [UInt8] {
        try withBytes(of: tensor.storage) { tensor.gather(from: $0, swapBytes: isBigEndian) }
    }

    /// Calls `body` with the tensor's elements in row-major order, little-endian, at most
    /// `chunkBytes` at a time (rounded down to whole elements). Contiguous tensors stream
    /// without ever being whole in memory; strided views are gathered first.
    public func streamElements(of tensor: TensorRecord, chunkBytes: Int,
                               _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let size = tensor.dtype.size
        let total = tensor.elementCount * size
        let step = max(chunkBytes / size, 1) * size
        func chunks(_ bytes: UnsafeRawBufferPointer) throws {
            var start = 0
            while start < bytes.count {
                let chunk = UnsafeRawBufferPointer(rebasing: bytes[start ..< min(start + step, bytes.count)])
                try body(chunk)
                start += chunk.count
            }
        }
        guard tensor.isContiguous && !isBigEndian else {
            return try data(of: tensor).withUnsafeBytes { try chunks($0) }
        }
        // Every slice below lies inside the storage: `validated` proved the contiguous run does.
        let range = tensor.contiguousBytes
        switch backing {
        case .zip(let archive, let prefix) where cached?.key != tensor.storage.key && range.lowerBound == 0
            && tensor.storage.byteOffset == 0 && total == tensor.storage.byteCount:
            try archive.stream(prefix + "data/" + tensor.storage.key, size: total, chunkBytes: step, body)
        case .mapped(let file, _):
            try withBytes(of: tensor.storage) { raw in
                try file.stream(UnsafeRawBufferPointer(rebasing: raw[range]), chunkBytes: step, body)
            }
        case .zip:
            try withBytes(of: tensor.storage) { try chunks(UnsafeRawBufferPointer(rebasing: $0[range])) }
        }
    }

    /// The tensor's elements converted to `Float` (float16, bfloat16, float64 and integers too),
    /// in one pass over the stored bytes when the tensor is contiguous.
    public func floats(of tensor: TensorRecord) throws -> [Float] {
        guard tensor.isContiguous && !isBigEndian else {
            return try data(of: tensor).withUnsafeBytes { tensor.dtype.floats(from: $0) }
        }
        // In range: `validated` proved the contiguous run lies inside the storage.
        let range = tensor.contiguousBytes
        if tensor.dtype == .float32, case .mapped(let file, _) = backing {
            // Straight from the page cache into the result.
            return try withBytes(of: tensor.storage) { raw in
                try [Float](unsafeUninitializedCapacity: tensor.elementCount) { out, count in
                    MappedFile.preferHugePages(UnsafeMutableRawBufferPointer(out))
                    try file.copy(UnsafeRawBufferPointer(rebasing: raw[range]), into: UnsafeMutableRawBufferPointer(out))
                    count = tensor.elementCount
                }
            }
        }
        return try withBytes(of: tensor.storage) {
            tensor.dtype.floats(from: UnsafeRawBufferPointer(rebasing: $0[range]))
        }
    }

    /// A zero-copy typed view of a tensor in a mapped file (safetensors, legacy and tar files),
    /// or nil when its elements must be copied (zip records, strided views, big-endian data,
    /// misaligned offsets, or a `T` that is not the tensor's type).
    public func withUnsafeElements<T, R>(of tensor: TensorRecord, as type: T.Type,
                                         _ body: (UnsafeBufferPointer<T>) throws -> R) throws -> R? {
        guard case .mapped = backing, tensor.isContiguous, !isBigEndian, MemoryLayout<T>.size == tensor.dtype.size else { return nil }
        return try withBytes(of: tensor.storage) { raw -> R? in
            // In range: `validated` proved the contiguous run lies inside the storage.
            let bytes = UnsafeRawBufferPointer(rebasing: raw[tensor.contiguousBytes])
            return try MappedFile.withElements(of: bytes, as: T.self, body)
        }
    }
}

extension TensorRecord {
    /// Copies the viewed elements out of `storage` into row-major order. The unchecked indexing
    /// is safe because `TensorRecord.validated` proved every index lies inside the storage, and
    /// records cannot be changed after validation.
    func gather(from storage: UnsafeRawBufferPointer, swapBytes: Bool) -> [UInt8] {
        let size = dtype.size
        let count = elementCount
        var out = [UInt8](repeating: 0, count: count * size)
        guard count > 0 else { return out }
        out.withUnsafeMutableBytes { dst in
            if isContiguous {
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[contiguousBytes]))
            } else {
                // Odometer over all dimensions but the last, a strided run along the last.
                let dims = shape.indices.filter { shape[$0] != 1 }
                let inner = dims.last.map { shape[$0] } ?? 1
                let innerStride = dims.last.map { strides[$0] } ?? 0
                let outer = Array(dims.dropLast())
                var index = [Int](repeating: 0, count: outer.count)
                var written = 0
                while written < count * size {
                    var base = storageOffset
                    for (k, d) in outer.enumerated() { base += index[k] * strides[d] }
                    for i in 0 ..< inner {
                        let from = (base + i * innerStride) * size
                        for b in 0 ..< size { dst[written + b] = storage[from + b] }
                        written += size
                    }
                    var k = outer.count - 1
                    while k >= 0 {
                        index[k] += 1
                        if index[k] < shape[outer[k]] { break }
                        index[k] = 0
                        k -= 1
                    }
                }
            }
            if swapBytes && size > 1 {
                for start in stride(from: 0, to: count * size, by: size) {
                    var lo = start, hi = start + size - 1
                    while lo < hi { dst.swapAt(lo, hi); lo += 1; hi -= 1 }
                }
            }
        }
        return out
    }
}

extension DType {
    /// Converts little-endian elements of this type to `Float`.
    public func floats(from raw: UnsafeRawBufferPointer) -> [Float] {
        let n = raw.count / size
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch self {
            case .float32: for i in 0 ..< n { out[i] = raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
            case .float64: for i in 0 ..< n { out[i] = Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            case .float16: for i in 0 ..< n { out[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
            case .bfloat16: for i in 0 ..< n { out[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16) }
            case .int64: for i in 0 ..< n { out[i] = Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
            case .int32: for i in 0 ..< n { out[i] = Float(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)) }
            case .int16: for i in 0 ..< n { out[i] = Float(raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)) }
            case .int8: for i in 0 ..< n { out[i] = Float(raw.load(fromByteOffset: i, as: Int8.self)) }
            case .uint8, .bool: for i in 0 ..< n { out[i] = Float(raw[i]) }
            }
            initialized = n
        }
    }
}
