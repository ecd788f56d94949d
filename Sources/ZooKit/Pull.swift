import Checkpoint
import Foundation
import Models

/// `zoo pull`: a catalog model (or any URL) fetched, checked against its hash, imported.
extension Zoo {
    /// What `pull` did: the cache entry it left, where the bytes came from, and the verification.
    public struct PullReport: Sendable, Codable {
        /// The model's cache entry after the pull.
        public var entry: CacheEntry
        /// Where the bytes came from: `cache`, `torch cache`, `bundled`, `download`.
        public var origin: String
        /// Size of the downloaded file in bytes, resumed bytes included; 0 when nothing was downloaded.
        public var downloadedBytes: Int
        /// Bytes of an earlier, interrupted download that this one resumed from.
        public var resumedFrom: Int
        /// The verification run on import (or the cached one); nil when none was run.
        public var verification: Verification?
        /// Why the original is still cached after a pull without it (`keepOriginal` false), if it is.
        public var originalKept: String?

        enum CodingKeys: String, CodingKey {
            case entry, origin, verification
            case downloadedBytes = "downloaded_bytes"
            case resumedFrom = "resumed_from"
            case originalKept = "original_kept"
        }
    }

    /// Fetches a catalog model (or any file with `url`, under `name`), checks its hash, imports it.
    /// Files already in PyTorch's cache or shipped with zoo are used instead of downloading.
    /// - Parameters:
    ///   - name: a catalog name or alias, or with `url` any name.
    ///   - url: fetch this URL instead of the catalog's.
    ///   - keepOriginal: false: keep only the native file (and the probe reference); the original
    ///     is read in place, or its download removed once the native file is verified; a model
    ///     already cached with its original loses it, unless another pull or import is running.
    public func pull(_ name: String, url: String? = nil, keepOriginal: Bool = true) throws -> PullReport {
        var entry: CatalogEntry
        // A catalog name fetched from another URL must still be the catalog's file.
        let official = officialEntry(named: name)
        if let url {
            guard let parsed = URL(string: url), parsed.scheme != nil else { throw ZooError(.usage, "not a URL: \(url)") }
            let file = parsed.lastPathComponent
            try Self.checkName(name, fix: "give the model another name (the first argument of zoo pull)")
            guard CatalogEntry.isSafeName(file) else {
                throw ZooError(.usage, "\(url) ends in '\(file)', which cannot name a file in the cache: \(CatalogEntry.safeNameRule)")
            }
            if let official, official.file != nil {
                entry = official
                entry.url = url
                entry.bundled = nil
            } else {
                entry = CatalogEntry(name: name, file: file, url: url, sha256Prefix: HashPrefix.of(fileName: file))
            }
        } else {
            entry = try catalog.entry(name)
        }
        let catalogEntry = url == nil || official != nil ? entry : nil
        guard entry.hasWeights else {
            throw ZooError(.usage, "\(entry.name) has no published weights (\(entry.note ?? "architecture only"))",
                           fix: "zoo summary \(entry.name) shows its architecture")
        }
        // Shared work lock (prune leaves this pull's files alone), then the model's lock: a second
        // pull of the same model waits here and then finds it cached.
        var report = try cache.withLock(Cache.workLock, shared: true) {
            try cache.withLock(Cache.modelLock(entry.name)) {
                let index = try cache.index()
                // A model cached without its original is pulled again unless --no-original.
                if let cached = index.models[entry.name], isPresent(cached), cached.original != nil || !keepOriginal,
                   url == nil || cached.source == url {
                    try checkCachedAgainstCatalog(cached, index: index)
                    return PullReport(entry: cached, origin: "cache", downloadedBytes: 0, resumedFrom: 0, verification: cached.verification)
                }
                let expected = catalogEntry.flatMap { expectedHash($0, index: index)?.hash } ?? entry.expectedHash
                // The download's lock stays held until the file has moved into originals/.
                return try cache.withLock(Cache.downloadLock(entry.file ?? entry.name)) {
                    let (original, origin, download, sha): (String, String, (url: String, result: Downloader.Result)?, String?)
                    do {
                        (original, origin, download, sha) = try fetchOriginal(entry, expected: expected, keepOriginal: keepOriginal)
                    } catch let error as ZooError where url != nil && official != nil && error.kind == .failed {
                        throw ZooError(.failed, error.message + "; \(entry.name) is a catalog name, which holds only the catalog's file",
                                       fix: "keep your file under a name of your own: zoo pull my-\(name) --url \(url ?? "")")
                    }
                    let imported = try importLocked(original, name: entry.name, catalogEntry: catalogEntry,
                                                    architecture: nil, force: false, source: origin == "download" ? (download?.url ?? "") : origin,
                                                    copy: origin == "bundled" || (origin == "torch cache" && !keepOriginal),
                                                    sha256: sha, keepOriginal: keepOriginal)
                    return PullReport(entry: imported, origin: origin, downloadedBytes: download?.result.bytes ?? 0,
                                      resumedFrom: download?.result.resumedFrom ?? 0, verification: imported.verification)
                }
            }
        }
        // --no-original on a model cached with its original drops it, as `zoo prune --originals`
        // would; while another pull or import runs it stays, and the report says so.
        if !keepOriginal, report.entry.original != nil {
            if try pruneOriginalsIfFree(only: [report.entry.name]) == nil {
                report.originalKept = "a pull or import is running in \(cache.root); zoo prune --originals removes it later"
            } else if let updated = try cache.index().models[report.entry.name] {
                report.entry = updated
            }
        }
        return report
    }

