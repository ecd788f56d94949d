import Foundation
@testable import Models
import Testing

/// `Model.prepare(for:)` makes the weight layouts a forward of that shape reads, so the forward
/// makes none, and it changes no output.
@Suite struct PrepareTests {
    @Test func preparedForwardMakesNoLayout() throws {
        let model = try Architecture.named("resnet18", numClasses: 10).build()
        let weights = Synthetic.weights(for: model)
        try model.load(weights)
        #expect(model.layouts.made == 0)
        // One image, then four: the 7x7 maps of layer4 run Winograd F(2x2, 3x3) for one image
        // and F(4x4, 3x3) for four, so the second preparation makes more.
        var before = 0
        for batch in [1, 4] {
            let shape = [batch, 3, 224, 224]
            try model.prepare(for: shape)
            let (made, kernels) = model.layouts
            #expect(kernels ? made > before : made == 0, "batch \(batch): \(made) layouts after preparing, \(before) before")
            let input = Synthetic.input(shape)
            let output = try model.forward(input)
            #expect(model.layouts.made == made, "batch \(batch): the forward made layouts the preparation had not")
            #expect(output == (try model.loadedCopyOutput(weights, input)), "batch \(batch): preparing changed the output")
            before = made
        }
    }

    @Test func refusesShapesTheNetworkCannotTake() throws {
        let model = try Architecture.named("resnet18", numClasses: 10).build()
        #expect(throws: ModelError.self) { try model.prepare(for: [1, 3, 0, 224]) }
        #expect(throws: ModelError.self) { try model.prepare(for: [1, 4, 224, 224]) }
        #expect(throws: ModelError.self) { try model.prepare(for: [3, 224, 224]) }
    }
}
