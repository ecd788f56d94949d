import Checkpoint
import Foundation
import Models
#if canImport(Glibc)
import Glibc
#endif

/// zoo's cache: `$ZOO_HOME`, else `$XDG_CACHE_HOME/zoo`, else `~/.cache/zoo`.
///
/// ```
/// CACHEDIR.TAG
/// index.json            what is cached, its hashes, architecture, last verification
/// originals/<sha16>/<file>    files as published (resnet18-f37072fd.pth), by the first 16 hex digits of their SHA-256
/// native/<name>.<sha12>.safetensors   by the first 12 hex digits of the native file's own SHA-256
/// references/<name>.<sha12>.npy      probe outputs recorded at import (same digits)
/// downloads/<file>.partial   interrupted downloads, resumed by the next pull
/// locks/                the index's lock, one per model, one per download, and the work lock
/// ```
/// Every file reaches its final name by rename after it is complete, so a crash leaves at worst
/// a temporary file (`.<name>.<pid>.<random>.partial`), a partial download, or a complete file no
/// index entry refers to yet; `zoo prune` removes those once no live process owns them. The index
/// is rewritten atomically under its lock, and only ever points at complete files: a model that is
/// imported again gets new file names, and its old files are removed after the index moved on.
public struct Cache: Sendable {
    /// The cache's folder; every path the index stores is relative to it.
    public let root: String

