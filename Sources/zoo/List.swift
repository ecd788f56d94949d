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
                    let cached = r.cached ? (r.verified == true ? "yes, verified" : r.verified == false ? "yes, FAILED" : "yes") : ""
                    let alias = r.aliases.isEmpty ? "" : " (\(r.aliases.joined(separator: ", ")))"
                    lines.append((r.name + alias).padding(48) + "  " + r.architecture.prefix(18).description.padding(18) + "  \(acc)  \(size)  \(cached)")
                }
                return lines.joined(separator: "\n") + "\n"
            }
        }
    }
}
