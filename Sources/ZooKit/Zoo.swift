import Checkpoint
import Foundation
import Models
#if canImport(Glibc)
import Glibc
#endif

/// The model zoo: the catalog, the cache, downloads, imports and verification.
///
/// ```swift
/// import ZooKit
///
/// let model = try Zoo.pretrained("resnet50")        // pulls, converts and verifies on first use
/// let logits = try model.forward(batch)             // batch: Tensor [N, 3, 224, 224]
/// let mine = try Zoo.load(path: "finetuned.pth")    // any checkpoint, architecture detected
/// ```
public struct Zoo: Sendable {
    public var catalog: Catalog
    public var cache: Cache
    public var downloader: Downloader
    /// Where `ZOO_MIRROR`, `ZOO_OFFLINE`, `TORCH_HOME` and friends are read from.
    public var environment: [String: String]

    /// - Parameters:
    ///   - catalog: defaults to the shipped catalog extended by `$ZOO_CATALOG`.
    ///   - cache: defaults to `$ZOO_HOME`, `$XDG_CACHE_HOME/zoo` or `~/.cache/zoo`.
    ///   - progress: draw download progress on stderr when it is a terminal.
    public init(catalog: Catalog? = nil, cache: Cache? = nil, progress: Bool = true,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.environment = environment
        self.catalog = try catalog ?? Catalog.standard()
        self.cache = try cache ?? Cache(root: Cache.defaultRoot(environment))
        self.downloader = try Downloader(progress: progress, environment: environment)
    }

    // MARK: The one-line API

    /// A ready model with pretrained weights: from the cache, or pulled, converted and verified first.
    public static func pretrained(_ name: String) throws -> Model { try Zoo().pretrained(name) }

    /// A model from any checkpoint file zoo reads, its architecture detected (or named).
    public static func load(path: String, architecture: String? = nil) throws -> Model {
        try Model.load(try Checkpoint(path: path), architecture: architecture)
    }

    /// Every catalog entry.
    public static func models() throws -> [CatalogEntry] { try Zoo().catalog.entries }

    public func pretrained(_ name: String) throws -> Model {
        let entry = try cachedOrPull(name)
        let model = try architecture(of: entry).build()
        try model.load(try Checkpoint(path: cache.path(entry.native ?? entry.original)))
        return model
    }

    /// Cache names become file names: `--name ../../x` must not write outside the cache.
    static func checkName(_ name: String) throws {
        guard CatalogEntry.isSafeName(name) else {
            throw ZooError(.usage, "'\(name)' cannot name a cached model: \(CatalogEntry.safeNameRule)", fix: "pass --name NAME")
        }
    }

    /// The cache name `name` refers to: a cached model of exactly that name, else the catalog's
    /// canonical name for it (`resnet50` -> `resnet50.imagenet1k_v2`), else `name` itself.
    public func cacheName(_ name: String) throws -> String {
        if try cache.entry(name) != nil { return name }
        return (try? catalog.entry(name).name) ?? name
    }

    /// The cache entry for `name`, pulling it first when it is not cached.
    func cachedOrPull(_ name: String) throws -> CacheEntry {
        if let cached = try cache.entry(try cacheName(name)), FileManager.default.fileExists(atPath: cache.path(cached.original)) {
            return cached
        }
        return try pull(name).entry
    }

    func architecture(of entry: CacheEntry) throws -> Architecture {
        var architecture = try entry.resnet.map { Architecture.resnet($0) } ?? Architecture.named(entry.architecture)
        architecture.numClasses = entry.numClasses
        return architecture
    }

    // MARK: Pull

    public struct PullReport: Sendable, Codable {
        public var entry: CacheEntry
        /// Where the bytes came from: `cache`, `torch cache`, `bundled`, `download`.
        public var origin: String
        public var downloadedBytes: Int
        public var resumedFrom: Int
        public var verification: Verification?

        enum CodingKeys: String, CodingKey {
            case entry, origin, verification
            case downloadedBytes = "downloaded_bytes"
            case resumedFrom = "resumed_from"
        }
    }

