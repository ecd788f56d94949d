import ArgumentParser
import Foundation
import Models
import ZooKit

extension ZooCommand {
    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove partial downloads, temporary files and orphans from the cache.")
        @Flag(name: .customLong("dry-run"), help: "Remove nothing; print what would go and how many bytes.")
        var dryRun = false
        @Flag(help: "Also remove the kept original checkpoints of models that have a native file (the index then records none; verify --against-torch and converting again need it: zoo pull fetches it again).")
        var originals = false
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func run() throws {
            let zoo = try zoo.zoo()
            // Sizes first: once removed, a file has none.
            let planned = try zoo.prune(dryRun: true) + (originals ? try zoo.pruneOriginals(dryRun: true) : [])
            let sizes = Dictionary(planned.map { ($0, Zoo.bytes(of: [$0])) }, uniquingKeysWith: { a, _ in a })
            let removed = dryRun ? sizes.keys.sorted() : try zoo.prune() + (originals ? try zoo.pruneOriginals() : [])
            let report = Removal(removed: removed, bytes: removed.reduce(0) { $0 + (sizes[$1] ?? 0) }, dryRun: dryRun)
            try options.emit(report) { r in
                r.removed.map { "\(r.dryRun ? "would remove" : "removed") \($0)\n" }.joined()
                    + "\(r.removed.count) files \(r.dryRun ? "would be removed" : "removed"), \(r.bytes.grouped) bytes\n"
            }
        }
    }
}
