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
            // A file that is not there (or is a directory) is an input error; a file zoo refuses is a failed check.
            var isDirectory: ObjCBool = false
            let missing = error.kind == .io && (!FileManager.default.fileExists(atPath: error.path, isDirectory: &isDirectory) || isDirectory.boolValue)
            fail(error, code: missing ? 2 : 1, kind: error.kind.rawValue, message: error.message, file: error.path)
        } catch let error as ModelError {
            switch error {
            case .badInput, .unknownArchitecture: fail(error, code: 2, kind: "usage")
            case .stateDictMismatch, .undetectedArchitecture: fail(error, code: 1, kind: "model")
            }
        } catch let error as ZooError {
            fail(error, code: error.kind == .usage ? 2 : 1, kind: error.kind.rawValue, message: error.message, fix: error.fix, file: error.file)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))  // --help, --version
                Foundation.exit(0)
            }
            if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }  // the report already said why
            // ArgumentParser reports usage errors as EX_USAGE (64); zoo's contract is 2.
            let status: Int32 = code == .validationFailure ? 2 : code.rawValue == 64 ? 2 : code.rawValue
            if jsonRequested {
                emitJSONError(kind: status == 2 ? "usage" : "failed", message: message(for: error), fix: nil, file: nil)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(status)
        }
    }
}

/// Whether the command line asks for JSON: then errors are JSON on stdout too.
let jsonRequested = CommandLine.arguments.dropFirst().prefix { $0 != "--" }.contains("--json")

/// Prints `error` on stderr (and with `--json` also as `{"error": {...}}` on stdout) and exits with `code`.
func fail(_ error: Error, code: Int32, kind: String = "failed", message: String? = nil, fix: String? = nil, file: String? = nil) -> Never {
    if jsonRequested {
        emitJSONError(kind: kind, message: message ?? "\(error)", fix: fix, file: file.flatMap { $0.isEmpty ? nil : $0 })
    }
    FileHandle.standardError.write(Data("zoo: \(error)\n".utf8))  // diagnostics stay on stderr, with --json too
    Foundation.exit(code)
}

/// `{"error": {"kind", "message", "fix", "file"}}` on stdout; `fix` and `file` are null when unknown.
func emitJSONError(kind: String, message: String, fix: String?, file: String?) {
    struct Body: Encodable {
        var kind: String, message: String, fix: String?, file: String?
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(kind, forKey: .kind)
            try c.encode(message, forKey: .message)
            try c.encode(fix, forKey: .fix)
            try c.encode(file, forKey: .file)
        }
        enum CodingKeys: String, CodingKey { case kind, message, fix, file }
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    let data = (try? encoder.encode(["error": Body(kind: kind, message: message, fix: fix, file: file)])) ?? Data()
    print(String(decoding: data, as: UTF8.self))
}

/// Flags of the commands that use the catalog and cache.
struct ZooOptions: ParsableArguments {
    @Option(help: "A user catalog (JSON, same shape as catalog.json) that extends the shipped one; default $ZOO_CATALOG.",
            completion: .file(extensions: ["json"]))
    var catalog: String?

    @Flag(name: .shortAndLong, help: "Draw no progress on stderr: pull's download bar, classify's image bar, import's and verify's stage line with elapsed time (drawn only on a terminal).")
    var quiet = false

    func zoo() throws -> Zoo {
        try Zoo(catalog: try Catalog.standard(extra: catalog), progress: !quiet)
    }
}

/// Shell completion (`zoo --generate-completion-script bash|zsh|fish`): model arguments complete
/// cached and catalog names, file-or-model arguments both, file arguments file names.
enum Completion {
    static let models = CompletionKind.custom { _, _, prefix in
        (try? Zoo(progress: false))?.modelNames(prefix: prefix) ?? []
    }
    static let filesOrModels = CompletionKind.custom { _, _, prefix in
        Zoo.fileNames(prefix: prefix) + ((try? Zoo(progress: false))?.modelNames(prefix: prefix) ?? [])
    }
    static let filesModelsOrArchitectures = CompletionKind.custom { _, _, prefix in
        Zoo.fileNames(prefix: prefix) + ((try? Zoo(progress: false))?.modelNames(prefix: prefix) ?? [])
            + Architecture.names.filter { $0.hasPrefix(prefix) }
    }
}

/// The checkpoint file a command's argument names: a file, or a cached model's name.
func checkpointPath(_ argument: String) throws -> String {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory), !isDirectory.boolValue { return argument }
    return try Zoo(progress: false).checkpointPath(argument)
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
