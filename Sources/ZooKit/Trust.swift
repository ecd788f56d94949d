import Checkpoint
import Foundation

/// Who vouches for the full SHA-256 a catalog file must have.
public enum HashPin: String, Codable, Sendable {
    /// `catalog.json` pins it, from an independent public source (shared/OFFICIAL_HASHES.md).
    case catalog
    /// The first download or import that matched the catalog's prefix pinned it in the cache's
    /// index (trust on first use); every later one must match it.
    case firstUse = "first use"
    /// Only torch.hub's 8-digit prefix is known: nothing has been pinned yet.
    case prefix
}

/// Catalog names cannot be taken over: a catalog name or alias holds only the catalog's file,
/// checked by its full SHA-256 where one is pinned, and a download, mirror fetch or import must
/// match that pin.
extension Zoo {
    /// The catalog entry whose name or alias is `name`, in any case: such names are reserved for
    /// the catalog's own file.
    public func officialEntry(named name: String) -> CatalogEntry? {
        let lower = name.lowercased()
        return catalog.entries.first { ([$0.name] + ($0.aliases ?? [])).contains { $0.lowercased() == lower } }
    }

    /// The hash the catalog's file must have, and who pins it: the catalog's full hash, else the
    /// cache's first-use pin, else the prefix.
    public func expectedHash(_ entry: CatalogEntry, index: CacheIndex) -> (hash: String, pin: HashPin)? {
        if let full = entry.sha256 { return (full.lowercased(), .catalog) }
        if let file = entry.file, let pinned = index.pins[file] { return (pinned, .firstUse) }
        return entry.sha256Prefix.map { ($0.lowercased(), .prefix) }
    }

    /// Throws unless `sha256` is the catalog's file for `entry`.
    /// - Parameters:
    ///   - what: the file or model the error names.
    ///   - fix: what to do instead.
    func checkOfficial(_ entry: CatalogEntry, sha256: String, index: CacheIndex, what: String, fix: String) throws {
        guard let (expected, pin) = expectedHash(entry, index: index), !sha256.lowercased().hasPrefix(expected) else { return }
        let source = switch pin {
        case .catalog: "the catalog's full SHA-256"
        case .firstUse: "the SHA-256 pinned at its first download or import"
        case .prefix: "the catalog's SHA-256 prefix"
        }
        throw ZooError(.failed, "\(what) has SHA-256 \(sha256), not \(entry.name)'s (\(source) is \(expected)\(pin == .prefix ? "..." : "")): "
                       + "a catalog name holds only the catalog's file", fix: fix)
    }

    /// Records the full hash of the first file that matched a catalog entry's prefix (called
    /// inside the index update that records the import).
    static func pinOnFirstUse(_ entry: CatalogEntry?, sha256: String, in index: inout CacheIndex) {
        guard let entry, entry.sha256 == nil, let file = entry.file, index.pins[file] == nil,
              let prefix = entry.sha256Prefix, sha256.hasPrefix(prefix.lowercased()) else { return }
        index.pins[file] = sha256
    }

    /// Throws when a cached model under a catalog name does not hold the catalog's file (an index
    /// from an older zoo, or one edited by hand).
    func checkCachedAgainstCatalog(_ cached: CacheEntry, index: CacheIndex) throws {
        guard let official = officialEntry(named: cached.name) else { return }
        try checkOfficial(official, sha256: cached.sha256, index: index, what: "the cached \(cached.name)",
                          fix: "zoo rm \(cached.name), then zoo pull \(official.name); keep your own file under a name of your own (zoo import FILE --name my-\(cached.name))")
    }

    /// Who pins the hash of the cached model `name`: nil when the name is not a catalog name.
    public func hashPin(of name: String) throws -> HashPin? {
        guard let official = officialEntry(named: name) else { return nil }
        return expectedHash(official, index: try cache.index())?.pin
    }
}
