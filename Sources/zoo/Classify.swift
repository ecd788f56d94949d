import ArgumentParser
import Foundation
import Checkpoint
import Images
import Models
import ZooKit

extension ZooCommand {
    struct Classify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Classify JPEG and PNG images with a pretrained or local model.",
            discussion: """
                Images are decoded and preprocessed as torchvision does with PIL: resize the shorter side \
                (bilinear, antialiased), center-crop, scale to [0, 1], normalise. Folders are walked for \
                .jpg/.jpeg/.png files in sorted order. A progress bar with images per second is drawn on stderr \
                when it is a terminal (never with --json or --quiet). Exit 1 if any image failed.
                """)

        @Argument(help: "Image files or folders.", completion: .file())
        var inputs: [String]

        @Option(help: "A cached or catalog model name, or a checkpoint file.", completion: Completion.filesOrModels)
        var model = "resnet50"

        @Option(help: "Architecture name, for a checkpoint file (detected when omitted).", completion: .list(Architecture.names))
        var arch: String?

        @Option(help: "How many classes to show per image.")
        var top = 5

        @Option(help: "Images per forward pass.")
        var batch = 16

        @Option(help: "Class names, one per line, in output order (default: the catalog's, else ImageNet's for 1,000 classes).", completion: .file())
        var labels: String?

        @Option(help: "Resize the shorter side to N (default: the model's, else 256).")
        var resize: Int?

        @Option(help: "Center-crop to N x N (default: the model's, else 224).")
        var crop: Int?

        @Flag(help: "Rotate and flip as the EXIF orientation tag says (torchvision with PIL ignores it).")
        var exifTranspose = false

        @Option(help: .hidden)
        var dumpInput: String?

        /// benchmarks/images.py: decode + preprocess each file ROUNDS times, one at a time on one
        /// thread, and print the median milliseconds per image as JSON.
        @Option(help: .hidden)
        var timePreprocess: Int?

        @OptionGroup var zooOptions: ZooOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if let resize, resize < 1 { throw ValidationError("--resize must be at least 1") }
            if let crop, crop < 1 { throw ValidationError("--crop must be at least 1") }
            if inputs.isEmpty { throw ValidationError("give at least one image file or folder") }
            if top < 1 { throw ValidationError("--top must be at least 1") }
            if batch < 1 { throw ValidationError("--batch must be at least 1") }
        }

        func run() throws {
            let files = try ImageFiles.expand(inputs)
            let options = DecodeOptions(applyEXIFOrientation: exifTranspose)
            var preprocessing = Preprocessing.imagenet
            if let resize { preprocessing.resize = resize }
            if let crop { preprocessing.crop = crop }
            if let dumpInput {
                // Fidelity checks (Tests/Interop/check_images.py): the batch before normalisation.
                let images = try files.map { try RGBImage(contentsOf: $0, options: options) }
                try NPY.write(try preprocessing.tensor(images, normalize: false), to: dumpInput)
                return
            }
            if let rounds = timePreprocess {
                let clock = ContinuousClock()
                var times: [Double] = []
                for _ in 0 ..< max(rounds, 1) {
                    for file in files {
                        let start = clock.now
                        _ = try preprocessing.tensor([RGBImage(contentsOf: file, options: options)])
                        times.append((clock.now - start).milliseconds)
                    }
                }
                times.sort()
                print("{\"images\": \(times.count), \"median_ms\": \(times[times.count / 2])}")
                return
            }
            var classifier = try loadModel()
            if let resize { classifier.preprocessing.resize = resize }
            if let crop { classifier.preprocessing.crop = crop }
            if let labels { classifier.labels = try PretrainedModel(model: classifier.model, labels: try Labels.read(path: labels)).labels }
            classifier.decodeOptions = options
            // The weights are laid out for the kernels while the first batch is decoded.
            let side = classifier.preprocessing.crop
            classifier.model.prepareInBackground(for: [min(batch, files.count), 3, side, side])
            let bar = ProgressLine(total: files.count, enabled: ProgressLine.shown(quiet: zooOptions.quiet, json: output.json, terminal: isatty(2) == 1))
            let results = try classifier.classify(files: files, top: top, batchSize: batch) { bar.update($0) }
            bar.finish()
            var report = ClassifyReport(model: modelName(classifier), results: [], failed: [])
            for r in results {
                switch r.result {
                case .success(let top): report.results.append(.init(file: r.file, top: top))
                case .failure(let error): report.failed.append(.init(file: r.file, error: "\(error)"))
                }
            }
            try output.emit(report) { r in
                var text = ""
                for result in r.results {
                    text += result.file + "\n"
                    for (rank, p) in result.top.enumerated() {
                        text += "  \(rank + 1)  " + String(format: "%.4f", p.probability) + "  \(p.label)\n"
                    }
                }
                return text
            }
            if !output.json {
                for failure in report.failed { FileHandle.standardError.write(Data("zoo: \(failure.error)\n".utf8)) }
            }
            if !report.failed.isEmpty { Foundation.exit(1) }  // after the report: some images failed
        }

        /// Whether `--model` names a checkpoint file (a folder such as ./demo does not count).
        var modelIsFile: Bool {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) && !isDirectory.boolValue
        }

        /// `--model` as a checkpoint file when one exists at that path, else as a model name.
        func loadModel() throws -> PretrainedModel {
            if modelIsFile {
                let loaded = try Model.load(try CheckpointFile(path: model), architecture: arch)
                let classes = loaded.architecture.numClasses
                return try PretrainedModel(model: loaded, labels: classes == 1000 ? Labels.imagenet1k : nil)
            }
            if arch != nil { throw ValidationError("--arch applies to a checkpoint file; \(model) is not a file") }
            return try zooOptions.zoo().pretrained(model, prepare: false)
        }

        func modelName(_ classifier: PretrainedModel) -> String {
            modelIsFile ? model : (try? zooOptions.zoo().cacheName(model)) ?? model
        }
    }
}

struct ClassifyReport: Encodable {
    struct File: Encodable {
        var file: String
        var top: [Prediction]
    }
    struct Failure: Encodable {
        var file: String
        var error: String
    }
    var model: String
    var results: [File]
    var failed: [Failure]
}

/// pull's bar (`ProgressBar`) for images, redrawn in place on stderr:
/// `classify  18%|#####.........................| 37/200 images [00:01<00:04, 41.2 images/s]`.
final class ProgressLine {
    let total: Int
    let enabled: Bool
    let start = ContinuousClock.now

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    /// Only on a terminal, and never with --quiet or --json (whose readers are scripts).
    static func shown(quiet: Bool, json: Bool, terminal: Bool) -> Bool { !quiet && !json && terminal }

    static func line(done: Int, total: Int, elapsed: Double) -> String {
        let rate = Double(done) / max(elapsed, 1e-9)
        return ProgressBar.line("classify", done: done, total: total, unit: "images", elapsed: elapsed, rate: rate,
                                rateText: String(format: "%.1f images/s", rate))
    }

    func update(_ done: Int) {
        guard enabled else { return }
        let line = Self.line(done: done, total: total, elapsed: (ContinuousClock.now - start).milliseconds / 1000)
        FileHandle.standardError.write(Data(("\r" + line + "  ").utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
