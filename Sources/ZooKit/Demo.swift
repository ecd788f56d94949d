import Foundation
import Models

/// The shipped demo (`zoo demo`): the small ResNet in `demo/`, trained on scikit-learn's
/// digits by `demo/train.py`, imported, converted and verified, then evaluated on its held-out
/// test set and compared with PyTorch's logits for the same images.
public struct DemoReport: Sendable, Codable {
    /// The demo model's catalog name.
    public var model: String
    /// Whether every check of the pull's verification passed.
    public var verified: Bool
    /// The cached native (safetensors) file the demo ran; nil when there is none.
    public var native: String?
    /// Images in the held-out test set.
    public var testImages: Int
    /// zoo's accuracy on the test set, 0...1.
    public var accuracy: Double
    /// PyTorch's accuracy on the same images, from its recorded logits, 0...1.
    public var torchAccuracy: Double
    /// How many of zoo's predictions equal PyTorch's.
    public var agreeWithTorch: Int
    /// The largest absolute difference between zoo's logits and PyTorch's, over every image and class.
    public var maxLogitDifference: Float
    /// The forward pass over the whole test set.
    public var milliseconds: Double

    enum CodingKeys: String, CodingKey {
        case model, verified, native, accuracy
        case testImages = "test_images"
        case torchAccuracy = "torch_accuracy"
        case agreeWithTorch = "agree_with_torch"
        case maxLogitDifference = "max_logit_difference"
        case milliseconds
    }

    /// Verified, and every prediction identical to PyTorch's.
    public var ok: Bool { verified && agreeWithTorch == testImages }
}

extension Zoo {
    /// Pulls the demo model (from the catalog folder, no network), then evaluates it on
    /// `demo/test_inputs.npy` against `demo/test_labels.npy` and `demo/torch_logits.npy`.
    public func demo(model name: String = "digits_resnet") throws -> DemoReport {
        let pulled = try pull(name)
        let model = try pretrained(name, prepare: false)  // one batch of all test images, timed below
        let folder = catalog.folder + "/demo/"
        let inputs = try NPY.read(path: folder + "test_inputs.npy")
        let labels = try NPY.readInt64(path: folder + "test_labels.npy")
        let torchLogits = try NPY.read(path: folder + "torch_logits.npy")
        let clock = ContinuousClock()
        let start = clock.now
        let logits = try model.forward(inputs)
        let elapsed = clock.now - start
        let ours = logits.argmax()
        let theirs = torchLogits.argmax()
        return DemoReport(model: pulled.entry.name, verified: pulled.verification?.ok ?? false, native: pulled.entry.native.map(cache.path),
                          testImages: ours.count, accuracy: Evaluation.accuracy(ours, labels: labels),
                          torchAccuracy: Evaluation.accuracy(theirs, labels: labels),
                          agreeWithTorch: zip(ours, theirs).filter { $0 == $1 }.count,
                          maxLogitDifference: logits.maxDifference(torchLogits),
                          milliseconds: elapsed.milliseconds)
    }
}

/// Classification figures from logits.
public enum Evaluation {
    /// The fraction of `predictions` equal to `labels` (0 when there are none).
    public static func accuracy(_ predictions: [Int], labels: [Int]) -> Double {
        guard !predictions.isEmpty else { return 0 }
        return Double(zip(predictions, labels).filter { $0 == $1 }.count) / Double(predictions.count)
    }
}

extension Duration {
    /// The duration in milliseconds, for reports.
    public var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
