/// The "magic number" format of torch 0.1.10 - 1.5 (`_use_new_zipfile_serialization=False`):
/// pickles in sequence (magic number, protocol version 1001, sys_info, the object, the sorted
/// storage keys), then per key an int64 element count and the raw little-endian elements.
enum LegacyReader {
    static func load(path: String) throws -> LoadedPickle {
        let file = try MappedFile(path: path)
        let arena = PickleArena()
        var position = 0

        /// Unpickles the next pickle in the file; `persistentLoad` only for the main object.
        func next(_ record: String, persistentLoad: @escaping Unpickler.PersistentLoad = { pid in
            throw CheckpointError(.corrupt, path: "", "unexpected persistent id \(pid.kindName)")
        }) throws -> PickleValue {
            var unpickler = Unpickler(bytes: file.bytes, start: position, record: record, arena: arena,
                                      persistentLoad: persistentLoad)
            let value = try unpickler.load()
            position = unpickler.position
            return value
        }

        guard case .bigInt(let magic) = try next("magic number"), magic == CheckpointFormat.legacyMagic else {
            throw CheckpointError(.corrupt, path: path, "the first pickle is not torch's magic number")
        }
        guard let version = try next("protocol version").int, version == 1001 else {
            throw CheckpointError(.unsupported, path: path, "legacy protocol version is not 1001")
        }
        let sysInfo = try next("sys_info")
        if case .bool(false)? = sysInfo.dict?["little_endian"] {
            throw CheckpointError(.unsupported, path: path, "saved on a big-endian machine in the legacy format; re-save it there with torch.save")
        }

        var storages: [String: StorageRef] = [:]
        let mainOffset = position
        let root = try next("main pickle at byte \(mainOffset)") { pid in
            try persistentLoad(pid, path: path, storages: &storages)
        }
        guard let keys = try next("storage key list").elements else {
            throw CheckpointError(.corrupt, path: path, at: "byte \(position)", "the storage key list is not a list")
        }

        // Each storage is `int64 numel` + numel elements; record where each starts.
        var offsets: [String: Int] = [:]
        for key in keys {
            guard let name = key.string ?? key.int.map(String.init), let storage = storages[name] else {
                throw CheckpointError(.corrupt, path: path, at: "byte \(position)", "storage key \(key.kindName) was not referenced by the pickle")
            }
            guard storage.key == name, storage.byteOffset == 0 else {
                throw CheckpointError(.unsupported, path: path, at: "byte \(position)",
                    "the data of storage \(name) would be read into a view of storage \(storage.key); refused as ambiguous")
            }
            let count = try file.int64(at: position, "element count of storage \(name)")
            let elements = storage.byteCount / storage.dtype.size
            guard count == elements else {
                throw CheckpointError(.corrupt, path: path, at: "byte \(position)",
                    "storage \(name) has \(count) elements in the file but the pickle says \(elements)")
            }
            let (bytes, overflow) = Int(count).multipliedReportingOverflow(by: storage.dtype.size)
            guard !overflow else { throw CheckpointError(.corrupt, path: path, at: "byte \(position)", "storage \(name) size overflows") }
            _ = try file.slice(position + 8, bytes, "storage \(name)")
            offsets[name] = position + 8
            position += 8 + bytes
        }
        return LoadedPickle(format: .legacy, root: root, backing: .mapped(file, offsets: offsets), arena: arena)
    }

    private static func persistentLoad(_ pid: PickleValue, path: String,
                                       storages: inout [String: StorageRef]) throws -> PickleValue {
        let fail = { (message: String) in CheckpointError(.corrupt, path: path, at: "main pickle", message) }
        guard let fields = pid.elements, let kind = fields.first?.string else {
            throw fail("persistent id is a \(pid.kindName), expected a tuple")
        }
        switch kind {
        case "module":
            // ('module', class, source file, source): the class symbol, kept as data.
            guard fields.count >= 2 else { throw fail("module persistent id has no class") }
            return fields[1]
        case "storage":
            // ('storage', type, root key, location, root numel, view metadata)
            guard fields.count >= 5 else { throw fail("storage persistent id has \(fields.count) fields, expected 5 or 6") }
            // As torch's legacy_load: the first record of a key wins (its dtype and size), and
            // views share one table with roots, the first view of a view key winning too.
            let named = try storageReference(fields[1], key: fields[2], location: fields[3], numel: fields[4], fail: fail)
            var root = named
            if let seen = storages[root.key] {
                // Another dtype reads the same bytes when the sizes agree; otherwise torch makes
                // it a new, empty storage of that dtype.
                root = seen.dtype == named.dtype ? seen
                    : seen.view(byteOffset: 0, byteCount: seen.byteCount == named.byteCount ? seen.byteCount : 0, dtype: named.dtype)
            } else {
                storages[root.key] = root
            }
            guard fields.count >= 6, let view = fields[5].elements else { return .storage(root) }
            // (view key, offset, size) in elements of this record's dtype, over the root's bytes.
            let size = named.dtype.size
            guard view.count == 3, let viewKey = view[0].string ?? view[0].int.map(String.init),
                  viewKey.utf8.allSatisfy({ $0 < 0x80 }),  // see storageReference
                  let offset = view[1].int, let count = view[2].int, offset >= 0, count >= 0,
                  offset <= root.byteCount / size - count else {
                throw fail("storage view of \(root.key) is not (key, offset, size) within the root")
            }
            if let seen = storages[viewKey] { return .storage(seen) }
            let sliced = root.view(byteOffset: offset * size, byteCount: count * size, dtype: named.dtype)
            storages[viewKey] = sliced
            return .storage(sliced)
        default:
            throw fail("unknown persistent id kind '\(kind)'")
        }
    }
}
