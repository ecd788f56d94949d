import ArgumentParser
import Checkpoint
import Foundation
import Models

extension ZooCommand {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the tensors of a checkpoint without loading their data.",
            discussion: "Reads zip (torch >= 1.6), legacy magic-number, tar, TorchScript and safetensors files, deciding by the bytes. Nothing in the file is executed.")

        @Argument(help: "Checkpoint files (.pth, .pt, .bin, .safetensors, ...). With several and --json, one JSON object per line, and a file zoo refuses gives {\"file\", \"error\"}.", completion: .file())
        var files: [String]

        @Flag(name: .long, help: "Add each tensor's SHA-256 (its elements row-major, little-endian) to the report; reads all the data.")
        var digests = false

        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("Missing a checkpoint file.") }
            guard files.count == 1 || output.json else { throw ValidationError("Several files need --json (one JSON object per line).") }
        }

        func run() throws {
            guard files.count > 1 else {
                let checkpoint = try CheckpointFile(path: files[0])
                warnForeignSymbols(checkpoint)
                return try output.emit(try InspectReport(checkpoint, digests: digests), text: \.text)
            }
            // The differential fuzzer's batch mode: one line per file, refusals included.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var failed = false
            for file in files {
                let line: Data
                do {
                    line = try encoder.encode(try InspectReport(try CheckpointFile(path: file), digests: digests))
                } catch {
                    failed = true
                    line = try encoder.encode(["file": file, "error": "\(error)"])
                }
                print(String(decoding: line, as: UTF8.self))
            }
            if failed { throw ExitCode(1) }
        }
    }
}

/// What `zoo inspect` reports; the JSON field names are a stable interface.
struct InspectReport: Encodable {
    struct Tensor: Encodable {
        var key: String
        var dtype: String
        var shape: [Int]
        /// With `--digests`: SHA-256 of the elements, row-major and little-endian.
        var sha256: String?
    }

    var file: String
    var format: String
    var stateDictPath: String
    var strippedPrefix: String
    var source: String?
    var bigEndian: Bool
    var tensors: [Tensor]
    var parameterCount: Int
    var dataBytes: Int
    var metadata: MetadataValue
    /// Every GLOBAL / STACK_GLOBAL of the file's pickles, with its verdict and where it is used.
    var symbols: [PickleSymbol]

    enum CodingKeys: String, CodingKey {
        case file, format, source, tensors, metadata, symbols
        case stateDictPath = "state_dict_path"
        case strippedPrefix = "stripped_prefix"
        case bigEndian = "big_endian"
        case parameterCount = "parameter_count"
        case dataBytes = "data_bytes"
    }

    init(_ checkpoint: CheckpointFile, digests: Bool = false) throws {
        let dict = checkpoint.stateDict
        file = checkpoint.path
        format = checkpoint.format.rawValue
        stateDictPath = dict.path
        strippedPrefix = dict.strippedPrefix
        source = dict.source
        bigEndian = checkpoint.isBigEndian
        tensors = try dict.entries.map { entry in
            var digest: String?
            if digests {
                let hasher = SHA256Hasher()
                hasher.update(try checkpoint.data(of: entry.tensor))
                digest = hasher.finalize()
            }
            return Tensor(key: entry.key, dtype: entry.tensor.dtype.rawValue, shape: entry.tensor.shape, sha256: digest)
        }
        // Sums of file-controlled sizes saturate at Int.max rather than trap.
        func add(_ a: Int, _ b: Int) -> Int { let (sum, overflow) = a.addingReportingOverflow(b); return overflow ? .max : sum }
        func bytes(_ t: TensorRecord) -> Int { let (n, overflow) = t.elementCount.multipliedReportingOverflow(by: t.dtype.size); return overflow ? .max : n }
        parameterCount = dict.entries.reduce(0) { add($0, $1.tensor.dtype.isFloatingPoint ? $1.tensor.elementCount : 0) }
        dataBytes = dict.entries.reduce(0) { add($0, bytes($1.tensor)) }
        metadata = .object(dict.metadata)
        symbols = checkpoint.symbols
    }

    var text: String {
        var lines = ["\(file): \(format) checkpoint, \(tensors.count) tensors, \(parameterCount.grouped) floating-point values, \(dataBytes.grouped) bytes of data"]
        if !stateDictPath.isEmpty { lines.append("state dict under: \(stateDictPath)") }
        if !strippedPrefix.isEmpty { lines.append("prefix stripped: \(strippedPrefix)") }
        if let source { lines.append("found in: \(source)") }
        if bigEndian { lines.append("byte order: big-endian (swapped on reading)") }
        let keyWidth = min(max(tensors.map(\.key.count).max() ?? 3, 3), 60)
        lines.append("")
        lines.append("key".padding(keyWidth) + "  " + "dtype".padding(9) + "  shape")
        for t in tensors {
            lines.append(t.key.padding(keyWidth) + "  " + t.dtype.padding(9) + "  [" + t.shape.map(String.init).joined(separator: ", ") + "]")
        }
        if case .object(let pairs) = metadata, !pairs.isEmpty {
            lines.append("")
            lines.append("other entries:")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for pair in pairs {
                var value = (try? encoder.encode(pair.value)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
                if value.count > 100 { value = String(value.prefix(97)) + "..." }
                lines.append("  \(pair.key): \(value)")
            }
        }
        if !symbols.isEmpty {
            lines.append("")
            lines.append("symbols (allowed: torch.load(weights_only=True) accepts it; foreign: inert here, imported by weights_only=False):")
            for s in symbols {
                let times = s.count > 1 ? ", \(s.count) times" : ""
                lines.append("  " + s.verdict.rawValue.padding(8) + " \(s.name.prefix(120))  (\(s.record) byte \(s.offset)\(times), at \(s.usedAt.prefix(120)))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
