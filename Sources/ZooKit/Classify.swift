import Dispatch
import Foundation
import Images
import Models

/// Label sets zoo ships, by the name catalog entries give in `"labels"`.
public enum Labels {
    /// The 1,000 ImageNet categories in torchvision's order (`weights.meta["categories"]`).
    public static let imagenet1k: [String] = lines(Embedded.imagenetCategoriesTXT)

    /// A shipped label set by name (`imagenet1k`).
    public static func named(_ name: String) throws -> [String] {
        switch name {
        case "imagenet1k": return imagenet1k
        default: throw ZooError(.usage, "unknown label set '\(name)'", fix: "use imagenet1k, or --labels FILE")
        }
    }

    /// One label per line of a text file (a trailing empty line is ignored).
    public static func read(path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ZooError(.usage, "cannot read labels file \(path)")
        }
        return lines(String(decoding: data, as: UTF8.self))
    }

    static func lines(_ text: String) -> [String] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0.hasSuffix("\r") ? $0.dropLast() : $0)
        }
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}

/// One class of a classification: its index in the model's output, its label (the index itself
/// when the model has no label set) and its softmax probability.
public struct Prediction: Codable, Sendable, Equatable {
    /// The class's index in the model's output.
    public var index: Int
    /// The class's name, or its index as text when the model has no label set.
    public var label: String
    /// The softmax probability, 0...1.
    public var probability: Double
}

/// A model that knows how its inputs are made and what its outputs mean: what `Zoo.pretrained`
/// returns.
///
/// ```swift
/// let model = try Zoo.pretrained("resnet50")
/// for p in try model.classify(imageAt: URL(fileURLWithPath: "cat.jpg"), top: 5) {
///     print(p.label, p.probability)
/// }
/// ```
public struct PretrainedModel: Sendable {
    /// The network.
    public let model: Model
    /// Resize, crop, mean and std of the entry (ImageNet's for a file with no catalog entry).
    public var preprocessing: Preprocessing
    /// Class names in output order, or nil: predictions are then labelled by index.
    public var labels: [String]?
    /// How image files are decoded: the pixel limit and EXIF orientation (PIL's defaults).
    public var decodeOptions = DecodeOptions()

    /// Pairs a model with the way its inputs are prepared and its outputs named.
    ///
    /// - Parameters:
    ///   - model: the network that classifies.
    ///   - preprocessing: how an image becomes the model's input tensor.
    ///   - labels: must have one name per output class when given.
    public init(model: Model, preprocessing: Preprocessing = .imagenet, labels: [String]? = nil) throws {
        if let labels, labels.count != model.architecture.numClasses {
            throw ZooError(.usage, "\(labels.count) labels for \(model.architecture.numClasses) classes",
                           fix: "give one label per class, one per line")
        }
        self.model = model
        self.preprocessing = preprocessing
        self.labels = labels
    }

    /// The model with its catalog entry's preprocessing and labels: ImageNet's for catalog entries
    /// without them and for files with 1,000 classes, class indices otherwise.
    init(_ model: Model, cacheEntry: CacheEntry, catalog: Catalog) throws {
        let entry = try? catalog.entry(cacheEntry.name)
        var labels: [String]?
        if let name = entry?.labels {
            labels = try Labels.named(name)
        } else if entry == nil && model.architecture.numClasses == 1000 {
            labels = Labels.imagenet1k
        }
        try self.init(model: model, preprocessing: entry?.preprocessing.map(Preprocessing.init) ?? .imagenet,
                      labels: labels?.count == model.architecture.numClasses ? labels : nil)
    }

    /// The model's architecture name (`resnet50`).
    public var name: String { model.name }
    /// The model's architecture.
    public var architecture: Architecture { model.architecture }
    /// The model's output for a preprocessed batch `[N, 3, H, W]`: logits (probabilities for the tutorial VGG).
    ///
    /// - Throws: `ModelError.badInput` for an input shape the network cannot take.
    public func forward(_ input: Tensor) throws -> Tensor { try model.forward(input) }

    /// The `top` most probable classes of one image file.
    public func classify(imageAt url: URL, top: Int = 5) throws -> [Prediction] {
        try classify([RGBImage(contentsOf: url.path, options: decodeOptions)], top: top)[0]
    }

    /// The `top` most probable classes of each image, in one batch.
    public func classify(_ images: [RGBImage], top: Int = 5) throws -> [[Prediction]] {
        try predictions(try model.forward(try preprocessing.tensor(images)), top: top)
    }

    /// The result of one file of a batch classification.
    public struct FileResult: Sendable {
        /// The file as given.
        public var file: String
        /// Its `top` predictions, or why it could not be decoded or classified.
        public var result: Result<[Prediction], Error>
    }

    /// Classifies many files, `batchSize` at a time (decoded in parallel); a file that cannot be
    /// decoded fails alone. `progress` is called after each batch with the files done so far.
    public func classify(files: [String], top: Int = 5, batchSize: Int = 16,
                         progress: ((Int) -> Void)? = nil) throws -> [FileResult] {
        var results: [FileResult] = []
        for start in stride(from: 0, to: files.count, by: max(batchSize, 1)) {
            let chunk = Array(files[start ..< min(start + max(batchSize, 1), files.count)])
            let decoded = Locked([Result<RGBImage, Error>?](repeating: nil, count: chunk.count))
            let preprocessing = preprocessing, options = decodeOptions
            DispatchQueue.concurrentPerform(iterations: chunk.count) { i in
                let result = Result { try preprocessing.cropped(try RGBImage(contentsOf: chunk[i], options: options)) }
                decoded.withLock { $0[i] = result }
            }
            let images = decoded.withLock { $0 }.map { $0! }
            let good = images.compactMap { try? $0.get() }
            var predicted = good.isEmpty ? [] : try predictions(try model.forward(try preprocessing.tensor(cropped: good)), top: top)
            predicted.reverse()
            for (file, image) in zip(chunk, images) {
                switch image {
                case .success: results.append(FileResult(file: file, result: .success(predicted.removeLast())))
                case .failure(let error): results.append(FileResult(file: file, result: .failure(error)))
                }
            }
            progress?(start + chunk.count)
        }
        return results
    }

    /// Softmax over each row of `logits` (in Double), then the `top` largest, ties by index.
    func predictions(_ logits: Tensor, top: Int) throws -> [[Prediction]] {
        guard logits.shape.count == 2 else {
            throw ZooError(.failed, "\(model.name) gives outputs of shape \(logits.shape), not [N, classes]: not a classifier")
        }
        let classes = logits.shape[1]
        return (0 ..< logits.shape[0]).map { row in
            let scores = logits.data[row * classes ..< (row + 1) * classes].map(Double.init)
            let peak = scores.max() ?? 0
            let exps = scores.map { Foundation.exp($0 - peak) }
            let total = exps.reduce(0, +)
            let order = exps.indices.sorted { exps[$0] > exps[$1] || (exps[$0] == exps[$1] && $0 < $1) }
            return order.prefix(max(top, 0)).map { i in
                Prediction(index: i, label: labels.map { $0[i] } ?? String(i), probability: exps[i] / total)
            }
        }
    }
}

extension Preprocessing {
    /// The catalog's preprocessing (only bilinear interpolation exists in the catalog).
    init(_ entry: CatalogEntry.Preprocessing) {
        self.init(resize: entry.resize, crop: entry.crop, mean: entry.mean.map(Float.init), std: entry.std.map(Float.init))
    }
}
