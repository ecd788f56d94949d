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
                    if let a = e.acc1 { lines.append("  acc@1 \(a), acc@5 \(e.acc5.map { String($0) } ?? "-"), \(e.gflops.map { String($0) } ?? "-") GFLOPS, \(e.parameters?.grouped ?? "-") parameters") }
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
}
