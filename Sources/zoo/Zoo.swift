import ArgumentParser
import Checkpoint
import Models
import ZooKit
import Foundation

/// The `zoo` command: a thin layer over Checkpoint, Models and ZooKit. Each subcommand builds
/// one report and prints it as text, or as stable sorted JSON with `--json`.
/// Exit codes: 0 success, 1 the file or check failed, 2 usage or input error.
@main
struct ZooCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoo",
        abstract: "Read PyTorch checkpoints and run torchvision's VGG and ResNet in Swift.",
        version: zooVersion,
        subcommands: [Demo.self, Pull.self, Import.self, Verify.self, List.self, Info.self, Remove.self, Prune.self, CacheInfo.self,
                      Inspect.self, Convert.self, Run.self, Summary.self, Bench.self, Classify.self])

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as CheckpointError {
            fail(error, code: 1)
        } catch let error as ModelError {
            switch error {
            case .badInput, .unknownArchitecture: fail(error, code: 2)
            case .stateDictMismatch, .undetectedArchitecture: fail(error, code: 1)
            }
        } catch let error as ZooError {
            fail(error, code: error.kind == .usage ? 2 : 1)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))  // --help, --version
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            // ArgumentParser reports usage errors as EX_USAGE (64); zoo's contract is 2.
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue == 64 ? 2 : 1)
        }
    }
}

/// Prints `error` on stderr and exits with `code`.
func fail(_ error: Error, code: Int32) -> Never {
    FileHandle.standardError.write(Data("zoo: \(error)\n".utf8))
    Foundation.exit(code)
}

/// Flags of the commands that use the catalog and cache.
struct ZooOptions: ParsableArguments {
    @Option(help: "A user catalog (JSON, same shape as catalog.json) that extends the shipped one; default $ZOO_CATALOG.")
    var catalog: String?

    @Flag(name: .shortAndLong, help: "No progress bar.")
    var quiet = false

    func zoo() throws -> Zoo {
        try Zoo(catalog: try Catalog.standard(extra: catalog), progress: !quiet)
    }
}

/// Flags every command shares.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print a JSON report on stdout instead of text.")
    var json = false

    /// Prints `report` as sorted JSON or as the text `render` makes of it.
    func emit<Report: Encodable>(_ report: Report, text render: (Report) -> String) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(render(report), terminator: "")
        }
    }
}

/// The checks of a verification, one line each.
func render(_ verification: Verification) -> String {
    verification.checks.map { "  \($0.ok ? "ok  " : "FAIL") \($0.name): \($0.detail)\n" }.joined()
}

extension String {
    /// Left-aligned in a column of `width` characters (never truncated).
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
