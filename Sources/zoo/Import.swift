import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a checkpoint into the cache, convert it to the native format and verify it.",
            discussion: "A torchvision-style hash prefix in the file name (name-<sha256 prefix>.pth) is checked; a mismatch is refused unless --force.")

        @Argument(help: "A checkpoint file.", completion: .file())
        var file: String
        @Option(help: "Name in the cache (default: the catalog's name for a catalog file, else the file's stem).")
        var name: String?
        @Option(help: "Architecture (detected when omitted).")
        var arch: String?
        @Flag(help: "Import even if the hash prefix in the file name does not match.")
        var force = false
        @Flag(name: .customLong("no-original"), help: "Keep only the native file, not the original checkpoint (saves its size; verify --against-torch and converting again need the original: zoo pull fetches it again).")
        var noOriginal = false
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func run() throws {
            let zoo = try zoo.zoo()
            let entry = try stage("importing \(file): hashing, converting, verifying", quiet: self.zoo.quiet) {
                try zoo.importFile(file, name: name, architecture: arch, force: force, keepOriginal: !noOriginal)
            }
            warnForeignSymbols(entry)
            try options.emit(entry) { e in
                "imported \(e.name): \(e.architecture), \(e.numClasses) classes, sha256 \(e.sha256.prefix(16))...\n" + (e.verification.map(render) ?? "")
            }
            if entry.verification?.ok == false { throw ExitCode(1) }
        }
    }
}
