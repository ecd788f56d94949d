/// Where a checkpoint's storages live, and how their bytes are reached.
enum StorageBacking {
    /// One zip record per storage key (`<prefix>/data/<key>`), read through libzip.
    case zip(ZipArchive, prefix: String)
    /// Storages inside a mapped file; `offsets[key]` is where the key's bytes start.
    case mapped(MappedFile, offsets: [String: Int])
}

/// What a format reader hands back: the unpickled root object and how to reach its storages.
struct LoadedPickle {
    var format: CheckpointFormat
    var root: PickleValue
    var backing: StorageBacking
    var arena: PickleArena
    var bigEndian = false
    /// Format-specific facts worth reporting (zip prefix, torch version record, ...).
    var facts: [String: String] = [:]
    /// For TorchScript archives: what the classes in `code/` declare.
    var scriptClasses: ScriptClasses?
}

/// The storage tuple of a persistent id: `('storage', torch.FloatStorage, key, location, numel)`.
/// `numel` counts elements of the storage class (bytes for `UntypedStorage`).
func storageReference(_ typeSymbol: PickleValue, key: PickleValue, location: PickleValue,
                      numel: PickleValue, fail: (String) -> CheckpointError) throws -> StorageRef {
    guard case .global(_, let className) = typeSymbol else {
        throw fail("storage type is a \(typeSymbol.kindName), expected a torch storage class")
    }
    let dtype: DType
    if className == "UntypedStorage" {
        dtype = .uint8
    } else if let known = DType(storageClass: className) {
        dtype = known
    } else if DType.refusedStorageClasses.contains(className) {
        throw CheckpointError(.unsupported, path: "", "\(className) tensors (complex or quantized) are not supported")
    } else {
        throw fail("unknown storage class \(className)")
    }
    let keyText: String
    switch key {
    case .string(let s): keyText = s
    case .int(let i): keyText = String(i)
    default: throw fail("storage key is a \(key.kindName)")
    }
    // torch writes decimal keys. Other keys are refused rather than compared: Python tells
    // the NFC and NFD spellings of a key apart, Swift's String == does not.
    guard keyText.utf8.allSatisfy({ $0 < 0x80 }) else {
        throw CheckpointError(.unsupported, path: "", "storage key '\(keyText)' is not ASCII (torch writes numbers); refused as ambiguous")
    }
    guard let count = numel.int, count >= 0 else { throw fail("storage \(keyText) has element count \(numel.kindName)") }
    let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
    guard !overflow else { throw fail("storage \(keyText) of \(count) elements overflows") }
    return StorageRef(key: keyText, dtype: dtype, byteCount: bytes, location: location.string ?? "cpu")
}