    /// Opens the cache at `root` (by default `defaultRoot()`), creating its folders and `CACHEDIR.TAG`.
    ///
    /// - Throws: `ZooError` of kind `.io` when a folder cannot be created; the fix suggests `ZOO_HOME`.
    public init(root: String? = nil) throws {
        self.root = root ?? Cache.defaultRoot()
        for folder in [self.root, originals, native, references, downloads, locks] {
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
                throw ZooError(.io, "cannot create the cache folder \(folder): \(error.localizedDescription)",
                               fix: "set ZOO_HOME to a writable folder")
            }
        }
        let tag = self.root + "/CACHEDIR.TAG"
        if !FileManager.default.fileExists(atPath: tag) {
            try? AtomicFile.write(Array("Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by zoo.\n# For information about cache directory tags see https://bford.info/cachedir/\n".utf8), to: tag)
        }
    }

    /// The cache folder `environment` selects: `$ZOO_HOME`, else `$XDG_CACHE_HOME/zoo`, else
    /// `~/.cache/zoo` (an empty `ZOO_HOME` or `XDG_CACHE_HOME` counts as unset).
    public static func defaultRoot(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["ZOO_HOME"], !home.isEmpty { return home }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/zoo" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.cache/zoo"
    }

    /// PyTorch's download cache: `$TORCH_HOME/hub/checkpoints`, `$TORCH_HOME` defaulting to
    /// `$XDG_CACHE_HOME/torch`, then `~/.cache/torch`.
    public static func torchCheckpoints(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let torchHome = environment["TORCH_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 + "/torch" }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.cache/torch"
        return torchHome + "/hub/checkpoints"
    }

    /// `originals/`: the files as published, one folder per hash.
    public var originals: String { root + "/originals" }
    /// `native/`: the safetensors conversions.
    public var native: String { root + "/native" }
    /// `references/`: probe outputs recorded at import, as `.npy`.
    public var references: String { root + "/references" }
    /// `downloads/`: downloads under way or interrupted (`<file>.partial`).
    public var downloads: String { root + "/downloads" }
    var locks: String { root + "/locks" }
    var indexPath: String { root + "/index.json" }

    /// The lock every pull and import holds shared while it works, and `zoo prune` exclusively
    /// before it removes complete files no index entry refers to (they may be about to be indexed).
    public static let workLock = "work"
    static let indexLock = "index"
    /// The lock of one model's pulls, imports, verifications and removal.
    public static func modelLock(_ name: String) -> String { "model." + name }
    /// The lock of `downloads/<file>` and `downloads/<file>.partial`, held from the first byte
    /// downloaded until the file has moved into `originals/`.
    public static func downloadLock(_ file: String) -> String { "download." + file }

    private func openLock(_ name: String) throws -> (fd: Int32, path: String) {
        let safe = name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "_" }
        let path = locks + "/" + String(safe) + ".lock"
        let fd = Cache.openRegularFile(path)
        guard fd >= 0 else { throw ZooError(.io, "cannot open lock \(path): \(String(cString: strerror(errno)))") }
        return (fd, path)
    }

    /// Opens (or creates) a regular file for reading and writing without following a link: a link,
    /// folder or anything else planted at `path` is removed and a new file made in its place.
    /// Returns -1 with `errno` set on failure.
    static func openRegularFile(_ path: String) -> Int32 {
        var fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if fd < 0 && errno == ELOOP || fd >= 0 && fileType(path) != S_IFREG {
            if fd >= 0 { close(fd) }
            if fileType(path) == S_IFDIR { rmdir(path) } else { unlink(path) }
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        }
        return fd
    }

    /// `S_IFREG`, `S_IFLNK`, ... of `path` itself (a link is not followed), nil when nothing is there.
    static func fileType(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    /// Runs `body` holding a lock named `name`, shared by every zoo process using this cache (an
    /// `flock` on `locks/<name>.lock`, released if the process dies): exclusive, or shared with
    /// other shared holders.
    ///
    /// - Parameters:
    ///   - name: The lock's name (`Cache.workLock`, `Cache.modelLock(_:)`, ...).
    ///   - shared: Whether to take the lock shared rather than exclusive.
    ///   - body: The work to do while holding it.
    /// - Throws: What `body` throws, or a `ZooError` of kind `.io` when the lock file cannot be
    ///   opened or locked.
    public func withLock<R>(_ name: String, shared: Bool = false, _ body: () throws -> R) throws -> R {
        let (fd, path) = try openLock(name)
        defer { close(fd) }
        while flock(fd, shared ? LOCK_SH : LOCK_EX) != 0 {
            guard errno == EINTR else { throw ZooError(.io, "cannot lock \(path): \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Runs `body` holding the exclusive lock `name` when nobody else holds it; nil (without
    /// running `body`) when someone does.
    public func withLockIfFree<R>(_ name: String, _ body: () throws -> R) throws -> R? {
        let (fd, path) = try openLock(name)
        defer { close(fd) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EWOULDBLOCK { return nil }
            guard errno == EINTR else { throw ZooError(.io, "cannot lock \(path): \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    // MARK: The index

    /// The index as it is on disk now (empty when there is none yet); read without the lock, it is
    /// always a complete version because it is only ever replaced by rename.
    ///
    /// - Throws: `ZooError` of kind `.io` when `index.json` cannot be decoded.
    public func index() throws -> CacheIndex {
        guard let data = FileManager.default.contents(atPath: indexPath) else { return CacheIndex() }
        do { return try JSONDecoder().decode(CacheIndex.self, from: data) } catch {
            throw ZooError(.io, "the cache index \(indexPath) is damaged: \(Catalog.describe(error))",
                           fix: "move it away; zoo verify re-checks what is cached")
        }
    }

    /// Reads, changes and atomically rewrites the index under its lock.
    @discardableResult
    public func updateIndex<R>(_ body: (inout CacheIndex) throws -> R) throws -> R {
        try withLock(Cache.indexLock) {
            var index = try self.index()
            let result = try body(&index)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(Array(try encoder.encode(index)), to: indexPath)
            return result
        }
    }

    /// The index entry of the model `name`; nil when it is not cached.
    public func entry(_ name: String) throws -> CacheEntry? { try index().models[name] }

    /// Absolute path of a path stored relative to the cache root.
    public func path(_ relative: String) -> String { relative.hasPrefix("/") ? relative : root + "/" + relative }

    /// Bytes used by everything in the cache.
    public func totalBytes() -> Int {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return 0 }
        var total = 0
        while let item = walker.nextObject() as? String {
            let attributes = try? FileManager.default.attributesOfItem(atPath: root + "/" + item)
            if attributes?[.type] as? FileAttributeType == .typeRegular { total += (attributes?[.size] as? Int) ?? 0 }
        }
        return total
    }
}

/// What the cache holds, by model name.
public struct CacheIndex: Codable, Sendable {
    /// The index format's version (1).
    public var version = 1
    /// The cached models, by name.
    public var models: [String: CacheEntry] = [:]
    /// Full SHA-256 values pinned on first use, by catalog file name, for catalog files whose
    /// full hash the catalog does not give (`HashPin.firstUse`).
    public var pins: [String: String] = [:]

    /// An empty index, as a new cache has.
    public init() {}

    enum CodingKeys: String, CodingKey { case version, models, pins }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        models = try c.decode([String: CacheEntry].self, forKey: .models)
        pins = try c.decodeIfPresent([String: String].self, forKey: .pins) ?? [:]  // absent before pins existed
    }
}

/// One cached model: where its files are, their hashes, its architecture and its last verification.
public struct CacheEntry: Codable, Sendable {
    /// The model's name: a catalog name (`resnet18`) or the name it was imported under.
    public var name: String
    /// Where the file came from: a URL, a local path, the PyTorch cache or zoo's bundle.
    public var source: String
    /// The original file, relative to the cache root; nil when none is kept (`--no-original`,
    /// `zoo prune --originals`): the native file was made from it and verified, but
    /// `verify --against-torch` and converting again need it fetched again.
    public var original: String?
    /// The SHA-256 of the original file, 64 lowercase hex digits.
    public var sha256: String
    /// The native (safetensors) file, relative to the cache root, and its SHA-256.
    public var native: String?
    /// The SHA-256 of the native file; nil when there is none.
    public var nativeSHA256: String?
    /// The architecture's name and, for configurations without one, the configuration.
    public var architecture: String
    /// The configuration, for a ResNet without a name of its own (such as a narrow one); nil otherwise.
    public var resnet: ResNetConfig?
    /// Outputs of the model's classifier.
    public var numClasses: Int
    /// When the model was imported, in ISO 8601 (UTC).
    public var importedAt: String
    /// The probe input's shape (`[N, C, H, W]`); nil when no probe was recorded.
    public var probeShape: [Int]?
    /// The recorded probe output (`references/<name>.<sha12>.npy`); nil when none was recorded.
    public var reference: String?
    /// Who computed the reference output: `torch` or `zoo`.
    public var referenceSource: String?
    /// The result of the last `zoo verify`; nil when the model was never verified.
    public var verification: Verification?
    /// Symbols of the original outside torch's weights-only allow-list (inert in zoo, imported
    /// by `torch.load(weights_only=False)`); nil when there are none.
    public var foreignSymbols: [String]? = nil

    /// The file a model loads from: the native file, else the original.
    public var loadable: String? { native ?? original }

    enum CodingKeys: String, CodingKey {
        case name, source, original, sha256, native, architecture, resnet, verification, reference
        case foreignSymbols = "foreign_symbols"
        case nativeSHA256 = "native_sha256"
        case numClasses = "num_classes"
        case importedAt = "imported_at"
        case probeShape = "probe_shape"
        case referenceSource = "reference_source"
    }
}

/// The result of `zoo verify`: each check with what it found.
public struct Verification: Codable, Sendable {
    /// One check `zoo verify` ran.
    public struct Check: Codable, Sendable {
        /// What was checked (`integrity: original`, `forward`).
        public var name: String
        /// Whether the check passed.
        public var ok: Bool
        /// What the check found, in words: the hashes compared, the largest difference seen.
        public var detail: String
    }

    /// True when every check passed.
    public var ok: Bool { checks.allSatisfy(\.ok) }
    /// When the checks ran, in ISO 8601 (UTC).
    public var time: String
    /// The checks, in the order they ran.
    public var checks: [Check]

    enum CodingKeys: String, CodingKey { case ok, time, checks }

    /// A verification from its checks, run at `time` (ISO 8601).
    public init(time: String, checks: [Check]) {
        self.time = time
        self.checks = checks
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        time = try c.decode(String.self, forKey: .time)
        checks = try c.decode([Check].self, forKey: .checks)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ok, forKey: .ok)
        try c.encode(time, forKey: .time)
        try c.encode(checks, forKey: .checks)
    }
}
