import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the command line's file and model arguments name: a checkpoint file, or a cached model.
extension Zoo {
    /// The checkpoint file `argument` names: an existing file, else the native file (or the
    /// original) of the cached model of that name (`digits_resnet`, `resnet50`).
    /// A missing file is a usage error (exit 2), and so is a directory.
    public func checkpointPath(_ argument: String) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) {
            try Self.checkFile(argument)
            return argument
        }
        if let cached = try cache.entry(try cacheName(argument)) {
            guard let path = cached.loadable.map(cache.path), FileManager.default.fileExists(atPath: path) else {
                throw ZooError(.io, "\(argument) is cached but its file \(cached.loadable.map(cache.path) ?? "(none recorded)") is missing",
                               fix: fetchAgain(cached))
            }
            return path
        }
        throw Self.noSuchFile(argument, catalog: catalog)
    }

    /// Refuses a path that is missing or a directory, as a usage error (exit 2).
    public static func checkFile(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw noSuchFile(path, catalog: nil)
        }
        if isDirectory.boolValue {
            throw ZooError(.usage, "\(path) is a directory, not a checkpoint file", fix: "give the checkpoint file inside it", file: path)
        }
    }

    static func noSuchFile(_ argument: String, catalog: Catalog?) -> ZooError {
        if let catalog, let entry = try? catalog.entry(argument) {
            return ZooError(.usage, "\(argument): no such file, and \(entry.name) is not cached", fix: "zoo pull \(entry.name)", file: argument)
        }
        return ZooError(.usage, "\(argument): no such file" + (catalog == nil ? "" : " and no cached model of that name"),
                        fix: catalog == nil ? nil : "zoo list shows the cached models", file: argument)
    }
}

/// Names and patterns as people type them.
public enum Names {
    /// Whether `name` matches `pattern`: a shell glob (`resnet*`, `*_bn`, `wide_*`, `vgg1?`,
    /// `[rv]*`) when it has `*`, `?` or `[`, else a substring; case-insensitive either way.
    public static func matches(_ name: String, _ pattern: String) -> Bool {
        let name = name.lowercased(), pattern = pattern.lowercased()
        guard pattern.contains(where: { "*?[".contains($0) }) else { return name.contains(pattern) }
        return fnmatch(pattern, name, 0) == 0
    }

    /// The names closest to `name` by edit distance (case-insensitive), at most `limit`, within
    /// a third of the name's length: `resnt50` -> `resnet50`.
    public static func closest(to name: String, among names: [String], limit: Int = 3) -> [String] {
        let target = Array(name.lowercased())
        let allowed = max(2, target.count / 3)
        let scored = names.map { ($0, distance(target, Array($0.lowercased()))) }.filter { $0.1 <= allowed }
        return scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(limit).map(\.0)
    }

    /// Levenshtein distance.
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0 ... b.count), current = previous
        for i in 1 ... a.count {
            current[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

extension Zoo {
    /// Model names for shell completion: cached models and catalog names and aliases starting
    /// with `prefix` (case-insensitive), sorted.
    public func modelNames(prefix: String = "") -> [String] {
        let cached = (try? cache.index().models.keys).map(Array.init) ?? []
        let names = cached + catalog.entries.flatMap { [$0.name] + ($0.aliases ?? []) }
        return Set(names).filter { $0.lowercased().hasPrefix(prefix.lowercased()) }.sorted()
    }

    /// Files and folders for shell completion: the entries of `prefix`'s folder that start with
    /// its last component (folders end in `/`), hidden ones only when asked for.
    public static func fileNames(prefix: String) -> [String] {
        let folder = prefix.contains("/") ? String(prefix[...prefix.lastIndex(of: "/")!]) : ""
        let start = String(prefix.dropFirst(folder.count))
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder)) ?? []
        return listed.filter { $0.hasPrefix(start) && (start.hasPrefix(".") || !$0.hasPrefix(".")) }.map { name in
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: folder + name, isDirectory: &isDirectory)
            return folder + name + (isDirectory.boolValue ? "/" : "")
        }.sorted()
    }
}
