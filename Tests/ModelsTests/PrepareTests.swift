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
        // One image, then four per thread (a batch the threads divide runs as one slice per
        // thread): the 7x7 maps of layer4 run Winograd F(2x2, 3x3) for one image and F(4x4, 3x3)
        // for four, so the second preparation makes more.
        var before = 0
        for batch in [1, 4 * Kernels.threads] {
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

    /// A batch of two images a thread runs as slices of two, whose 7x7 maps take F(2x2, 3x3),
    /// where the whole batch (four or more images) would take F(4x4, 3x3): the preparation
    /// must make the slices' layouts.
    @Test func preparationFollowsTheSlices() throws {
        let model = try Architecture.named("resnet18", numClasses: 10).build()
        try model.load(Synthetic.weights(for: model))
        let shape = [2 * Kernels.threads, 3, 224, 224]
        try model.prepare(for: shape)
        let made = model.layouts.made
        _ = try model.forward(Synthetic.input(shape))
        #expect(model.layouts.made == made, "the forward made layouts the preparation had not")
    }

    @Test func refusesShapesTheNetworkCannotTake() throws {
        let model = try Architecture.named("resnet18", numClasses: 10).build()
        #expect(throws: ModelError.self) { try model.prepare(for: [1, 3, 0, 224]) }
        #expect(throws: ModelError.self) { try model.prepare(for: [1, 4, 224, 224]) }
        #expect(throws: ModelError.self) { try model.prepare(for: [3, 224, 224]) }
    }
}

/// A batch the threads divide runs one slice per thread, each slice's layers on its thread; a
/// slice that reaches a convolution whose layout a background preparation is making waits for
/// it, and that preparation, which cuts its work between the threads, must not wait for the
/// slices in turn (it runs its share on its own thread instead).
@Suite struct SliceTests {
    @Test func slicesDoNotWaitOnABackgroundPreparation() throws {
        let model = try Architecture.named("resnet18", numClasses: 10).build()
        let weights = Synthetic.weights(for: model)
        try model.load(weights)
        let input = Synthetic.input([2 * Kernels.threads, 3, 112, 112])
        // The reference: each image alone (a batch of one is never sliced).
        let twin = model.architecture.build()
        try twin.load(weights)
        let size = input.count / input.shape[0]
        let images = try (0 ..< input.shape[0]).map { n in
            try twin.forward(Tensor(shape: [1] + input.shape.dropFirst(), data: Array(input.data[n * size ..< (n + 1) * size])))
        }
        let reference = Tensor(shape: [input.shape[0], images[0].count], data: images.flatMap(\.data))
        // On its own thread, so that a deadlock fails the test (after a minute) instead of hanging it.
        let outputs = Locked<[Tensor]>([]), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            for _ in 0 ..< 3 {
                try? model.load(weights)  // layouts dropped: the preparation starts over
                model.prepareInBackground(for: input.shape)
                if let output = try? model.forward(input) { outputs.withLock { $0.append(output) } }
            }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 60) == .success, "a forward and a background preparation deadlocked")
        let results = outputs.withLock { $0 }
        #expect(results.count == 3)
        for output in results {
            #expect(output.shape == reference.shape)
            #expect(output.maxDifference(reference) <= 1e-5 * reference.maxMagnitude, "sliced and per-image outputs differ")
        }
    }
}
