import Foundation
import Models

/// One model of the catalog: an architecture and, usually, a published weight file.
public struct CatalogEntry: Codable, Sendable, Equatable {
    /// Model and file names become paths in the cache, so they are plain words: a catalog or a
    /// URL cannot make zoo write outside its cache (`../../.bashrc`).
    public static func isSafeName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 200 && !name.hasPrefix(".")
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-+".contains($0)) }
    }

    /// The rule `isSafeName(_:)` enforces, worded for an error message's fix.
    public static let safeNameRule = "use ASCII letters, digits and . _ - + only, not starting with a dot"

    /// torchvision's eval transforms for the weights: resize, center crop, normalise.
    public struct Preprocessing: Codable, Sendable, Equatable {
        /// Side, in pixels, the shorter image side is resized to first (256).
        public var resize: Int
        /// Side, in pixels, of the center crop taken after resizing (224).
        public var crop: Int
        /// The resize filter, as torchvision names it (`bilinear`, `bicubic`).
        public var interpolation: String
        /// Per-channel (RGB) mean subtracted from pixel values scaled to 0...1.
        public var mean: [Double]
        /// Per-channel (RGB) standard deviation the centred values are divided by.
        public var std: [Double]
    }

    /// Canonical name: `resnet50.imagenet1k_v2`.
    public var name: String
    /// Other names: `resnet50` for the default weights.
    public var aliases: [String]?
    /// A named architecture (`resnet50`), or nil with `resnet` set for a custom configuration.
    public var architecture: String?
    /// A ResNet configuration not among the named ones (the demo model).
    public var resnet: ResNetConfig?
    /// torchvision's name for the weights enum member (`IMAGENET1K_V1`).
    public var weights: String?
    /// File name under the URL and in the caches; torchvision's `name-<sha256 prefix>.pth`.
    public var file: String?
    /// Where the file is published (`https://download.pytorch.org/models/...`).
    public var url: String?
    /// The first hex digits of the file's SHA-256, as torch.hub checks them.
    public var sha256Prefix: String?
    /// The full SHA-256, when an independent public source pins it.
    public var sha256: String?
    /// The file's size in bytes, when published: a download may not differ from it.
    public var size: Int?
    /// A file shipped with zoo, relative to the catalog's folder.
    public var bundled: String?
    /// Parameter count, as torchvision's `num_params` reports it.
    public var parameters: Int?
    /// File size in MiB, as torchvision's `_file_size` reports it.
    public var fileMB: Double?
    /// Compute for one 224x224 image in GFLOPS, as torchvision's `_ops` reports it.
    public var gflops: Double?
    /// ImageNet-1k validation top-1 accuracy in percent, as torchvision reports it.
    public var acc1: Double?
    /// ImageNet-1k validation top-5 accuracy in percent, as torchvision reports it.
    public var acc5: Double?
    /// The eval transforms the weights expect; nil when the catalog gives none.
    public var preprocessing: Preprocessing?
    /// The label set of the classifier head, e.g. `imagenet1k` (see `Labels`); nil: class indices.
    public var labels: String?
    /// Input shape `[C, H, W]` the model was trained on, when not ImageNet's.
    public var inputShape: [Int]?
    /// A caveat shown with the entry ("features only: the classifier is not trained").
    public var note: String?

    enum CodingKeys: String, CodingKey {
        case name, aliases, architecture, resnet, weights, file, url, sha256, size, bundled, parameters, gflops, acc1, acc5
        case preprocessing, note, labels
        case sha256Prefix = "sha256_prefix"
        case fileMB = "file_mb"
        case inputShape = "input_shape"
    }

    /// Whether the entry has weights to fetch or ship.
    public var hasWeights: Bool { file != nil || bundled != nil }

    /// The expected hash: the full one when known, else the prefix.
    public var expectedHash: String? { sha256 ?? sha256Prefix }

    /// The network this entry describes, with `numClasses` from the file when it differs.
    public func resolvedArchitecture() throws -> Architecture {
        if let resnet { return .resnet(resnet) }
        guard let architecture else { throw ZooError(.usage, "catalog entry \(name) names no architecture") }
        return try Architecture.named(architecture)
    }
}

/// The catalog of models zoo knows: the shipped `catalog.json`, built into the library (Plugins/Embed),
/// extended by a user catalog (`--catalog FILE` or `ZOO_CATALOG`) whose entries add to or replace
/// the shipped ones by name. No catalog is ever looked for in the working directory or beside the
/// executable.
public struct Catalog: Sendable {
    /// Every entry: the shipped ones, then the user catalog's (which replace shipped ones of the same name).
    public var entries: [CatalogEntry]
    /// The folder relative `bundled` paths start from: a user catalog's own folder; for the shipped
    /// catalog, the zoo checkout the library was built from (`demo/` lives there), recorded at build
    /// time by Plugins/Embed.
    public var folder: String

