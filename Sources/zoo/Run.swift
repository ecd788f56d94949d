import ArgumentParser
import Foundation
import Checkpoint
import Models
import ZooKit

extension ZooCommand {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a checkpoint's network on a NumPy batch.",
            discussion: "Reads a float32 NCHW .npy batch and writes the output as float32 .npy: logits, or class probabilities for the tutorial VGG (its forward ends in a softmax).")

        @Argument(help: "A checkpoint (.pth, .pt, .safetensors, ...) or a cached model's name.", completion: Completion.filesOrModels)
        var file: String

        @Option(help: "Architecture name (detected from the keys and shapes when omitted).", completion: .list(Architecture.names))
        var arch: String?

        @Option(help: "Input batch: float32 .npy of shape [N, 3, H, W].", completion: .file(extensions: ["npy"]))
        var input: String

        @Option(help: "Where to write the output .npy.", completion: .file(extensions: ["npy"]))
        var output: String

        @OptionGroup var options: OutputOptions

        func run() throws {
            let clock = ContinuousClock()
            let path = try checkpointPath(file)
            let batch = try NPY.read(path: input)
            let start = clock.now
            let checkpoint = try CheckpointFile(path: path)
            warnForeignSymbols(checkpoint)
            let model = try Model.load(checkpoint, architecture: arch, inputShape: batch.shape)
            let loaded = clock.now
            let result = try model.forward(batch)
            let done = clock.now
            try NPY.write(result, to: output)
            let report = RunReport(file: file, arch: model.name, numClasses: model.architecture.numClasses,
                                   inputShape: batch.shape, outputShape: result.shape,
                                   loadMilliseconds: (loaded - start).milliseconds, forwardMilliseconds: (done - loaded).milliseconds,
                                   output: output)
            try options.emit(report) { r in
                let times = String(format: "%.1f ms (load %.1f ms)", r.forwardMilliseconds, r.loadMilliseconds)
                return "\(r.arch) (\(r.numClasses) classes): \(r.inputShape) -> \(r.outputShape) in \(times); wrote \(r.output)\n"
            }
        }
    }
}

struct RunReport: Encodable {
    var file: String
    var arch: String
    var numClasses: Int
    var inputShape: [Int]
    var outputShape: [Int]
    var loadMilliseconds: Double
    var forwardMilliseconds: Double
    var output: String

    enum CodingKeys: String, CodingKey {
        case file, output
        case arch = "architecture"
        case numClasses = "num_classes"
        case inputShape = "input_shape"
        case outputShape = "output_shape"
        case loadMilliseconds = "load_ms"
        case forwardMilliseconds = "forward_ms"
    }
}
