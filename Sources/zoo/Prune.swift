import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
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
}
