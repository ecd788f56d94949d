import ArgumentParser
import Checkpoint
import Foundation
import ZooKit

extension ZooCommand {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a cached model or a checkpoint file: hashes, structure, and the forward pass.",
            discussion: "Exit 0 verified, 1 a check failed, 2 usage or input error.")

        @Argument(help: "A cached model's name or a checkpoint file.", completion: Completion.filesOrModels)
        var target: String
        @Option(help: "Probe input (.npy, float32 NCHW); with --expect.", completion: .file(extensions: ["npy"]))
        var input: String?
        @Option(help: "The output the probe must give (.npy).", completion: .file(extensions: ["npy"]))
        var expect: String?
        @Flag(name: .customLong("against-torch"), help: "Also run the probe through PyTorch ($ZOO_PYTHON or python3 with torch and torchvision).")
        var againstTorch = false
        @Flag(help: "Also fail when the original names symbols outside torch's weights-only allow-list (foreign: inert in zoo, imported by torch.load(weights_only=False)).")
        var strict = false
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func validate() throws {
            guard (input == nil) == (expect == nil) || (input != nil && againstTorch) else {
                throw ValidationError("--expect needs --input (and --input needs --expect or --against-torch)")
            }
        }

        func run() throws {
            let library = try zoo.zoo()
            let report = try stage("verifying \(target)", quiet: zoo.quiet) {
                try library.verify(target, input: input, expect: expect, againstTorch: againstTorch)
            }
            // The original's symbols, read again (entries imported before they were recorded have none).
            // A model cached without its original: the symbols its index entry recorded at import.
            let cached = try library.cache.entry(try library.cacheName(target))
            let original = cached.map { $0.original.map(library.cache.path) } ?? target
            let checkpoint = original.flatMap { try? CheckpointFile(path: $0) }
            var foreign = checkpoint?.foreignSymbols.map(\.name) ?? []
            if let checkpoint {
                warnForeignSymbols(checkpoint)
            } else if let cached, cached.original == nil {
                foreign = cached.foreignSymbols ?? []
                warnForeignSymbols(cached)
            }
            try options.emit(report) { r in
                "\(r.target) (\(r.architecture ?? "?")): \(r.ok ? "verified" : "FAILED")\n" + render(r.verification)
                    + (strict && !foreign.isEmpty ? "  FAIL strict: \(foreign.count) foreign symbol\(foreign.count == 1 ? "" : "s") in the original\n" : "")
            }
            if !report.ok || (strict && !foreign.isEmpty) { throw ExitCode(1) }
        }
    }
}
