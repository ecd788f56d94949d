import ArgumentParser
import Foundation
import Models
import ZooKit

extension ZooCommand {
    struct Pull: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a model (resuming an interrupted download), check its hash, convert and verify it.",
            discussion: "Files already in PyTorch's cache ($TORCH_HOME/hub/checkpoints) are reused. ZOO_MIRROR=URL fetches catalog files from a mirror (the catalog's hashes still decide); ZOO_OFFLINE=1 never touches the network.")

        @Argument(help: "A catalog name (zoo list), or with --url any name of your choosing.", completion: Completion.models)
        var model: String

        @Option(help: "Pull this URL instead of the catalog's; checked against the hash prefix in its file name when it has one.")
        var url: String?
        @Flag(name: .customLong("no-original"), help: "Keep only the native file, not the original checkpoint, also for a model already cached (saves its size; verify --against-torch and converting again need the original: zoo pull fetches it again).")
        var noOriginal = false

        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func run() throws {
            let report = try zoo.zoo().pull(model, url: url, keepOriginal: !noOriginal)
            warnForeignSymbols(report.entry)
            if let why = report.originalKept {
                FileHandle.standardError.write(Data("zoo: warning: \(report.entry.name)'s original is still cached: \(why)\n".utf8))
            }
            try options.emit(report) { r in
                let how = r.origin == "download"
                    ? "downloaded \((r.downloadedBytes - r.resumedFrom).grouped) of \(r.downloadedBytes.grouped) bytes" + (r.resumedFrom > 0 ? " (resumed from \(r.resumedFrom.grouped))" : "")
                    : "from the \(r.origin)"
                return "\(r.entry.name): \(how); \(r.entry.architecture), sha256 \(r.entry.sha256.prefix(16))...\n"
                    + (r.verification.map(render) ?? "")
            }
            if report.verification?.ok == false { throw ExitCode(1) }
        }
    }
}
