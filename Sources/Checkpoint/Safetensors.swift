/// The safetensors layout, zoo's native format: u64 little-endian header length N, N bytes of
/// UTF-8 JSON (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
/// "__metadata__": {"k": "v"}}`), then the data, each tensor contiguous and little-endian.
/// The reader enforces every rule of the reference implementation (huggingface/safetensors).
struct SafetensorsHeader {
    struct Entry {
        var key: String
        var dtype: DType
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    /// Tensors in data order.
    var entries: [Entry]
    /// `__metadata__`, in file order.
    var metadata: [(key: String, value: String)]
    var headerLength: Int
    var dataStart: Int { 8 + headerLength }

    static let maxHeaderBytes = 100_000_000
    /// Valid safetensors dtypes zoo does not read.
    static let otherDtypes: Set<String> = ["U16", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"]

    static func parse(_ file: UnsafeRawBufferPointer, path: String) throws -> SafetensorsHeader {
        func corrupt(_ message: String) -> CheckpointError {
            CheckpointError(.corrupt, path: path, at: "safetensors header", message)
        }
        guard file.count >= 8 else { throw corrupt("header too small: the file has \(file.count) bytes, the length field alone needs 8") }
        let n = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
        guard n <= UInt64(maxHeaderBytes) else { throw corrupt("header too large: \(n) bytes, the limit is \(maxHeaderBytes)") }
        let length = Int(n)
        guard 8 + length <= file.count else {
            throw corrupt("invalid header length: \(length) bytes announced, \(file.count - 8) in the file")
        }
        let text = UnsafeRawBufferPointer(rebasing: file[8 ..< 8 + length])
        guard String(validating: text, as: UTF8.self) != nil else { throw corrupt("the header is not valid UTF-8") }
        guard text.first == UInt8(ascii: "{") else { throw corrupt("the header does not start with '{'") }
        let json: JSON
        do { json = try JSON.parse(text) } catch let error as JSON.ParseError {
            throw CheckpointError(.corrupt, path: path, at: "safetensors header byte \(8 + error.offset)", "invalid JSON: \(error.message)")
        }
        guard case .object(let members) = json else { throw corrupt("the header is not a JSON object") }

        var entries: [Entry] = []
        var metadata: [(key: String, value: String)] = []
        for (key, value) in members {
            if key == "__metadata__" {
                guard case .object(let pairs) = value else { throw corrupt("__metadata__ is not an object") }
                for (k, v) in pairs {
                    guard case .string(let s) = v else { throw corrupt("__metadata__ value of \"\(k)\" is not a string") }
                    metadata.append((k, s))
                }
                continue
            }
            entries.append(try entry(key, value, corrupt: corrupt, path: path))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var position = 0
        for entry in entries {
            guard entry.begin == position, entry.end >= entry.begin else {
                throw corrupt("invalid offset for tensor \(entry.key): [\(entry.begin), \(entry.end)] where the data so far ends at \(position) (offsets must chain without gaps or overlaps)")
            }
            var elements = 1
            for d in entry.shape {
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o else { throw corrupt("validation overflow: the shape \(entry.shape) of \(entry.key) has too many elements") }
                elements = p
            }
            let (bytes, o) = elements.multipliedReportingOverflow(by: entry.dtype.size)
            guard !o else { throw corrupt("validation overflow: \(entry.key) needs more bytes than fit in a file") }
            guard bytes == entry.end - entry.begin else {
                throw corrupt("tensor \(entry.key): shape \(entry.shape) of \(entry.dtype.safetensorsCode) needs \(bytes) bytes, its offsets span \(entry.end - entry.begin)")
            }
            position = entry.end
        }
        guard 8 + length + position == file.count else {
            let actual = file.count - 8 - length
            throw corrupt("metadata incomplete buffer: the tensors cover \(position) bytes of data, the file has \(actual)"
                + (actual > position ? " (trailing bytes)" : " (truncated)"))
        }
        return SafetensorsHeader(entries: entries, metadata: metadata, headerLength: length)
    }

    private static func entry(_ key: String, _ value: JSON, corrupt: (String) -> CheckpointError, path: String) throws -> Entry {
        guard case .object(let fields) = value else { throw corrupt("tensor \(key) is not an object") }
        func field(_ name: String) throws -> JSON {
            guard let v = fields.first(where: { $0.key == name })?.value else { throw corrupt("tensor \(key) has no \(name)") }
            return v
        }
        guard case .string(let code) = try field("dtype") else { throw corrupt("tensor \(key): dtype is not a string") }
        guard let dtype = DType(safetensorsCode: code) else {
            if otherDtypes.contains(code) {
                throw CheckpointError(.unsupported, path: path, at: "safetensors header", "tensor \(key) has dtype \(code), which zoo does not read")
            }
            throw corrupt("tensor \(key) has unknown dtype \(code)")
        }
        func integers(_ name: String) throws -> [Int] {
            guard case .array(let items) = try field(name) else { throw corrupt("tensor \(key): \(name) is not an array") }
            return try items.map {
                switch $0 {
                case .int(let i) where i >= 0: return i
                case .number(let text) where !text.hasPrefix("-") && !text.contains(".") && !text.contains("e") && !text.contains("E"):
                    throw corrupt("validation overflow: \(name) of \(key) has \(text), beyond 64-bit integers")
                default: throw corrupt("tensor \(key): \(name) must hold non-negative integers")
                }
            }
        }
        let shape = try integers("shape")
        let offsets = try integers("data_offsets")
        guard offsets.count == 2 else { throw corrupt("tensor \(key): data_offsets must be [begin, end]") }
        return Entry(key: key, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
    }
}

extension SafetensorsHeader {
    /// The metadata key zoo records aliases under: a JSON object `{"alias": "stored key"}` for
    /// tensors that were the same view of one storage and are stored once.
    static let aliasesKey = "aliases"

    /// Each tensor is its own storage, named by its index in the header (keys that differ only
    /// in Unicode normal form are different tensors, and Swift's `String ==` would merge them);
    /// aliases come back as the tensor they name.
    static func stateDict(_ header: SafetensorsHeader, path: String) throws -> StateDict {
        var entries: [(key: String, tensor: TensorRecord)] = []
        for (index, entry) in header.entries.enumerated() {
            let storage = StorageRef(key: String(index), dtype: entry.dtype, byteCount: entry.end - entry.begin, location: "cpu")
            var strides = [Int](repeating: 1, count: entry.shape.count)
            // Wrapping: only an empty tensor's strides can overflow, and an empty tensor reads nothing.
            for i in entry.shape.indices.dropLast().reversed() { strides[i] = strides[i + 1] &* max(entry.shape[i + 1], 1) }
            entries.append((entry.key, try TensorRecord.validated(storage: storage, dtype: entry.dtype, shape: entry.shape,
                                                                  strides: strides, storageOffset: 0)))
        }
        if let text = header.metadata.first(where: { $0.key == aliasesKey })?.value {
            let json = Array(text.utf8).withUnsafeBytes { try? JSON.parse($0) }
            guard case .object(let pairs)? = json else {
                throw CheckpointError(.corrupt, path: path, at: "safetensors __metadata__", "\(aliasesKey) is not a JSON object")
            }
            let stored = Dictionary(entries.map { (Array($0.key.utf8), $0.tensor) }, uniquingKeysWith: { a, _ in a })
            for (alias, target) in pairs {
                guard case .string(let name) = target, let tensor = stored[Array(name.utf8)] else {
                    throw CheckpointError(.corrupt, path: path, at: "safetensors __metadata__", "alias \(alias) names no stored tensor")
                }
                entries.append((alias, tensor))
            }
        }
        return StateDict(entries: entries, path: "", strippedPrefix: "",
                         metadata: header.metadata.map { MetadataValue.Pair(key: $0.key, value: .string($0.value)) }, source: nil)
    }
}
