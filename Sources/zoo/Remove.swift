import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
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
}
