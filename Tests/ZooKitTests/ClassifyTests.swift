import Foundation
import Images
import Models
import Testing
@testable import ZooKit

struct ClassifyTests {
    @Test func imagenetLabelsShipInZoo() throws {
        #expect(Labels.imagenet1k.count == 1000)
        #expect(Labels.imagenet1k.first == "tench" && Labels.imagenet1k.last == "toilet tissue")
        let catalog = try Catalog.shipped()
        #expect(try catalog.entry("resnet50").labels == "imagenet1k")
        #expect(try catalog.entry("digits_resnet").labels == nil)
    }

    /// The demo model (10 digit classes, 16 x 16 inputs) labelled by index, on pixels made here:
    /// `classify` equals softmax(forward(preprocessed)) and ranks the classes by it.
    @Test func pretrainedModelClassifies() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        var model = try zoo.pretrained("digits_resnet")
        #expect(model.labels == nil)
        model.preprocessing = Preprocessing(resize: 16, crop: 16, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        let images = try (0 ..< 3).map { seed in
            try RGBImage(width: 20, height: 17, pixels: (0 ..< 20 * 17 * 3).map { UInt8(truncatingIfNeeded: $0 * (seed + 7) / 3) })
        }
        let results = try model.classify(images, top: 10)
        let logits = try model.forward(try model.preprocessing.tensor(images))
        for (row, top) in results.enumerated() {
            #expect(top.count == 10 && top.map(\.label) == top.map { String($0.index) })
            #expect(zip(top, top.dropFirst()).allSatisfy { $0.probability >= $1.probability })
            #expect(abs(top.map(\.probability).reduce(0, +) - 1) < 1e-9)
            let scores = logits.data[row * 10 ..< row * 10 + 10]
            #expect(top[0].index == scores.indices.max { scores[$0] < scores[$1] }! - row * 10)
        }
        #expect(throws: ZooError.self) { try PretrainedModel(model: model.model, labels: ["just one"]) }
    }

    /// A file that fails alone: the rest of the batch is classified.
    @Test func oneBadFileFailsAlone() throws {
        let scratch = try Scratch()
        var model = try makeZoo(scratch).pretrained("digits_resnet")
        model.preprocessing = Preprocessing(resize: 16, crop: 16, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        let good = Repo.root + "/Tests/Fixtures/images/rgb.png"
        let bad = try scratch.write("bad.png", Array("not a png".utf8))
        let results = try model.classify(files: [good, bad, good], top: 3, batchSize: 2)
        #expect(results.map(\.file) == [good, bad, good])
        #expect((try? results[0].result.get()) == (try? results[2].result.get()))
        #expect((try? results[1].result.get()) == nil)
    }
}
