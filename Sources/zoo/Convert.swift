import ArgumentParser
import Checkpoint
import Foundation
import Models
import ZooKit

extension ZooCommand {
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert a checkpoint to zoo's native format (safetensors with zoo metadata).",
            discussion: "The output is written under a temporary name, flushed, read back and compared tensor by tensor with the source (bit-exact, or exact rounding with --dtype), then renamed into place. Python's safetensors, candle, burn and MLX read it.")

        @Argument(help: "A checkpoint in any format zoo reads, or a cached model's name.", completion: Completion.filesOrModels)
        var file: String

        @Option(name: [.short, .customLong("output")], help: "Output path (default: beside the input, extension .safetensors; for a cached model, NAME.safetensors here).", completion: .file(extensions: ["safetensors"]))
        var output: String?

        @Option(help: "Store floating-point weights as float16 or bfloat16 (BatchNorm statistics stay float32).")
        var dtype: CompactType?

        @Flag(help: "Write tensors even when they hold more than 4 times the input's size plus 64 MiB (views that repeat data).")
        var allowExpansion = false

        @Flag(help: "Store identical views of one tensor once, with an aliases metadata entry (zoo restores them; other readers see fewer keys). By default every key is stored.")
        var dedup = false

        @Flag(help: "Replace the output file when it exists.")
        var force = false

        @OptionGroup var options: OutputOptions

        enum CompactType: String, ExpressibleByArgument, CaseIterable {
            case float16, bfloat16
        }

        /// `resnet18-f37072fd.pth` -> `resnet18-f37072fd.safetensors` (`.float16.safetensors` when compacting).
        var destination: String {
            if let output { return output }
            // A cached model's name: NAME.safetensors in the current folder, never inside the cache.
            let url = FileManager.default.fileExists(atPath: file) ? URL(fileURLWithPath: file) : URL(fileURLWithPath: file + ".pth")
            let stem = url.deletingPathExtension().path
            return stem + (dtype.map { ".\($0.rawValue)" } ?? "") + ".safetensors"
        }

        func validate() throws {
            guard !AtomicFile.sameFile(destination, file) else {
                throw ValidationError("the output would overwrite the input; pass -o OUT")
            }
            guard force || !FileManager.default.fileExists(atPath: destination) else {
                throw ValidationError("\(destination) exists; pass --force to replace it, or -o OUT")
            }
        }

        func run() throws {
            let clock = ContinuousClock()
            let start = clock.now
            let file = try checkpointPath(self.file)
            let checkpoint = try CheckpointFile(path: file)
            warnForeignSymbols(checkpoint)
            let architecture = try? Architecture.detect(checkpoint).name
            let report: NativeWriter.Report
            do {
                report = try NativeWriter.write(checkpoint, to: destination, options: NativeWriter.Options(
                    dtype: dtype.map { $0 == .float16 ? .float16 : .bfloat16 }, architecture: architecture, version: zooVersion,
                    allowExpansion: allowExpansion, dedup: dedup))
            } catch let error as CheckpointError where error.path != file {
                // Name the input first: it is what the user asked about (the output was not written).
                throw CheckpointError(error.kind, path: file, "converting to \(error.description)")
            }
            let elapsed = (clock.now - start).milliseconds
            try options.emit(ConvertReport(report: report, milliseconds: elapsed)) { r in
                let aliases = r.report.aliases.isEmpty ? "" : ", \(r.report.aliases.count) aliases"
                return "\(r.report.output): \(r.report.tensors) tensors\(aliases), \(r.report.fileBytes.grouped) bytes"
                    + (r.report.converted > 0 ? ", \(r.report.converted) compacted" : "")
                    + String(format: ", verified, %.0f ms\n", r.milliseconds)
            }
        }
    }
}

struct ConvertReport: Encodable {
    var report: NativeWriter.Report
    var milliseconds: Double

    func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(milliseconds, forKey: Key(stringValue: "milliseconds"))
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
