import ArgumentParser
import Foundation
import Models
import ZooKit

extension ZooCommand {
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything zoo knows about one model.")

        @Argument(help: "A catalog name or alias (zoo list), or a cached model's name.", completion: Completion.models)
        var model: String
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        struct Report: Encodable {
            var catalog: CatalogEntry?
            var cached: CacheEntry?
            /// Who vouches for the catalog file's full SHA-256 (`catalog`, `first use`, `prefix`).
            var hashPin: HashPin?

            enum CodingKeys: String, CodingKey {
                case catalog, cached
                case hashPin = "hash_pin"
            }
        }

        func run() throws {
            let zoo = try zoo.zoo()
            let cached = try zoo.cache.entry(try zoo.cacheName(model))
            let entry = try? zoo.catalog.entry(cached?.name ?? model)
            guard entry != nil || cached != nil else { _ = try zoo.catalog.entry(model); return }
            let pin = try entry.flatMap { try zoo.hashPin(of: $0.name) }
            try options.emit(Report(catalog: entry, cached: cached, hashPin: pin)) { r in
                var lines: [String] = []
                if let e = r.catalog {
                    lines.append("\(e.name)\(e.aliases.map { " (also \($0.joined(separator: ", ")))" } ?? "")")
                    lines.append("  architecture: \(e.architecture ?? "custom ResNet")")
                    if let w = e.weights { lines.append("  weights: \(w)") }
                    if let url = e.url { lines.append("  url: \(url)") }
                    if let h = e.expectedHash { lines.append("  sha256: \(h)\(e.sha256 == nil ? "..." : "")") }
                    switch r.hashPin {
                    case .catalog?: lines.append("  hash: full SHA-256 pinned by the catalog (an independent public source)")
                    case .firstUse?: lines.append("  hash: full SHA-256 pinned at the first download or import (trust on first use); the catalog gives only the prefix")
                    case .prefix?: lines.append("  hash: only the 8-digit prefix is known; the first download or import pins the full SHA-256")
                    case nil: break
                    }
                    if let a = e.acc1 { lines.append("  acc@1 \(a), acc@5 \(e.acc5.map { String($0) } ?? "-"), \(e.gflops.map { String($0) } ?? "-") GFLOPS, \(e.parameters?.grouped ?? "-") parameters") }
                    if let p = e.preprocessing { lines.append("  preprocessing: resize \(p.resize), crop \(p.crop), mean \(p.mean), std \(p.std)") }
                    if let note = e.note { lines.append("  note: \(note)") }
                }
                if let c = r.cached {
                    if let original = c.original {
                        lines.append("  cached: \(original) from \(c.source), imported \(c.importedAt)")
                    } else {
                        lines.append("  cached: native file only, from \(c.source), imported \(c.importedAt)")
                        lines.append("  original: not kept (--no-original or zoo prune --originals): verify --against-torch and converting "
                            + "the original again need it; \(zoo.fetchAgain(c)) fetches it again")
                    }
                    if let e = r.catalog, let expected = e.sha256, !c.sha256.hasPrefix(expected) {
                        lines.append("  WARNING: the cached file is not the catalog's (SHA-256 \(c.sha256)); zoo rm \(c.name), then zoo pull \(e.name)")
                    }
                    if let native = c.native { lines.append("  native: \(native)") }
                    if let foreign = c.foreignSymbols {
                        lines.append("  foreign symbols (inert in zoo, imported by torch.load(weights_only=False) of the original): "
                            + foreign.prefix(10).map { String($0.prefix(80)) }.joined(separator: ", ") + (foreign.count > 10 ? ", ..." : ""))
                    }
                    if let v = c.verification { lines.append("  last verification: \(v.ok ? "ok" : "FAILED") at \(v.time)") }
                } else {
                    lines.append("  not cached (zoo pull \(r.catalog?.name ?? ""))")
                }
                return lines.joined(separator: "\n") + "\n"
            }
        }
    }
}