    /// Fetches a catalog model (or any file with `url`, under `name`), checks its hash, imports it.
    /// Files already in PyTorch's cache or shipped with zoo are used instead of downloading.
    public func pull(_ name: String, url: String? = nil) throws -> PullReport {
        let entry: CatalogEntry
        if let url {
            guard let parsed = URL(string: url), parsed.scheme != nil else { throw ZooError(.usage, "not a URL: \(url)") }
            let file = parsed.lastPathComponent
            try Self.checkName(name)
            guard CatalogEntry.isSafeName(file) else {
                throw ZooError(.usage, "\(url) ends in '\(file)', which cannot name a file in the cache: \(CatalogEntry.safeNameRule)")
            }
            entry = CatalogEntry(name: name, file: file, url: url, sha256Prefix: HashPrefix.of(fileName: file))
        } else {
            entry = try catalog.entry(name)
        }
        guard entry.hasWeights else {
            throw ZooError(.usage, "\(entry.name) has no published weights (\(entry.note ?? "architecture only"))",
                           fix: "zoo summary \(entry.name) shows its architecture")
        }
        // Shared work lock (prune leaves this pull's files alone), then the model's lock: a second
        // pull of the same model waits here and then finds it cached.
        return try cache.withLock(Cache.workLock, shared: true) {
            try cache.withLock(Cache.modelLock(entry.name)) {
                if let cached = try cache.entry(entry.name), FileManager.default.fileExists(atPath: cache.path(cached.original)),
                   url == nil || cached.source == url {
                    return PullReport(entry: cached, origin: "cache", downloadedBytes: 0, resumedFrom: 0, verification: cached.verification)
                }
                // The download's lock stays held until the file has moved into originals/.
                return try cache.withLock(Cache.downloadLock(entry.file ?? entry.name)) {
                    let (original, origin, download) = try fetchOriginal(entry)
                    let imported = try importLocked(original, name: entry.name, catalogEntry: url == nil ? entry : nil,
                                                    architecture: nil, force: false, source: origin == "download" ? (download?.url ?? "") : origin,
                                                    copy: origin != "download")
                    return PullReport(entry: imported, origin: origin, downloadedBytes: download?.result.bytes ?? 0,
                                      resumedFrom: download?.result.resumedFrom ?? 0, verification: imported.verification)
                }
            }
        }
    }

    /// Finds or downloads the original file of `entry`.
    private func fetchOriginal(_ entry: CatalogEntry) throws -> (path: String, origin: String, download: (url: String, result: Downloader.Result)?) {
        if let bundled = catalog.bundledPath(entry) {
            guard FileManager.default.fileExists(atPath: bundled) else { throw ZooError(.io, "the bundled file \(bundled) is missing") }
            return (bundled, "bundled", nil)
        }
        guard let file = entry.file else { throw ZooError(.usage, "\(entry.name) has no file") }
        let torchCopy = Cache.torchCheckpoints(environment) + "/" + file
        if FileManager.default.fileExists(atPath: torchCopy), let expected = entry.expectedHash,
           (try? SHA256.file(torchCopy))?.hasPrefix(expected) == true {
            return (torchCopy, "torch cache", nil)
        }
        guard var address = entry.url else { throw ZooError(.usage, "\(entry.name) has no URL") }
        if let mirror = environment["ZOO_MIRROR"], !mirror.isEmpty, entry.url != nil {
            address = (mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror) + "/" + file
        }
        if environment["ZOO_OFFLINE"] == "1" {
            throw ZooError(.network, "\(entry.name) is not cached and ZOO_OFFLINE=1 forbids downloading \(address)",
                           fix: "unset ZOO_OFFLINE, put \(file) in \(Cache.torchCheckpoints(environment)), or zoo import a local copy")
        }
        guard let url = URL(string: address) else { throw ZooError(.usage, "not a URL: \(address)") }
        let destination = cache.downloads + "/" + file
        if let kept = try keptOriginal(file, expected: entry.expectedHash) {
            // An earlier pull downloaded it and was stopped before the index recorded it.
            let size = ((try? FileManager.default.attributesOfItem(atPath: kept))?[.size] as? Int) ?? 0
            return (kept, "download", (address, Downloader.Result(sha256: "", bytes: size, resumedFrom: size, requests: 0)))
        }
        let result = try downloader.fetch(url, to: destination, partial: destination + ".partial", expectedHash: entry.expectedHash)
        return (destination, "download", (address, result))
    }

    /// A complete copy of `file` already under `originals/` that no entry refers to (a pull stopped
    /// between moving it there and recording it), when its SHA-256 matches `expected`.
    private func keptOriginal(_ file: String, expected: String?) throws -> String? {
        guard let expected = expected?.lowercased(), expected.count >= 8 else { return nil }
        for folder in (try? FileManager.default.contentsOfDirectory(atPath: cache.originals)) ?? []
        where folder.hasPrefix(expected.prefix(16)) || expected.hasPrefix(folder) {
            let path = cache.originals + "/" + folder + "/" + file
            if FileManager.default.fileExists(atPath: path), (try? SHA256.file(path))?.hasPrefix(expected) == true { return path }
        }
        return nil
    }

    // MARK: Import

