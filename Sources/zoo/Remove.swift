import ArgumentParser
import Foundation
import Models
import ZooKit

extension ZooCommand {
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove models from the cache.")
        @Argument(help: "Cached models' names (zoo list shows them), or their catalog aliases.", completion: Completion.models)
        var models: [String]
        @Flag(name: .customLong("dry-run"), help: "Remove nothing; print what would go and how many bytes.")
        var dryRun = false
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func validate() throws {
            guard !models.isEmpty else { throw ValidationError("name at least one cached model (zoo list shows them)") }
        }

        func run() throws {
            let zoo = try zoo.zoo()
            // Every name is checked before anything goes: a typo in the third name removes nothing.
            let planned = try models.map { try zoo.removal($0) }
            let removed = dryRun ? planned.flatMap { $0 } : try models.flatMap { try zoo.remove($0) }
            let report = Removal(removed: removed, bytes: Zoo.bytes(of: planned.flatMap { $0 }), dryRun: dryRun)
            try options.emit(report) { r in
                r.removed.map { "\(r.dryRun ? "would remove" : "removed") \($0)\n" }.joined()
                    + "\(r.dryRun ? "would free" : "freed") \(r.bytes.grouped) bytes (\(models.joined(separator: ", ")))\n"
            }
        }
    }
}

/// What `rm` and `prune` removed, or with `--dry-run` would remove.
struct Removal: Encodable {
    var removed: [String]
    var bytes: Int
    var dryRun: Bool
    enum CodingKeys: String, CodingKey { case removed, bytes, dryRun = "dry_run" }
}
