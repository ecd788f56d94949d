import Foundation

/// The safetensors header: u64 little-endian length N, N bytes of UTF-8 JSON, then the data.
/// Each tensor is its own storage here, keyed by its name.
enum SafetensorsHeader {
    static let maxHeaderBytes = 100_000_000

    static func read(path: String) throws -> (MappedFile, [(key: String, tensor: TensorRecord, offset: Int)], [MetadataValue.Pair]) {
        let file = try MappedFile(path: path)
        func corrupt(_ message: String) -> CheckpointError { CheckpointError(.corrupt, path: path, at: "safetensors header", message) }
        let length = try file.int64(at: 0, "header length")
        guard length >= 2, length <= maxHeaderBytes else { throw corrupt("header length \(length) is outside 2...\(maxHeaderBytes)") }
        let header = try file.slice(8, Int(length), "header")
        guard String(validating: header, as: UTF8.self) != nil else { throw corrupt("header is not valid UTF-8") }
        guard let json = try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any] else {
            throw corrupt("header is not a JSON object")
        }
        let dataStart = 8 + Int(length)
        var metadata: [MetadataValue.Pair] = []
        var entries: [(key: String, tensor: TensorRecord, offset: Int)] = []
        for (key, value) in json {
            if key == "__metadata__" {
                guard let pairs = value as? [String: String] else { throw corrupt("__metadata__ is not a map of strings") }
                metadata = pairs.sorted { $0.key < $1.key }.map { MetadataValue.Pair(key: $0.key, value: .string($0.value)) }
                continue
            }
            guard let info = value as? [String: Any], let code = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw corrupt("tensor \(key) lacks dtype, shape or data_offsets")
            }
            guard let dtype = DType(safetensorsCode: code) else { throw corrupt("tensor \(key) has unsupported dtype \(code)") }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin else { throw corrupt("tensor \(key) has offsets [\(begin), \(end)]") }
            let storage = StorageRef(key: key, dtype: dtype, byteCount: end - begin, location: "cpu")
            var strides = [Int](repeating: 1, count: shape.count)
            for i in shape.indices.dropLast().reversed() { strides[i] = strides[i + 1] * Swift.max(shape[i + 1], 1) }
            let tensor = try TensorRecord.validated(storage: storage, dtype: dtype, shape: shape, strides: strides, storageOffset: 0)
            guard tensor.elementCount * dtype.size == end - begin else {
                throw corrupt("tensor \(key): \(end - begin) bytes for \(tensor.elementCount) \(dtype.rawValue) elements")
            }
            _ = try file.slice(dataStart + begin, end - begin, "tensor \(key)")
            entries.append((key, tensor, dataStart + begin))
        }
        entries.sort { $0.offset < $1.offset || ($0.offset == $1.offset && $0.key < $1.key) }
        return (file, entries, metadata)
    }
}