    /// Copies a checkpoint into the cache, converts it to the native format and verifies it.
    /// - Parameters:
    ///   - name: the cache name (default: the catalog name of a catalog file, else the file's stem).
    ///   - architecture: a named architecture; detected from the keys when nil.
    ///   - force: import even when the hash prefix in the file name does not match.
    public func importFile(_ path: String, name: String? = nil, architecture: String? = nil, force: Bool = false) throws -> CacheEntry {
        let file = URL(fileURLWithPath: path).lastPathComponent
        let catalogEntry = catalog.entries.first { $0.file == file }
        let name = name ?? catalogEntry?.name ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        try Self.checkName(name)
        return try cache.withLock(Cache.workLock, shared: true) {
            try cache.withLock(Cache.modelLock(name)) {
                try importLocked(path, name: name, catalogEntry: catalogEntry, architecture: architecture, force: force,
                                 source: URL(fileURLWithPath: path).standardized.path, copy: true)
            }
        }
    }

    private func importLocked(_ path: String, name: String, catalogEntry: CatalogEntry?, architecture: String?, force: Bool,
                              source: String, copy: Bool) throws -> CacheEntry {
        let checkpoint = try Checkpoint(path: path)
        let sha = try SHA256.file(path)
        let file = URL(fileURLWithPath: path).lastPathComponent
        if let expected = catalogEntry?.expectedHash ?? HashPrefix.of(fileName: file), !sha.hasPrefix(expected.lowercased()), !force {
            throw ZooError(.failed, "\(file): SHA-256 is \(sha) but \(catalogEntry != nil ? "the catalog" : "the file name") expects \(expected)...",
                           fix: "the file is damaged or not the published one; re-download it, or pass --force to import it anyway")
        }
        let arch: Architecture
        if let architecture {
            arch = try Architecture.named(architecture).withClassCount(of: checkpoint)
        } else if let catalogEntry, catalogEntry.architecture != nil || catalogEntry.resnet != nil {
            arch = try catalogEntry.resolvedArchitecture().withClassCount(of: checkpoint)
        } else {
            arch = try Architecture.detect(checkpoint)
        }
        let model = arch.build()
        try model.load(checkpoint)

        // The original under its own name, in a folder named by its hash, so that two different
        // files of the same name never replace each other; renamed into place when complete.
        let original = "originals/\(sha.prefix(16))/" + file
        try FileManager.default.createDirectory(atPath: cache.path("originals/\(sha.prefix(16))"), withIntermediateDirectories: true)
        if URL(fileURLWithPath: path).standardized.path != URL(fileURLWithPath: cache.path(original)).standardized.path {
            if copy {
                try copyFile(path, to: cache.path(original))
            } else if rename(path, cache.path(original)) != 0 {
                throw ZooError(.io, "cannot move \(path) into the cache: \(String(cString: strerror(errno)))")
            }
        }
        // The native file and the reference are named by the native file's own hash, so that a
        // model imported again never overwrites the files its current index entry points at: a
        // crash before the index update leaves the old version whole (and the new files orphans).
        let staging = "native/.\(name).incoming.safetensors"
        _ = try NativeWriter.write(try Checkpoint(path: cache.path(original)), to: cache.path(staging),
                                   options: .init(architecture: arch.name, version: zooVersion, sourceSHA256: sha))
        let nativeSHA = try SHA256.file(cache.path(staging))
        let native = "native/\(name).\(nativeSHA.prefix(12)).safetensors"
        guard rename(cache.path(staging), cache.path(native)) == 0 else {
            throw ZooError(.io, "cannot move \(cache.path(staging)) to \(cache.path(native)): \(String(cString: strerror(errno)))")
        }
        AtomicFile.syncFolder(cache.native)

        // The probe reference: this model's output on the fixed probe input, from the original file.
        let probe = Self.probeShape(arch, catalogEntry: catalogEntry)
        let reference = "references/\(name).\(nativeSHA.prefix(12)).npy"
        try NPY.write(try model.forward(Synthetic.input(probe)), to: cache.path(reference))

        var entry = CacheEntry(name: name, source: source, original: original, sha256: sha, native: native, nativeSHA256: nativeSHA,
                               architecture: arch.name, resnet: Self.customResNet(arch), numClasses: arch.numClasses,
                               importedAt: Self.now(), probeShape: probe, reference: reference, referenceSource: "zoo",
                               verification: nil)
        entry.verification = try verifyCached(entry, againstTorch: false).verification
        let foreign = checkpoint.foreignSymbols.map(\.name)
        entry.foreignSymbols = foreign.isEmpty ? nil : foreign
        let recorded = entry
        let previous = try cache.updateIndex { index -> CacheEntry? in
            defer { index.models[name] = recorded }
            return index.models[name]
        }
        // The replaced version's native file and reference (named after this model, so no other
        // entry uses them). Its original may be shared; zoo prune removes it when it is not.
        for old in [previous?.native, previous?.reference].compactMap({ $0 }) where old != native && old != reference {
            unlink(cache.path(old))
        }
        return entry
    }

