import Checkpoint
import Foundation
import Models

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
    /// The models zoo knows.
    public var catalog: Catalog
    /// Where pulled and imported models are kept.
    public var cache: Cache
    /// Fetches files, with the limits `environment` set.
    public var downloader: Downloader
    /// Where `ZOO_MIRROR`, `ZOO_OFFLINE`, `TORCH_HOME` and friends are read from.
    public var environment: [String: String]

    /// - Parameters:
    ///   - catalog: defaults to the shipped catalog extended by `$ZOO_CATALOG`.
    ///   - cache: defaults to `$ZOO_HOME`, `$XDG_CACHE_HOME/zoo` or `~/.cache/zoo`.
    ///   - progress: draw download progress on stderr when it is a terminal.
    ///   - environment: where `ZOO_MIRROR`, `ZOO_OFFLINE`, `TORCH_HOME` and the download limits are read from.
    public init(catalog: Catalog? = nil, cache: Cache? = nil, progress: Bool = true,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.environment = environment
        self.catalog = try catalog ?? Catalog.standard()
        self.cache = try cache ?? Cache(root: Cache.defaultRoot(environment))
        self.downloader = try Downloader(progress: progress, environment: environment)
    }

    // MARK: The one-line API

    /// A ready model with pretrained weights: from the cache, or pulled, converted and verified first.
    public static func pretrained(_ name: String) throws -> PretrainedModel { try Zoo().pretrained(name) }

    /// A model from any checkpoint file zoo reads, its architecture detected (or named).
    public static func load(path: String, architecture: String? = nil) throws -> Model {
        try Model.load(try CheckpointFile(path: path), architecture: architecture)
    }

    /// Every catalog entry.
    public static func models() throws -> [CatalogEntry] { try Zoo().catalog.entries }

    /// A ready model with pretrained weights for `name` (a catalog name or alias, or a cached model's
    /// name): from this zoo's cache, or pulled, converted and verified first. Its weights are
    /// prepared for one image of the entry's crop size on another thread
    /// (`Model.prepareInBackground(for:)`), so that a first forward a moment later runs at full speed.
    ///
    /// - Throws: `ZooError` when the name is unknown, the download or a check fails; `CheckpointError`
    ///   or `ModelError` when the cached file cannot be loaded.
    public func pretrained(_ name: String) throws -> PretrainedModel { try pretrained(name, prepare: true) }

    /// `pretrained(_:)`, without preparing the weights when `prepare` is false: for a caller whose
    /// inputs are not single images of the crop size (batches of 4 or more run other Winograd
    /// layouts on 7x7 maps), who calls `model.prepareInBackground(for:)` with its own shape.
    public func pretrained(_ name: String, prepare: Bool) throws -> PretrainedModel {
        let entry = try cachedOrPull(name)
        let model = try architecture(of: entry).build()
        guard let file = entry.loadable else {
            throw ZooError(.io, "\(entry.name) is cached without a file to load", fix: fetchAgain(entry))
        }
        try model.load(try CheckpointFile(path: cache.path(file)))
        let pretrained = try PretrainedModel(model, cacheEntry: entry, catalog: catalog)
        // The weights are laid out for the kernels while the caller makes its first input.
        let side = pretrained.preprocessing.crop
        if prepare { model.prepareInBackground(for: [1, 3, side, side]) }
        return pretrained
    }

    /// Cache names become file names: `--name ../../x` must not write outside the cache.
    static func checkName(_ name: String, fix: String = "pass --name NAME") throws {
        guard CatalogEntry.isSafeName(name) else {
            throw ZooError(.usage, "'\(name)' cannot name a cached model: \(CatalogEntry.safeNameRule)", fix: fix)
        }
    }

    /// The cache name `name` refers to: a cached model of exactly that name, else the catalog's
    /// canonical name for it (`resnet50` -> `resnet50.imagenet1k_v2`), else `name` itself.
    public func cacheName(_ name: String) throws -> String {
        cacheName(name, in: try cache.index())
    }

    func cacheName(_ name: String, in index: CacheIndex) -> String {
        if index.models[name] != nil { return name }
        if let entry = try? catalog.entry(name) { return entry.name }
        // Case-insensitive, like the catalog: `Digits_ResNet` is `digits_resnet`.
        return index.models.keys.first { $0.lowercased() == name.lowercased() } ?? name
    }

    /// The cache entry for `name`, pulling it first when it is not cached.
    func cachedOrPull(_ name: String) throws -> CacheEntry {
        let index = try cache.index()
        if let cached = index.models[cacheName(name, in: index)], isPresent(cached) {
            try checkCachedAgainstCatalog(cached, index: index)
            return cached
        }
        return try pull(name).entry
    }

    /// Whether a cached model's files are there: its original when one is kept, else its native file.
    func isPresent(_ entry: CacheEntry) -> Bool {
        guard let file = entry.original ?? entry.native else { return false }
        return FileManager.default.fileExists(atPath: cache.path(file))
    }

    /// How to bring a cached model's original (back) into the cache: `zoo pull NAME` for what was
    /// pulled, `zoo import FILE --name NAME` for what was imported from a file.
    public func fetchAgain(_ entry: CacheEntry) -> String {
        if entry.source.hasPrefix("/") { return "zoo import \(entry.source) --name \(entry.name) (or another copy of that file)" }
        if entry.source.contains("://"), officialEntry(named: entry.name) == nil { return "zoo pull \(entry.name) --url \(entry.source)" }
        return "zoo pull \(entry.name)"
    }

    /// The error of a command that needs a cached model's original when none is kept.
    func originalNotKept(_ entry: CacheEntry, needed what: String) -> ZooError {
        ZooError(.usage, "\(what) needs \(entry.name)'s original checkpoint, and the cache keeps none (it was pulled or imported "
                 + "with --no-original, or zoo prune --originals removed it); its native file is there and verified",
                 fix: fetchAgain(entry) + " fetches the original again")
    }

    func architecture(of entry: CacheEntry) throws -> Architecture {
        var architecture = try entry.resnet.map { Architecture.resnet($0) } ?? Architecture.named(entry.architecture)
        architecture.numClasses = entry.numClasses
        return architecture
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }
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
