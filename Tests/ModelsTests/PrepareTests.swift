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
            // Exactly the layouts an unprepared twin makes in its first forward of that shape.
            let twin = model.architecture.build()
            try twin.load(weights)
            #expect(output == (try twin.forward(input)), "batch \(batch): preparing changed the output")
            if batch == 1 { #expect(twin.layouts.made == made, "batch 1: prepared \(made) layouts, a forward makes \(twin.layouts.made)") }
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
