import Foundation

/// The tar format of torch < 0.1.10 (torchvision's first ResNet files). Members:
/// `storages` (count pickle; per storage a `(key, location, type)` pickle, int64 numel, the
/// elements; then a list of `(target, root, offset, numel)` views), `tensors` (count pickle;
/// per tensor a `(key, storage key, type)` pickle, int32 ndim, 4 pad bytes, int64 sizes,
/// int64 strides, int64 storage offset) and `pickle` (the object; a string persistent id names
/// a tensor or storage above). Layout from `torch/serialization.py` (`legacy_load`).
enum TarReader {
    static func load(path: String) throws -> LoadedPickle {
        let file = try MappedFile(path: path)
        let members = try self.members(file)
        func member(_ name: String) throws -> Range<Int> {
            guard let range = members[name] else {
                throw CheckpointError(.corrupt, path: path, "a tar archive without a '\(name)' member: not a torch checkpoint (members: \(members.keys.sorted().prefix(6).joined(separator: ", ")))")
            }
            return range
        }
        let arena = PickleArena()
        var objects: [String: PickleValue] = [:]  // storages and tensors by key
        var offsets: [String: Int] = [:]

        /// Reads consecutive pickles and raw fields inside one member.
        struct Cursor {
            let file: MappedFile
            let range: Range<Int>
            let member: String
            let arena: PickleArena
            var position: Int

            mutating func pickle(persistentLoad: @escaping Unpickler.PersistentLoad = { _ in
                throw CheckpointError(.corrupt, path: "", "unexpected persistent id")
            }) throws -> PickleValue {
                let bytes = UnsafeRawBufferPointer(rebasing: file.bytes[range])
                var unpickler = Unpickler(bytes: bytes, start: position - range.lowerBound, record: "tar member \(member)",
                                          baseOffset: range.lowerBound, arena: arena, persistentLoad: persistentLoad)
                let value = try unpickler.load()
                position = range.lowerBound + unpickler.position
                return value
            }

            mutating func int64(_ what: String) throws -> Int {
                guard position + 8 <= range.upperBound else { throw overrun(what) }
                let value = try file.int64(at: position, what)
                position += 8
                return Int(value)
            }

            mutating func int32(_ what: String) throws -> Int {
                guard position + 8 <= range.upperBound else { throw overrun(what) }
                let value = Int32(littleEndian: try file.slice(position, 4, what).loadUnaligned(as: Int32.self))
                position += 8  // int32 ndim + 4 bytes of padding
                return Int(value)
            }

            mutating func skip(_ count: Int, _ what: String) throws {
                guard count >= 0, count <= range.upperBound - position else { throw overrun(what) }
                position += count
            }

            func overrun(_ what: String) -> CheckpointError {
                CheckpointError(.corrupt, path: file.path, at: "tar member \(member) byte \(position - range.lowerBound)",
                                "\(what) runs past the end of the member")
            }
        }

        func key(_ value: PickleValue, _ at: Cursor) throws -> String {
            if let s = value.string { return s }
            if let i = value.int { return String(i) }
            throw CheckpointError(.corrupt, path: path, at: "tar member \(at.member)", "key is a \(value.kindName)")
        }

        // Storages.
        var cursor = Cursor(file: file, range: try member("storages"), member: "storages", arena: arena, position: try member("storages").lowerBound)
        guard let storageCount = try cursor.pickle().int, storageCount >= 0 else { throw cursor.overrun("storage count") }
        for _ in 0 ..< storageCount {
            guard let header = try cursor.pickle().elements, header.count == 3 else {
                throw CheckpointError(.corrupt, path: path, at: "tar member storages", "storage header is not (key, location, type)")
            }
            let name = try key(header[0], cursor)
            let numel = try cursor.int64("element count of storage \(name)")
            let storage = try storageReference(header[2], key: .string(name), location: header[1], numel: .int(numel)) {
                CheckpointError(.corrupt, path: path, at: "tar member storages", $0)
            }
            offsets[name] = cursor.position
            try cursor.skip(storage.byteCount, "storage \(name)")
            objects[name] = .storage(storage)
        }
        guard let views = try cursor.pickle().elements else { throw cursor.overrun("storage view list") }
        for view in views {
            guard let v = view.elements, v.count == 4, let offset = v[2].int, let numel = v[3].int,
                  case .storage(let storage)? = objects[try key(v[1], cursor)] else {
                throw CheckpointError(.corrupt, path: path, at: "tar member storages", "storage view is not (target, root, offset, numel) of a known root")
            }
            let size = storage.dtype.size
            guard offset >= 0, numel >= 0, offset <= storage.byteCount / size - numel else {
                throw CheckpointError(.corrupt, path: path, at: "tar member storages", "storage view (\(offset), \(numel)) lies outside its root \(storage.key)")
            }
            objects[try key(v[0], cursor)] = .storage(storage.view(offset: offset, count: numel))
        }

        // Tensors.
        cursor = Cursor(file: file, range: try member("tensors"), member: "tensors", arena: arena, position: try member("tensors").lowerBound)
        guard let tensorCount = try cursor.pickle().int, tensorCount >= 0 else { throw cursor.overrun("tensor count") }
        for _ in 0 ..< tensorCount {
            guard let header = try cursor.pickle().elements, header.count == 3 else {
                throw CheckpointError(.corrupt, path: path, at: "tar member tensors", "tensor header is not (key, storage key, type)")
            }
            let name = try key(header[0], cursor)
            let storageName = try key(header[1], cursor)
            guard case .storage(let storage)? = objects[storageName] else {
                throw CheckpointError(.corrupt, path: path, at: "tar member tensors", "tensor \(name) refers to unknown storage \(storageName)")
            }
            let ndim = try cursor.int32("rank of tensor \(name)")
            guard (0 ... 64).contains(ndim) else { throw cursor.overrun("rank \(ndim) of tensor \(name)") }
            let shape = try (0 ..< ndim).map { _ in try cursor.int64("size of tensor \(name)") }
            let strides = try (0 ..< ndim).map { _ in try cursor.int64("stride of tensor \(name)") }
            let offset = try cursor.int64("offset of tensor \(name)")
            do {
                objects[name] = .tensor(try TensorRecord.validated(storage: storage, dtype: storage.dtype, shape: shape,
                                                                   strides: strides, storageOffset: offset))
            } catch let error as CheckpointError {
                throw CheckpointError(.corrupt, path: path, at: "tar member tensors, tensor \(name)", error.message)
            }
        }

        // The object.
        cursor = Cursor(file: file, range: try member("pickle"), member: "pickle", arena: arena, position: try member("pickle").lowerBound)
        let root = try cursor.pickle { pid in
            if let fields = pid.elements, let first = fields.first { return first }  // ('module' class, ...)
            guard let name = pid.string ?? pid.int.map(String.init), let object = objects[name] else {
                throw CheckpointError(.corrupt, path: path, at: "tar member pickle", "persistent id \(pid.kindName) names no tensor or storage")
            }
            return object
        }
        return LoadedPickle(format: .tar, root: root, backing: .mapped(file, offsets: offsets), arena: arena)
    }