    /// Finds or downloads the original file of `entry` (into `downloads/`, unless it is bundled);
    /// with its SHA-256 when that was computed on the way (a download, PyTorch's copy linked or
    /// copied in), so that the import need not hash it again.
    /// - Parameter expected: the full SHA-256 (or prefix) the file must have.
    func fetchOriginal(_ entry: CatalogEntry, expected: String?, keepOriginal: Bool = true) throws
        -> (path: String, origin: String, download: (url: String, result: Downloader.Result)?, sha256: String?) {
        if let bundled = catalog.bundledPath(entry) {
            guard FileManager.default.fileExists(atPath: bundled) else { throw ZooError(.io, "the bundled file \(bundled) is missing") }
            return (bundled, "bundled", nil, nil)
        }
        guard let file = entry.file else { throw ZooError(.usage, "\(entry.name) has no file") }
        // PyTorch's copy, hard-linked into downloads/ when both caches are on one file system
        // (no second copy on disk), else copied; hashed under its temporary name either way. One
        // that is not the expected file is left alone, and the file is downloaded.
        let torchCopy = Cache.torchCheckpoints(environment) + "/" + file
        if !keepOriginal, FileManager.default.fileExists(atPath: torchCopy), let expected,
           let sha = try? SHA256Hasher.file(torchCopy), sha.hasPrefix(expected) {
            return (torchCopy, "torch cache", nil, sha)  // read in place; nothing of it is kept
        }
        if FileManager.default.fileExists(atPath: torchCopy), let expected,
           let (sha, _) = try? Self.linkOrCopy(torchCopy, to: cache.downloads + "/" + file, expected: expected) {
            return (cache.downloads + "/" + file, "torch cache", nil, sha)
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
        if let (kept, sha) = try keptOriginal(file, expected: expected) {
            // An earlier pull downloaded it and was stopped before the index recorded it.
            let size = ((try? FileManager.default.attributesOfItem(atPath: kept))?[.size] as? Int) ?? 0
            return (kept, "download", (address, Downloader.Result(sha256: sha, bytes: size, resumedFrom: size, requests: 0)), sha)
        }
        // The body may not pass the file's size: the catalog's exact size, else its size in MB
        // (three decimals, so within about 1 KB), else the downloader's maximum.
        var downloader = self.downloader
        if entry.size == nil, let megabytes = entry.fileMB {
            downloader.maximumSize = min(downloader.maximumSize, Int(megabytes * 1_048_576) + 4_096)
        }
        let result = try downloader.fetch(url, to: destination, partial: destination + ".partial", expectedHash: expected,
                                          expectedSize: entry.size)
        return (destination, "download", (address, result), result.sha256)
    }

    /// A complete copy of `file` already under `originals/` that no entry refers to (a pull stopped
    /// between moving it there and recording it), when its SHA-256 matches `expected`; with that hash.
    func keptOriginal(_ file: String, expected: String?) throws -> (path: String, sha256: String)? {
        guard let expected = expected?.lowercased(), expected.count >= 8 else { return nil }
        for folder in (try? FileManager.default.contentsOfDirectory(atPath: cache.originals)) ?? []
        where folder.hasPrefix(expected.prefix(16)) || expected.hasPrefix(folder) {
            let path = cache.originals + "/" + folder + "/" + file
            if FileManager.default.fileExists(atPath: path), let sha = try? SHA256Hasher.file(path), sha.hasPrefix(expected) { return (path, sha) }
        }
        return nil
    }
}
