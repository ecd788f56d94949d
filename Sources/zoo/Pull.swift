import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct Pull: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a model (resuming an interrupted download), check its hash, convert and verify it.",
            discussion: "Files already in PyTorch's cache ($TORCH_HOME/hub/checkpoints) are reused. ZOO_MIRROR=URL fetches catalog files from a mirror (the catalog's hashes still decide); ZOO_OFFLINE=1 never touches the network.")

        @Argument(help: "A catalog name (zoo list), or with --url any name of your choosing.")
        var model: String

        @Option(help: "Pull this URL instead of the catalog's; checked against the hash prefix in its file name when it has one.")
        var url: String?

        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func run() throws {
            let report = try zoo.zoo().pull(model, url: url)
            try options.emit(report) { r in
                let how = r.origin == "download" ? "downloaded \(r.downloadedBytes.formatted()) bytes" + (r.resumedFrom > 0 ? " (resumed at \(r.resumedFrom.formatted()))" : "")
                    : "from the \(r.origin)"
                return "\(r.entry.name): \(how); \(r.entry.architecture), sha256 \(r.entry.sha256.prefix(16))...\n"
                    + (r.verification.map(render) ?? "")
            }
            if report.verification?.ok == false { throw ExitCode(1) }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a checkpoint into the cache, convert it to the native format and verify it.",
            discussion: "A torchvision-style hash prefix in the file name (name-<sha256 prefix>.pth) is checked; a mismatch is refused unless --force.")

        @Argument(help: "A checkpoint file.")
        var file: String
        @Option(help: "Name in the cache (default: the catalog's name for a catalog file, else the file's stem).")
        var name: String?
        @Option(help: "Architecture (detected when omitted).")
        var arch: String?
        @Flag(help: "Import even if the hash prefix in the file name does not match.")
        var force = false
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func run() throws {
            let entry = try zoo.zoo().importFile(file, name: name, architecture: arch, force: force)
            try options.emit(entry) { e in
                "imported \(e.name): \(e.architecture), \(e.numClasses) classes, sha256 \(e.sha256.prefix(16))...\n" + (e.verification.map(render) ?? "")
            }
            if entry.verification?.ok == false { throw ExitCode(1) }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a cached model or a checkpoint file: hashes, structure, and the forward pass.",
            discussion: "Exit 0 verified, 1 a check failed, 2 usage or input error.")

        @Argument(help: "A cached model's name or a checkpoint file.")
        var target: String
        @Option(help: "Probe input (.npy, float32 NCHW); with --expect.")
        var input: String?
        @Option(help: "The output the probe must give (.npy).")
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
            let report = try zoo.zoo().verify(target, input: input, expect: expect, againstTorch: againstTorch)
            try options.emit(report) { r in
                "\(r.target) (\(r.architecture ?? "?")): \(r.ok ? "verified" : "FAILED")\n" + render(r.verification)
            }
            if !report.ok { throw ExitCode(1) }
        }
    }
}

/// The checks of a verification, one line each.
func render(_ verification: Verification) -> String {
    verification.checks.map { "  \($0.ok ? "ok  " : "FAIL") \($0.name): \($0.detail)\n" }.joined()
}