    struct File: Codable {
        var version: Int
        var models: [CatalogEntry]
    }

    /// A catalog of `entries`, with relative `bundled` paths resolved against `folder`.
    public init(entries: [CatalogEntry], folder: String) {
        self.entries = entries
        self.folder = folder
    }

    /// Parses a catalog file.
    public static func load(path: String) throws -> Catalog {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ZooError(.usage, "cannot read catalog \(path): \(error.localizedDescription)")
        }
        return try parse(data, name: path, folder: URL(fileURLWithPath: path).deletingLastPathComponent().path)
    }

    /// The catalog zoo ships: the repository's `catalog.json` as it was when the library was built.
    public static func shipped() throws -> Catalog {
        try parse(Data(Embedded.catalogJSON.utf8), name: "catalog.json (built into zoo)", folder: Embedded.packageRoot)
    }

    /// The shipped catalog, extended by `extra` or `$ZOO_CATALOG` when given.
    public static func standard(extra: String? = nil) throws -> Catalog {
        var catalog = try shipped()
        if let user = extra ?? ProcessInfo.processInfo.environment["ZOO_CATALOG"] {
            catalog.merge(try load(path: user))
        }
        return catalog
    }

    /// A catalog's JSON, checked; `name` says which catalog in errors.
    static func parse(_ data: Data, name path: String, folder: String) throws -> Catalog {
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch {
            throw ZooError(.usage, "catalog \(path) is not valid: \(Catalog.describe(error))")
        }
        guard file.version == 1 else { throw ZooError(.usage, "catalog \(path) has version \(file.version); zoo reads version 1") }
        var seen = Set<String>()
        for entry in file.models {
            for name in [entry.name] + (entry.aliases ?? []) + [entry.file].compactMap({ $0 }) where !CatalogEntry.isSafeName(name) {
                throw ZooError(.usage, "catalog \(path): '\(name)' cannot name a model or file: \(CatalogEntry.safeNameRule)")
            }
            for name in [entry.name] + (entry.aliases ?? []) where !seen.insert(name).inserted {
                throw ZooError(.usage, "catalog \(path) names \(name) twice")
            }
            if let prefix = entry.sha256Prefix, prefix.count < 8 || !prefix.allSatisfy(\.isHexDigit) {
                throw ZooError(.usage, "catalog \(path): \(entry.name) has sha256_prefix '\(prefix)'; expected at least 8 hex digits")
            }
            if let full = entry.sha256 {
                guard full.count == 64, full.allSatisfy(\.isHexDigit) else {
                    throw ZooError(.usage, "catalog \(path): \(entry.name) has sha256 '\(full)'; expected 64 hex digits")
                }
                for prefix in [entry.sha256Prefix, entry.file.flatMap { HashPrefix.of(fileName: $0) }].compactMap({ $0 })
                where !full.lowercased().hasPrefix(prefix.lowercased()) {
                    throw ZooError(.usage, "catalog \(path): \(entry.name)'s sha256 \(full) does not start with its prefix \(prefix)")
                }
            }
        }
        return Catalog(entries: file.models, folder: folder)
    }

    /// Entries of `other` replace entries of the same name and add the rest.
    public mutating func merge(_ other: Catalog) {
        for var entry in other.entries {
            if let bundled = entry.bundled, !bundled.hasPrefix("/") { entry.bundled = other.folder + "/" + bundled }
            let names = Set([entry.name] + (entry.aliases ?? []))
            entries.removeAll { $0.name == entry.name }
            for i in entries.indices { entries[i].aliases?.removeAll { names.contains($0) } }
            entries.append(entry)
        }
    }

    /// An entry by name or alias, case-insensitive (`resnet50.IMAGENET1K_V2`, as torchvision
    /// writes the enum, is `resnet50.imagenet1k_v2`); an exact match wins.
    public func entry(_ name: String) throws -> CatalogEntry {
        if let found = entries.first(where: { $0.name == name || ($0.aliases ?? []).contains(name) }) { return found }
        let lowered = name.lowercased()
        if let found = entries.first(where: { ([$0.name] + ($0.aliases ?? [])).contains { $0.lowercased() == lowered } }) { return found }
        let close = Names.closest(to: name, among: entries.flatMap { [$0.name] + ($0.aliases ?? []) })
        throw ZooError(.usage, "no model named \(name) in the catalog",
                       fix: close.isEmpty ? "zoo list shows every model" : "did you mean \(close.joined(separator: ", "))? (zoo list)")
    }

    /// The path of a bundled file.
    public func bundledPath(_ entry: CatalogEntry) -> String? {
        entry.bundled.map { $0.hasPrefix("/") ? $0 : folder + "/" + $0 }
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing \(key.stringValue) at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context), DecodingError.dataCorrupted(let context):
            return "\(context.debugDescription) at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        default:
            return "\(error)"
        }
    }
}
