import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the catalog's models and what is cached.")

        @Argument(help: "Only names, aliases or architectures matching this shell pattern ('resnet*', '*_bn'), or containing this word.")
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
                    var cached = r.cached ? (r.verified == true ? "yes, verified" : r.verified == false ? "yes, FAILED" : "yes") : ""
                    if r.cached { cached += ": " + sizes(original: r.originalBytes, native: r.nativeBytes ?? 0, total: r.cachedBytes ?? 0) }
                    let alias = r.aliases.isEmpty ? "" : " (\(r.aliases.joined(separator: ", ")))"
                    lines.append((r.name + alias).padding(48) + "  " + r.architecture.prefix(18).description.padding(18) + "  \(acc)  \(size)  \(cached)")
                }
                return lines.joined(separator: "\n") + "\n"
            }
        }
    }
}

/// "original 44.7 MB + native 44.7 MB = 89.4 MB" (the total also counts the small probe reference),
/// or "original not kept + ..." for a model cached without its original.
func sizes(original: Int?, native: Int, total: Int) -> String {
    func mb(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_048_576) }
    return "original \(original.map(mb) ?? "not kept") + native \(mb(native)) = \(mb(total))"
}