    /// Member name -> byte range of its data, for the regular files of a ustar/pax archive.
    static func members(_ file: MappedFile) throws -> [String: Range<Int>] {
        var result: [String: Range<Int>] = [:]
        var offset = 0
        var paxPath: String?
        while offset + 512 <= file.bytes.count {
            let header = try file.slice(offset, 512, "tar header")
            if header.allSatisfy({ $0 == 0 }) { break }
            func text(_ range: Range<Int>) -> String {
                let field = header[range]
                return String(decoding: field.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            let sizeText = text(124 ..< 136).trimmingCharacters(in: .whitespaces)
            guard let size = Int(sizeText, radix: 8), size >= 0 else {
                throw CheckpointError(.corrupt, path: file.path, at: "tar header at byte \(offset)", "size field '\(sizeText)' is not octal")
            }
            let dataStart = offset + 512
            _ = try file.slice(dataStart, size, "tar member at byte \(offset)")
            let type = header[156]
            var name = text(0 ..< 100)
            let prefix = text(345 ..< 500)
            if !prefix.isEmpty { name = prefix + "/" + name }
            switch type {
            case UInt8(ascii: "x"):
                // A pax extended header: "len key=value\n" records; only `path` matters here.
                let body = String(decoding: try file.slice(dataStart, size, "pax header"), as: UTF8.self)
                for line in body.split(separator: "\n") {
                    if let eq = line.firstIndex(of: "="), line[..<eq].hasSuffix(" path") { paxPath = String(line[line.index(after: eq)...]) }
                }
            case UInt8(ascii: "0"), 0:
                result[paxPath ?? name] = dataStart ..< dataStart + size
                paxPath = nil
            default:
                paxPath = nil
            }
            let (padded, overflow) = size.addingReportingOverflow(511)
            guard !overflow else { throw CheckpointError(.corrupt, path: file.path, at: "tar header at byte \(offset)", "size overflows") }
            offset = dataStart + padded / 512 * 512
        }
        return result
    }
}
