import ArgumentParser
import Foundation
import Checkpoint
import Models
import ZooKit

extension ZooCommand {
    struct Summary: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the torchsummary table of an architecture or a checkpoint's network.")

        @Argument(help: "An architecture name (\(Architecture.names.prefix(3).joined(separator: ", ")), ...) a checkpoint file or a cached model's name.", completion: Completion.filesModelsOrArchitectures)
        var arch: String

        @Option(name: .customLong("input-size"), help: "C,H,W of one input.")
        var inputSize = "3,224,224"

        @OptionGroup var options: OutputOptions

        func validate() throws {
            guard parsedInputSize != nil else { throw ValidationError("--input-size takes three positive integers C,H,W, e.g. 3,224,224") }
        }

        var parsedInputSize: [Int]? {
            let parts = inputSize.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 3, parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
            return parts.compactMap { $0 }
        }

        func run() throws {
            let architecture: Architecture
            if !FileManager.default.fileExists(atPath: arch), let named = try? Architecture.named(arch) {
                architecture = named
            } else if !FileManager.default.fileExists(atPath: arch), (try? checkpointPath(arch)) == nil {
                architecture = try Architecture.named(arch)  // neither: the architecture error lists the names
            } else {
                architecture = try Architecture.detect(try CheckpointFile(path: try checkpointPath(arch)))
            }
            let summary = try Models.Summary(model: architecture.build(), inputSize: parsedInputSize ?? [3, 224, 224])
            try options.emit(summary) { $0.text }
        }
    }
}
