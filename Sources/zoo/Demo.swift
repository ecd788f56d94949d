import ArgumentParser
import Foundation
import Models
import ZooKit

extension ZooCommand {
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The shipped demo: import, verify and convert a small ResNet trained on digits, then evaluate it.",
            discussion: "The model (demo/digits_resnet.pth) was trained with PyTorch by demo/train.py; zoo's predictions on its held-out test set must equal PyTorch's.")

        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        struct Report: Encodable {
            var model: String
            var verified: Bool
            var native: String?
            var testImages: Int
            var accuracy: Double
            var torchAccuracy: Double
            var agreeWithTorch: Int
            var maxLogitDifference: Float
            var milliseconds: Double
            enum CodingKeys: String, CodingKey {
                case model, verified, native, accuracy
                case testImages = "test_images"
                case torchAccuracy = "torch_accuracy"
                case agreeWithTorch = "agree_with_torch"
                case maxLogitDifference = "max_logit_difference"
                case milliseconds
            }
        }

        func run() throws {
            let zoo = try zoo.zoo()
            let pulled = try zoo.pull("digits_resnet")
            let model = try zoo.pretrained("digits_resnet")
            let folder = zoo.catalog.folder + "/demo/"
            let inputs = try NPY.read(path: folder + "test_inputs.npy")
            let labels = try readInt64(folder + "test_labels.npy")
            let torchLogits = try NPY.read(path: folder + "torch_logits.npy")
            let clock = ContinuousClock()
            let start = clock.now
            let logits = try model.forward(inputs)
            let elapsed = clock.now - start
            let classes = logits.shape[1]
            func argmax(_ t: Tensor, _ row: Int) -> Int {
                let slice = t.data[row * classes ..< (row + 1) * classes]
                return slice.indices.max { slice[$0] < slice[$1] }.map { $0 - row * classes } ?? -1
            }
            let n = inputs.shape[0]
            let ours = (0 ..< n).map { argmax(logits, $0) }
            let theirs = (0 ..< n).map { argmax(torchLogits, $0) }
            let report = Report(model: pulled.entry.name, verified: pulled.verification?.ok ?? false, native: pulled.entry.native.map(zoo.cache.path),
                                testImages: n, accuracy: Double(zip(ours, labels).filter { $0 == $1 }.count) / Double(n),
                                torchAccuracy: Double(zip(theirs, labels).filter { $0 == $1 }.count) / Double(n),
                                agreeWithTorch: zip(ours, theirs).filter { $0 == $1 }.count,
                                maxLogitDifference: logits.maxDifference(torchLogits), milliseconds: Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
            try options.emit(report) { r in
                """
                \(r.model): imported, converted to \(r.native ?? "-"), \(r.verified ? "verified" : "NOT verified")
                test accuracy \(String(format: "%.2f%%", r.accuracy * 100)) on \(r.testImages) held-out digits (PyTorch: \(String(format: "%.2f%%", r.torchAccuracy * 100)))
                predictions identical to PyTorch's: \(r.agreeWithTorch)/\(r.testImages) (max logit difference \(String(format: "%.1e", r.maxLogitDifference))); forward \(String(format: "%.1f", r.milliseconds)) ms

                """
            }
            guard report.verified, report.agreeWithTorch == n else { throw ExitCode(1) }
        }

        /// The labels file: a 1-d int64 .npy.
        func readInt64(_ path: String) throws -> [Int] {
            guard let data = FileManager.default.contents(atPath: path), data.count > 10 else { throw ValidationError("cannot read \(path)") }
            let bytes = [UInt8](data)
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            let header = String(decoding: bytes[10 ..< 10 + headerLength], as: UTF8.self)
            guard header.contains("'<i8'") else { throw ValidationError("\(path) is not int64") }
            return bytes[(10 + headerLength)...].withUnsafeBytes { raw in
                (0 ..< raw.count / 8).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            }
        }
    }
}
