import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the catalog's models and what is cached.")

        @Argument(help: "Only names or architectures containing this.")
        var pattern: String?
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func run() throws {
            let rows = try zoo.zoo().list(pattern)
            try options.emit(rows) { rows in
                var lines = ["name".padding(48) + "  " + "architecture".padding(18) + "  acc@1    file MB  cached"]
                for r in rows {
                    let acc = r.acc1.map { String(format: "%6.2f", $0) } ?? "     -"
                    let size = r.fileMB.map { String(format: "%8.1f", $0) } ?? "       -"
                    let cached = r.cached ? (r.verified == true ? "yes, verified" : r.verified == false ? "yes, FAILED" : "yes") : ""
                    let alias = r.aliases.isEmpty ? "" : " (\(r.aliases.joined(separator: ", ")))"
                    lines.append((r.name + alias).padding(48) + "  " + r.architecture.prefix(18).description.padding(18) + "  \(acc)  \(size)  \(cached)")
                }
                return lines.joined(separator: "\n") + "\n"
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything zoo knows about one model.")

        @Argument var model: String
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        struct Report: Encodable {
            var catalog: CatalogEntry?
            var cached: CacheEntry?
        }

        func run() throws {
            let zoo = try zoo.zoo()
            let cached = try zoo.cache.entry(try zoo.cacheName(model))
            let entry = try? zoo.catalog.entry(cached?.name ?? model)
            guard entry != nil || cached != nil else { _ = try zoo.catalog.entry(model); return }
            try options.emit(Report(catalog: entry, cached: cached)) { r in
                var lines: [String] = []
                if let e = r.catalog {
                    lines.append("\(e.name)\(e.aliases.map { " (also \($0.joined(separator: ", ")))" } ?? "")")
                    lines.append("  architecture: \(e.architecture ?? "custom ResNet")")
                    if let w = e.weights { lines.append("  weights: \(w)") }
                    if let url = e.url { lines.append("  url: \(url)") }
                    if let h = e.expectedHash { lines.append("  sha256: \(h)\(e.sha256 == nil ? "..." : "")") }
                    if let a = e.acc1 { lines.append("  acc@1 \(a), acc@5 \(e.acc5.map { String($0) } ?? "-"), \(e.gflops.map { String($0) } ?? "-") GFLOPS, \(e.parameters?.formatted() ?? "-") parameters") }
                    if let p = e.preprocessing { lines.append("  preprocessing: resize \(p.resize), crop \(p.crop), mean \(p.mean), std \(p.std)") }
                    if let note = e.note { lines.append("  note: \(note)") }
                }
                if let c = r.cached {
                    lines.append("  cached: \(c.original) from \(c.source), imported \(c.importedAt)")
                    if let native = c.native { lines.append("  native: \(native)") }
                    if let v = c.verification { lines.append("  last verification: \(v.ok ? "ok" : "FAILED") at \(v.time)") }
                } else {
                    lines.append("  not cached (zoo pull \(r.catalog?.name ?? ""))")
                }
                return lines.joined(separator: "\n") + "\n"
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a model from the cache.")
        @Argument var model: String
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func run() throws {
            let removed = try zoo.zoo().remove(model)
            try options.emit(["removed": removed]) { "removed \($0["removed"]?.count ?? 0) files of \(model)\n" }
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove partial downloads, temporary files and orphans from the cache.")
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func run() throws {
            let removed = try zoo.zoo().prune()
            try options.emit(["removed": removed]) { r in
                (r["removed"] ?? []).map { "removed \($0)\n" }.joined() + "\(r["removed"]?.count ?? 0) files removed\n"
            }
        }
    }

    struct CacheInfo: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cache", abstract: "Where the cache is and how big.")
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        struct Report: Encodable {
            var location: String
            var bytes: Int
            var models: Int
            var torchCache: String
            enum CodingKeys: String, CodingKey { case location, bytes, models, torchCache = "torch_cache" }
        }

        func run() throws {
            let zoo = try zoo.zoo()
            let report = Report(location: zoo.cache.root, bytes: zoo.cache.totalBytes(), models: try zoo.cache.index().models.count,
                                torchCache: Cache.torchCheckpoints())
            try options.emit(report) {
                "\($0.location): \($0.models) models, \(String(format: "%.1f", Double($0.bytes) / 1_048_576)) MB\nPyTorch's cache (reused): \($0.torchCache)\n"
            }
        }
    }
}
