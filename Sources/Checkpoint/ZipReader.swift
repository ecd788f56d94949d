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
        try checkUnambiguous(archive, prefix: prefix)
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
                try persistentLoad(pid, archive: archive, prefix: prefix, bigEndian: bigEndian, storages: &storages)
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
                            bigEndian: bigEndian, facts: facts,
                            scriptClasses: isScript ? try ScriptClasses.read(archive, prefix: prefix) : nil)
    }

    /// Refuses an archive two readers could read differently: an entry name twice (which copy
    /// wins depends on the zip library), entries outside the first entry's folder (torch
    /// refuses them: "file in archive is not in a subdirectory"), or more than one end record
    /// in reach (libzip and torch's miniz may pick different central directories).
    static func checkUnambiguous(_ archive: ZipArchive, prefix: String) throws {
        var seen = Set<[UInt8]>()
        seen.reserveCapacity(archive.names.count)
        for name in archive.names {
            guard seen.insert(Array(name.utf8)).inserted else {
                throw CheckpointError(.corrupt, path: archive.path, at: "zip entry \(name)",
                    "appears twice in the central directory; zip readers disagree on which copy to read, so zoo reads neither")
            }
            guard name.utf8.starts(with: prefix.utf8) else {
                throw CheckpointError(.corrupt, path: archive.path, at: "zip entry \(name)",
                    "is outside the folder \(prefix) of the first entry; torch refuses such an archive, and so does zoo")
            }
        }
        let ends = try endRecords(archive.path)
        guard ends.count <= 1 else {
            throw CheckpointError(.corrupt, path: archive.path, at: "bytes \(ends.map(String.init).joined(separator: ", "))",
                "\(ends.count) zip end-of-central-directory records, each closing a central directory: zip readers disagree on which one is the archive; refused")
        }
    }

    /// Offsets of the end-of-central-directory records within reach of a zip reader (the last
    /// 64 KiB + 22 bytes) whose central directory ends just before them, as a real one does.
    static func endRecords(_ path: String) throws -> [Int] {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        let start = max(0, bytes.count - (65_535 + 22))
        func u32(_ at: Int) -> Int {
            Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        }
        var found: [Int] = []
        var p = bytes.count - 22
        while p >= start {
            // Bounds: p + 22 <= bytes.count, so every field read below is inside the file.
            if bytes[p] == 0x50, bytes[p + 1] == 0x4B, bytes[p + 2] == 0x05, bytes[p + 3] == 0x06 {
                let size = u32(p + 12), offset = u32(p + 16)
                if size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF || offset + size == p
                    || (p >= 20 && u32(p - 20) == 0x0706_4B50) {  // zip64: its locator just before
                    found.append(p)
                }
            }
            p -= 1
        }
        return found
    }

    private static func persistentLoad(_ pid: PickleValue, archive: ZipArchive, prefix: String, bigEndian: Bool,
                                       storages: inout [String: StorageRef]) throws -> PickleValue {
        let fail = { (message: String) in CheckpointError(.corrupt, path: archive.path, at: "\(prefix)data.pkl", message) }
        guard let fields = pid.elements, fields.count >= 5, fields[0].string == "storage" else {
            throw fail("persistent id is not ('storage', type, key, location, numel): found \(pid.kindName)")
        }
        let storage = try storageReference(fields[1], key: fields[2], location: fields[3], numel: fields[4], fail: fail)
        if let seen = storages[storage.key] {
            // A shared storage: one record, read once. As torch's persistent_load, a reference
            // of the same dtype gets the first storage whatever length it claims; one of another
            // dtype reads the same bytes as its dtype, when its length agrees with the record.
            if seen.dtype == storage.dtype { return .storage(seen) }
            guard !bigEndian || storage.dtype.size == seen.dtype.size else {
                throw CheckpointError(.unsupported, path: archive.path, at: "zip entry \(prefix)data/\(storage.key)",
                    "a big-endian record read as \(seen.dtype.rawValue) and as \(storage.dtype.rawValue): torch swaps its bytes once, for the first; refused as ambiguous")
            }
            guard storage.byteCount == seen.byteCount else {
                throw CheckpointError(.corrupt, path: archive.path, at: "zip entry \(prefix)data/\(storage.key)",
                    "holds \(seen.byteCount) bytes but a \(storage.dtype.rawValue) reference to it says \(storage.byteCount)")
            }
            return .storage(seen.view(byteOffset: 0, byteCount: seen.byteCount, dtype: storage.dtype))
        }
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
