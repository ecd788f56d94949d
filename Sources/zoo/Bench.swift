import ArgumentParser
import Checkpoint
import Foundation
import Models

extension ZooCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time forward passes, or with --load the opening of a checkpoint.",
            discussion: "Forward: the time to pack the weights for the kernels, the first forward, and the median milliseconds per forward after it, for a named architecture (synthetic weights) or a checkpoint. --load: opening the file, taking typed views of every tensor, and materialising all as float32.")

        @Argument(help: "An architecture name, a checkpoint file or a cached model's name.", completion: Completion.filesModelsOrArchitectures)
        var target: String

        @Option(help: "Batch size.") var batch = 1
        @Option(help: "Input height and width.") var size = 224
        @Option(help: "Timed iterations (after one warm-up).") var iterations = 5
        @Option(help: "Threads for BLAS (default: all cores).") var threads: Int?
        @Flag(help: "Time loading instead of the forward pass.") var load = false
        @OptionGroup var options: OutputOptions

        func validate() throws {
            guard batch > 0, size > 0, iterations > 0, (threads ?? 1) > 0 else {
                throw ValidationError("--batch, --size, --iterations and --threads must be positive")
            }
        }

        func run() throws {
            if let threads { Model.threads = threads }
            if load { return try emitLoad() }
            let model: Model
            if !FileManager.default.fileExists(atPath: target), let architecture = try? Architecture.named(target) {
                model = architecture.build()
                try model.load(Synthetic.weights(for: model))
            } else if !FileManager.default.fileExists(atPath: target), (try? checkpointPath(target)) == nil {
                model = try Architecture.named(target).build()  // neither: the architecture error lists the names
            } else {
                model = try Model.load(try CheckpointFile(path: try checkpointPath(target)))
            }
            let input = Synthetic.input([batch, 3, size, size])
            let flops = try model.flops(for: input.shape)
            let prepare = try time { try model.prepare(for: input.shape) }
            let first = try time { _ = try model.forward(input) }
            let times = try (0 ..< iterations).map { _ in try time { _ = try model.forward(input) } }
            let median = times.sorted()[times.count / 2]
            let report = ForwardBench(arch: model.name, batch: batch, size: size, threads: Model.threads, iterations: times,
                                      medianMilliseconds: median, gflops: flops / median / 1e6,
                                      kernels: KernelPath.current.rawValue, prepareMilliseconds: prepare,
                                      firstMilliseconds: first)
            try options.emit(report) {
                String(format: "%@ batch %d at %dx%d, %d threads: median %.1f ms (%.1f GFLOP/s)\n",
                       $0.arch, $0.batch, $0.size, $0.size, $0.threads, $0.medianMilliseconds, $0.gflops)
            }
        }

        func emitLoad() throws {
            var open: [Double] = [], views: [Double] = [], materialise: [Double] = []
            var bytes = 0, zeroCopy = 0, tensors = 0
            for _ in 0 ..< iterations {
                var checkpoint: CheckpointFile?
                let path = try checkpointPath(target)
                open.append(try time { checkpoint = try CheckpointFile(path: path) })
                guard let checkpoint else { continue }
                tensors = checkpoint.stateDict.entries.count
                views.append(try time {
                    zeroCopy = 0
                    for (_, t) in checkpoint.stateDict.entries where t.dtype == .float32 {
                        if try checkpoint.withUnsafeElements(of: t, as: Float.self, { $0.count }) != nil { zeroCopy += 1 }
                    }
                })
                materialise.append(try time {
                    bytes = 0
                    for (_, t) in checkpoint.stateDict.entries { bytes += try checkpoint.floats(of: t).count * 4 }
                })
            }
            func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
            let report = LoadBench(file: target, tensors: tensors, zeroCopyViews: zeroCopy, openMilliseconds: median(open),
                                   viewsMilliseconds: median(views), materialiseMilliseconds: median(materialise),
                                   materialisedBytes: bytes, gigabytesPerSecond: Double(bytes) / median(materialise) / 1e6)
            try options.emit(report) {
                String(format: "open %.2f ms, typed views of %d tensors %.2f ms (%d zero-copy), float32 materialisation %.1f ms (%.2f GB/s)\n",
                       $0.openMilliseconds, $0.tensors, $0.viewsMilliseconds, $0.zeroCopyViews, $0.materialiseMilliseconds, $0.gigabytesPerSecond)
            }
        }

        func time(_ body: () throws -> Void) rethrows -> Double {
            let clock = ContinuousClock()
            let start = clock.now
            try body()
            return (clock.now - start).milliseconds
        }
    }
}

struct ForwardBench: Encodable {
    var arch: String
    var batch: Int, size: Int, threads: Int
    var iterations: [Double]
    var medianMilliseconds: Double
    var gflops: Double
    /// The kernel path that ran (`KernelPath`).
    var kernels: String
    /// Packing the weights for the kernels (`Model.prepare(for:)`), then the first forward after it.
    var prepareMilliseconds: Double, firstMilliseconds: Double
    enum CodingKeys: String, CodingKey {
        case batch, size, threads, gflops, kernels
        case arch = "architecture"
        case prepareMilliseconds = "prepare_ms"
        case firstMilliseconds = "first_ms"
        case iterations = "iterations_ms"
        case medianMilliseconds = "median_ms"
    }
}

struct LoadBench: Encodable {
    var file: String
    var tensors: Int
    var zeroCopyViews: Int
    var openMilliseconds: Double, viewsMilliseconds: Double, materialiseMilliseconds: Double
    var materialisedBytes: Int
    var gigabytesPerSecond: Double
    enum CodingKeys: String, CodingKey {
        case file, tensors
        case zeroCopyViews = "zero_copy_views"
        case openMilliseconds = "open_ms"
        case viewsMilliseconds = "views_ms"
        case materialiseMilliseconds = "materialise_ms"
        case materialisedBytes = "materialised_bytes"
        case gigabytesPerSecond = "materialise_gb_per_s"
    }
}
