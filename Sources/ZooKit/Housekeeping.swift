import Checkpoint
import Foundation
import Models
#if canImport(Glibc)
import Glibc
#endif

/// `zoo list`, `zoo rm`, `zoo prune`: what is cached, and removing it.
extension Zoo {
    /// One line of `zoo list`: a catalog entry or a cached model, with what is cached of it.
    public struct ListRow: Sendable, Codable {
        /// The catalog or cache name.
        public var name: String
        /// The catalog entry's other names; empty for a model only in the cache.
        public var aliases: [String]
        /// The architecture's name (`resnet50`), or `?` when the entry names none.
        public var architecture: String
        /// torchvision's name for the weights (`IMAGENET1K_V2`), from the catalog.
        public var weights: String?
        /// ImageNet-1k top-1 accuracy in percent, from the catalog.
        public var acc1: Double?
        /// The published file's size in MiB, from the catalog.
        public var fileMB: Double?
        /// Whether the model is in the cache.
        public var cached: Bool
        /// Whether the last verification passed; nil when the model is not cached or was never verified.
        public var verified: Bool?
        /// All of a cached model's files: original, native file and probe reference.
        public var cachedBytes: Int?
        /// Size of the cached original file in bytes; nil when the model is not cached or its
        /// original is not kept (`--no-original`, `zoo prune --originals`).
        public var originalBytes: Int?
        /// Size of the cached native file in bytes (0 when there is none); nil when not cached.
        public var nativeBytes: Int?

        enum CodingKeys: String, CodingKey {
            case name, aliases, architecture, weights, acc1, cached, verified
            case fileMB = "file_mb"
            case cachedBytes = "cached_bytes"
            case originalBytes = "original_bytes"
            case nativeBytes = "native_bytes"
        }
    }

    /// Catalog entries and cached models whose name, alias or architecture matches `pattern`: a
    /// shell glob (`resnet*`), or a word they contain (see `Names.matches`).
    public func list(_ pattern: String? = nil) throws -> [ListRow] {
        let index = try cache.index()
        var rows = catalog.entries.map { e in
            let cached = index.models[e.name]
            return ListRow(name: e.name, aliases: e.aliases ?? [], architecture: e.architecture ?? e.resnet.map { Architecture.resnet($0).name } ?? "?",
                           weights: e.weights, acc1: e.acc1, fileMB: e.fileMB, cached: cached != nil,
                           verified: cached?.verification?.ok, cachedBytes: cached.map(bytes),
                           originalBytes: cached.flatMap { $0.original.map(size) }, nativeBytes: cached.map { $0.native.map(size) ?? 0 })
        }
        for (name, cached) in index.models.sorted(by: { $0.key < $1.key }) where !rows.contains(where: { $0.name == name }) {
            rows.append(ListRow(name: name, aliases: [], architecture: cached.architecture, weights: nil, acc1: nil, fileMB: nil,
                                cached: true, verified: cached.verification?.ok, cachedBytes: bytes(cached),
                                originalBytes: cached.original.map(size), nativeBytes: cached.native.map(size) ?? 0))
        }
        guard let pattern, !pattern.isEmpty else { return rows }
        return rows.filter { row in ([row.name, row.architecture] + row.aliases).contains { Names.matches($0, pattern) } }
    }