    /// A ResNet configuration that has no name, so the index can rebuild it.
    static func customResNet(_ architecture: Architecture) -> ResNetConfig? {
        guard case .resnet(let config) = architecture, architecture.name.hasPrefix("resnet(") else { return nil }
        return config
    }

    /// The fixed probe input's shape: small but exercising every layer.
    static func probeShape(_ architecture: Architecture, catalogEntry: CatalogEntry?) -> [Int] {
        if let shape = catalogEntry?.inputShape { return [1] + shape }
        switch architecture {
        case .tutorialVGG: return [1, 3, 224, 224]
        case .vgg: return [1, 3, 32, 32]
        case .resnet: return [1, 3, 64, 64]
        }
    }

    private func copyFile(_ source: String, to destination: String) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw ZooError(.io, "cannot read \(source)") }
        defer { try? input.close() }
        try AtomicFile.write(to: destination) { output in
            while let block = try input.read(upToCount: 8 << 20), !block.isEmpty { try output.write(contentsOf: block) }
        }
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    // MARK: Listing and housekeeping

    public struct ListRow: Sendable, Codable {
        public var name: String
        public var aliases: [String]
        public var architecture: String
        public var weights: String?
        public var acc1: Double?
        public var fileMB: Double?
        public var cached: Bool
        public var verified: Bool?
        public var cachedBytes: Int?

        enum CodingKeys: String, CodingKey {
            case name, aliases, architecture, weights, acc1, cached, verified
            case fileMB = "file_mb"
            case cachedBytes = "cached_bytes"
        }
    }

    /// Catalog entries and cached models whose name contains `pattern`.
    public func list(_ pattern: String? = nil) throws -> [ListRow] {
        let index = try cache.index()
        var rows = catalog.entries.map { e in
            let cached = index.models[e.name]
            return ListRow(name: e.name, aliases: e.aliases ?? [], architecture: e.architecture ?? e.resnet.map { Architecture.resnet($0).name } ?? "?",
                           weights: e.weights, acc1: e.acc1, fileMB: e.fileMB, cached: cached != nil,
                           verified: cached?.verification?.ok, cachedBytes: cached.map(bytes))
        }
        for (name, cached) in index.models.sorted(by: { $0.key < $1.key }) where !rows.contains(where: { $0.name == name }) {
            rows.append(ListRow(name: name, aliases: [], architecture: cached.architecture, weights: nil, acc1: nil, fileMB: nil,
                                cached: true, verified: cached.verification?.ok, cachedBytes: bytes(cached)))
        }
        guard let pattern, !pattern.isEmpty else { return rows }
        return rows.filter { row in ([row.name, row.architecture] + row.aliases).contains { $0.localizedCaseInsensitiveContains(pattern) } }
    }

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
            let removedOriginal = try cache.withLockIfFree(Cache.workLock) { () -> Bool in
                guard try !cache.index().models.values.contains(where: { $0.original == entry.original }) else { return false }
                try? FileManager.default.removeItem(atPath: cache.path(entry.original))
                let folder = cache.path((entry.original as NSString).deletingLastPathComponent)
                if ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).isEmpty {
                    try? FileManager.default.removeItem(atPath: folder)
                }
                return true
            } ?? false
            if removedOriginal { paths.append(entry.original) }
            return paths.map(cache.path)
        }
    }

    /// Removes partial downloads, temporary files and files no index entry refers to, except what a
    /// live zoo process is working on: temporary files whose writer is alive, downloads whose lock is
    /// held, and (while any pull or import runs) complete files not indexed yet.
    public func prune() throws -> [String] {
        if let removed = try cache.withLockIfFree(Cache.workLock, { try prune(orphans: true) }) { return removed }
        return try prune(orphans: false)
    }

    private func prune(orphans: Bool) throws -> [String] {
        try cache.withLock(Cache.indexLock) {
            let index = try cache.index()
            let referenced = Set(index.models.values.flatMap { [$0.original, $0.native, $0.reference].compactMap { $0 } }.map(cache.path))
            var removed: [String] = []
            func remove(_ path: String) {
                if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
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
            if orphans {
                for folder in hashFolders where ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).isEmpty {
                    try? FileManager.default.removeItem(atPath: folder)
                }
            }
            return removed
        }
    }
}

/// torchvision's file-name convention `name-<first hex digits of the SHA-256>.pth`.
public enum HashPrefix {
    /// The hash prefix of a file name, when it carries one of at least 8 hex digits.
    public static func of(fileName: String) -> String? {
        let stem = fileName.split(separator: ".").first.map(String.init) ?? fileName
        guard let dash = stem.lastIndex(of: "-") else { return nil }
        let digits = stem[stem.index(after: dash)...]
        guard digits.count >= 8, digits.count <= 64, digits.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        return String(digits)
    }
}

/// zoo's version, recorded in native files.
public let zooVersion = "0.1.0"
