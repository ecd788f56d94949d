import Foundation

/// torch >= 1.6 archives (and TorchScript archives, which share the layout):
/// `<prefix>/data.pkl`, `<prefix>/data/<key>` per storage, `<prefix>/byteorder`.
enum ZipReader {
    /// `data.pkl` of a real checkpoint is kilobytes; refuse to allocate absurd amounts for it.
    static let maxPickleBytes = 1 << 30
    /// A deflated `data.pkl` may inflate to 16 MiB, or 16 times its compressed size beyond that
    /// (a real pickle compresses 3-6 fold); a stored one is its size in the file.
    static let inflatedPickleFloor = 16 << 20
    static let inflatedPickleRatio = 16

    static func pickleLimit(fileBytes: Int) -> Int {
        min(maxPickleBytes, max(fileBytes, inflatedPickleFloor + inflatedPickleRatio * fileBytes))
    }

    static func load(path: String) throws -> LoadedPickle {
        let archive = try ZipArchive(path: path)
        guard let first = archive.names.first, let slash = first.firstIndex(of: "/") else {
            throw CheckpointError(.unsupported, path: path,
                "a zip archive that is not a PyTorch checkpoint: its records are not under one folder (first: \(archive.names.first ?? "none"))")
        }
        let prefix = String(first[..<slash]) + "/"
        let isScript = archive.contains(prefix + "constants.pkl")
        let pickleName = prefix + "data.pkl"
        guard archive.contains(pickleName) else {
            throw CheckpointError(.unsupported, path: path,
                "a zip archive without \(pickleName): not a torch.save checkpoint (entries: \(archive.names.prefix(5).joined(separator: ", ")))")
        }
        var bigEndian = false
        if archive.contains(prefix + "byteorder") {
            let order = String(decoding: try archive.read(prefix + "byteorder", limit: 16), as: UTF8.self)
            switch order.trimmingCharacters(in: .whitespacesAndNewlines) {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default: throw CheckpointError(.corrupt, path: path, at: prefix + "byteorder", "expected 'little' or 'big', found '\(order.prefix(16))'")
            }
        }
        let pickleFileBytes = try archive.compressedSize(of: pickleName)
        let pickle = try archive.read(pickleName, limit: pickleLimit(fileBytes: pickleFileBytes))
        let arena = PickleArena()
        var storages: [String: StorageRef] = [:]
        let root = try pickle.withUnsafeBytes { bytes in
            var unpickler = Unpickler(bytes: bytes, record: pickleName, fileBytes: pickleFileBytes, arena: arena) { pid in
                try persistentLoad(pid, archive: archive, prefix: prefix, storages: &storages)
            }
            return try unpickler.load()
        }
        var facts = ["prefix": String(prefix.dropLast())]
        if archive.contains(prefix + "version"),
           let version = try? archive.read(prefix + "version", limit: 64) {
            facts["archive_version"] = String(decoding: version, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return LoadedPickle(format: isScript ? .torchscript : .zip, root: root,
                            backing: .zip(archive, prefix: prefix), arena: arena,
                            bigEndian: bigEndian, facts: facts)
    }

    private static func persistentLoad(_ pid: PickleValue, archive: ZipArchive, prefix: String,
                                       storages: inout [String: StorageRef]) throws -> PickleValue {
        let fail = { (message: String) in CheckpointError(.corrupt, path: archive.path, at: "\(prefix)data.pkl", message) }
        guard let fields = pid.elements, fields.count >= 5, fields[0].string == "storage" else {
            throw fail("persistent id is not ('storage', type, key, location, numel): found \(pid.kindName)")
        }
        let storage = try storageReference(fields[1], key: fields[2], location: fields[3], numel: fields[4], fail: fail)
        if let seen = storages[storage.key] { return .storage(seen) }  // shared storage: one record, read once
        let record = prefix + "data/" + storage.key
        let size = try archive.size(of: record)
        guard size == storage.byteCount else {
            throw CheckpointError(.corrupt, path: archive.path, at: "zip entry \(record)",
                                  "holds \(size) bytes but the pickle says \(storage.byteCount) (\(storage.dtype.rawValue) storage)")
        }
        storages[storage.key] = storage
        return .storage(storage)
    }
}