    /// Bytes of cached originals that are PyTorch's files too: the same file (device and inode)
    /// as one in `$TORCH_HOME/hub/checkpoints`, hard-linked by `pull` and `import`. They are on disk once but
    /// listed by both caches; removing them from one cache frees nothing while the other keeps them.
    public func bytesSharedWithTorch() throws -> Int {
        let torch = Cache.torchCheckpoints(environment)
        var torchFiles = Set<[UInt64]>()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: torch)) ?? [] {
            var info = stat()
            if lstat(torch + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG {
                torchFiles.insert([UInt64(info.st_dev), UInt64(info.st_ino)])
            }
        }
        guard !torchFiles.isEmpty else { return 0 }
        let originals = Set(try cache.index().models.values.compactMap { $0.original }.map(cache.path))
        return originals.reduce(0) { total, path in
            var info = stat()
            guard lstat(path, &info) == 0, torchFiles.contains([UInt64(info.st_dev), UInt64(info.st_ino)]) else { return total }
            return total + Int(info.st_size)
        }
    }

    /// The size of a cache file (0 when missing).
    func size(_ relative: String) -> Int { Self.bytes(of: [cache.path(relative)]) }

    func bytes(_ entry: CacheEntry) -> Int {
        [entry.original, entry.native, entry.reference].compactMap { $0 }.reduce(0) {
            $0 + (((try? FileManager.default.attributesOfItem(atPath: cache.path($1)))?[.size] as? Int) ?? 0)
        }
    }

    /// Removes a cached model's index entry, then its files; returns the paths removed. (A crash
    /// in between leaves files no entry refers to, which zoo prune removes.)
    public func remove(_ name: String) throws -> [String] {
        let canonical = try cacheName(name)
        return try cache.withLock(Cache.modelLock(canonical)) {
            let entry = try cache.updateIndex { index -> CacheEntry in
                guard let entry = index.models.removeValue(forKey: canonical) else {
                    throw ZooError(.usage, "\(name) is not cached", fix: "zoo list shows what is cached")
                }
                return entry
            }
            var paths = [entry.native, entry.reference].compactMap { $0 }
            for path in paths { try? FileManager.default.removeItem(atPath: cache.path(path)) }
            // The original may be another entry's, or about to be: an import under another name
            // may have moved the same file into place and not indexed it yet. So it goes only while
            // no pull or import runs and no entry uses it; otherwise zoo prune removes it later.
            if let original = entry.original,
               try cache.withLockIfFree(Cache.workLock, { try removeUnusedOriginal(original) }) == true {
                paths.append(original)
            }
            return paths.map(cache.path)
        }
    }

    /// Removes the original `original` (relative to the cache root) and its hash folder when it
    /// is empty, unless an index entry uses it; whether it went. Call holding the work lock
    /// exclusively: a pull or import may have moved the same file into place and not indexed it yet.
    func removeUnusedOriginal(_ original: String) throws -> Bool {
        guard try !cache.index().models.values.contains(where: { $0.original == original }) else { return false }
        try? FileManager.default.removeItem(atPath: cache.path(original))
        let folder = cache.path((original as NSString).deletingLastPathComponent)
        if ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).isEmpty {
            try? FileManager.default.removeItem(atPath: folder)
        }
        return true
    }

    /// Removes partial downloads, temporary files and files no index entry refers to, except what a
    /// live zoo process is working on: temporary files whose writer is alive, downloads whose lock is
    /// held, and (while any pull or import runs) complete files not indexed yet.
    /// - Parameter dryRun: remove nothing; return what would go.
    public func prune(dryRun: Bool = false) throws -> [String] {
        if let removed = try cache.withLockIfFree(Cache.workLock, { try prune(orphans: true, dryRun: dryRun) }) { return removed }
        return try prune(orphans: false, dryRun: dryRun)
    }

    /// Drops the kept originals of cached models that have a native file (`zoo prune --originals`):
    /// each entry stops recording its original (under the model's lock, so no verification of it
    /// is under way), then the files no entry uses any more are removed. An original that a model
    /// without a native file still loads from stays. Runs only while no pull or import does.
    /// - Parameters:
    ///   - dryRun: change nothing; return what would go.
    ///   - names: only these models' originals (all when nil).
    public func pruneOriginals(dryRun: Bool = false, only names: Set<String>? = nil) throws -> [String] {
        guard let outcome = try pruneOriginalsIfFree(dryRun: dryRun, only: names) else {
            throw ZooError(.io, "a pull or import is running in \(cache.root); originals are removed only while none is",
                           fix: "run zoo prune --originals again when it has finished")
        }
        return outcome
    }

    /// `pruneOriginals`, or nil without waiting when a pull or import is running.
    func pruneOriginalsIfFree(dryRun: Bool = false, only names: Set<String>? = nil) throws -> [String]? {
        try cache.withLockIfFree(Cache.workLock) { () throws -> [String] in
            let index = try cache.index()
            let needed = Set(index.models.values.filter { $0.native == nil }.compactMap(\.original))
            let dropped = index.models.values.filter { entry in
                guard let original = entry.original, let native = entry.native, names?.contains(entry.name) ?? true else { return false }
                return !needed.contains(original) && FileManager.default.fileExists(atPath: cache.path(native))
            }
            let originals = Set(dropped.compactMap(\.original)).sorted()
            if dryRun { return originals.map(cache.path).filter { FileManager.default.fileExists(atPath: $0) } }
            for entry in dropped {
                try cache.withLock(Cache.modelLock(entry.name)) {
                    try cache.updateIndex { index in
                        if index.models[entry.name]?.original == entry.original { index.models[entry.name]?.original = nil }
                    }
                }
            }
            return try originals.filter { try FileManager.default.fileExists(atPath: cache.path($0)) && removeUnusedOriginal($0) }.map(cache.path)
        }
    }

    /// The files `remove(name)` would remove, removing nothing: the native file, the reference,
    /// and the original unless another cached model uses it.
    public func removal(_ name: String) throws -> [String] {
        let canonical = try cacheName(name)
        let index = try cache.index()
        guard let entry = index.models[canonical] else {
            throw ZooError(.usage, "\(name) is not cached", fix: "zoo list shows what is cached")
        }
        let shared = entry.original != nil && index.models.contains { $0.key != canonical && $0.value.original == entry.original }
        return ([entry.native, entry.reference] + (shared ? [] : [entry.original])).compactMap { $0 }.map(cache.path)
            .filter { FileManager.default.fileExists(atPath: $0) }
    }

    /// The bytes of the files at `paths` (those that exist).
    public static func bytes(of paths: [String]) -> Int {
        paths.reduce(0) { $0 + (((try? FileManager.default.attributesOfItem(atPath: $1))?[.size] as? Int) ?? 0) }
    }

    private func prune(orphans: Bool, dryRun: Bool) throws -> [String] {
        try cache.withLock(Cache.indexLock) {
            let index = try cache.index()
            let referenced = Set(index.models.values.flatMap { [$0.original, $0.native, $0.reference].compactMap { $0 } }.map(cache.path))
            var removed: [String] = []
            func remove(_ path: String) {
                if dryRun { removed.append(path) } else if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
            }
            let hashFolders = ((try? FileManager.default.contentsOfDirectory(atPath: cache.originals)) ?? []).map { cache.originals + "/" + $0 }
            for folder in [cache.root] + hashFolders + [cache.native, cache.references, cache.downloads] {
                for item in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                    let path = folder + "/" + item
                    if referenced.contains(path) { continue }
                    if let pid = AtomicFile.temporaryOwner(item) {
                        if AtomicFile.isDead(pid) { remove(path) }
                    } else if folder == cache.downloads {
                        let file = item.hasSuffix(".partial") ? String(item.dropLast(".partial".count)) : item
                        _ = try cache.withLockIfFree(Cache.downloadLock(file)) { remove(path) }
                    } else if orphans && folder != cache.root {
                        remove(path)
                    }
                }
            }
            // Empty hash folders, unless an import may be about to fill one.
            if orphans && !dryRun {
                for folder in hashFolders where ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).isEmpty {
                    try? FileManager.default.removeItem(atPath: folder)
                }
            }
            return removed
        }
    }
}
