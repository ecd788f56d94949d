import ArgumentParser
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
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func validate() throws {
            guard (input == nil) == (expect == nil) || (input != nil && againstTorch) else {
                throw ValidationError("--expect needs --input (and --input needs --expect or --against-torch)")
            }
        }

        func run() throws {
            let zoo = try zoo.zoo()
            let report = try stage("verifying \(target)", quiet: self.zoo.quiet) {
                try zoo.verify(target, input: input, expect: expect, againstTorch: againstTorch)
            }
            try options.emit(report) { r in
                "\(r.target) (\(r.architecture ?? "?")): \(r.ok ? "verified" : "FAILED")\n" + render(r.verification)
            }
            if !report.ok { throw ExitCode(1) }
        }
    }
}
