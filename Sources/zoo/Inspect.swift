import ArgumentParser
import Checkpoint
import Foundation
import Models

extension ZooCommand {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the tensors of a checkpoint without loading their data.",
            discussion: "Reads zip (torch >= 1.6), legacy magic-number, tar, TorchScript and safetensors files, deciding by the bytes. Nothing in the file is executed.")

        @Argument(help: "A checkpoint file (.pth, .pt, .bin, .safetensors, ...).", completion: .file())
        var file: String

        @OptionGroup var output: OutputOptions

        func run() throws {
            let checkpoint = try Checkpoint(path: file)
            try output.emit(InspectReport(checkpoint), text: \.text)
        }
    }
}

/// What `zoo inspect` reports; the JSON field names are a stable interface.
struct InspectReport: Encodable {
    struct Tensor: Encodable {
        var key: String
        var dtype: String
        var shape: [Int]
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

    enum CodingKeys: String, CodingKey {
        case file, format, source, tensors, metadata
        case stateDictPath = "state_dict_path"
        case strippedPrefix = "stripped_prefix"
        case bigEndian = "big_endian"
        case parameterCount = "parameter_count"
        case dataBytes = "data_bytes"
    }

    init(_ checkpoint: Checkpoint) {
        let dict = checkpoint.stateDict
        file = checkpoint.path
        format = checkpoint.format.rawValue
        stateDictPath = dict.path
        strippedPrefix = dict.strippedPrefix
        source = dict.source
        bigEndian = checkpoint.isBigEndian
        tensors = dict.entries.map { Tensor(key: $0.key, dtype: $0.tensor.dtype.rawValue, shape: $0.tensor.shape) }
        // Sums of file-controlled sizes saturate at Int.max rather than trap.
        func add(_ a: Int, _ b: Int) -> Int { let (sum, overflow) = a.addingReportingOverflow(b); return overflow ? .max : sum }
        func bytes(_ t: TensorRecord) -> Int { let (n, overflow) = t.elementCount.multipliedReportingOverflow(by: t.dtype.size); return overflow ? .max : n }
        parameterCount = dict.entries.reduce(0) { add($0, $1.tensor.dtype.isFloatingPoint ? $1.tensor.elementCount : 0) }
        dataBytes = dict.entries.reduce(0) { add($0, bytes($1.tensor)) }
        metadata = .object(dict.metadata)
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
        return lines.joined(separator: "\n") + "\n"
    }
}
