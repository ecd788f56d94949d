import Foundation
import Models
import Testing

/// One model shared by many tasks (a `Model` is `Sendable`). `scripts/test` also runs this suite
/// under ThreadSanitizer (`swift test --sanitize=thread --filter ConcurrencyTests`).
@Suite struct ConcurrencyTests {
    /// Small ResNets (a VGG's 100M-parameter classifier makes ThreadSanitizer's run minutes
    /// long): fused convolutions (GEMM and Winograd), residual blocks, pools and Linear run concurrently.
    static let architectures: [Architecture] = [
        .resnet(ResNetConfig(block: .bottleneck, layers: [1, 1, 1, 1], numClasses: 10, planes: [8, 16, 16, 16], stemWidth: 8)),
        .resnet(ResNetConfig(block: .basic, layers: [2, 1, 1, 1], numClasses: 10, planes: [16, 16, 32, 32], stemWidth: 16)),
    ]

    @Test(arguments: architectures)
    func eightTasksShareOneModel(_ architecture: Architecture) async throws {
        let model = architecture.build()
        try model.load(Synthetic.weights(for: model))
        let size = architecture.minimumInputSize
        let input = Synthetic.input([2, 3, size, size])
        let serial = try model.forward(input)
        let outputs = try await withThrowingTaskGroup(of: Tensor.self) { group in
            for _ in 0 ..< 8 { group.addTask { try model.forward(input) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outputs.count == 8)
        for output in outputs { #expect(output == serial) }
    }

    /// A preparation on another thread racing forward passes and a second preparation: every
    /// output equals the unprepared model's.
    @Test(arguments: architectures)
    func preparationRacesForwards(_ architecture: Architecture) async throws {
        let model = architecture.build()
        let weights = Synthetic.weights(for: model)
        try model.load(weights)
        let size = architecture.minimumInputSize
        let input = Synthetic.input([2, 3, size, size])
        let reference = try model.loadedCopyOutput(weights, input)
        model.prepareInBackground(for: input.shape)
        let outputs = try await withThrowingTaskGroup(of: Tensor?.self) { group in
            group.addTask { try model.prepare(for: input.shape); return nil }
            for _ in 0 ..< 4 { group.addTask { try model.forward(input) } }
            return try await group.reduce(into: [Tensor]()) { if let output = $1 { $0.append(output) } }
        }
        #expect(outputs.count == 4)
        for output in outputs { #expect(output == reference) }
    }

    /// Forward passes racing a load of the same weights see the old plan or the new one, never a
    /// mix; a model that never loaded weights compiles its plan once, under the lock.
    @Test func loadsAndForwardsInterleave() async throws {
        let model = try Architecture.named("resnet18", numClasses: 10).build()
        let input = Synthetic.input([1, 3, 32, 32])
        let initial = try model.forward(input)  // never loaded: the initial weights
        let weights = Synthetic.weights(for: model)
        let loaded = try model.loadedCopyOutput(weights, input)
        try await withThrowingTaskGroup(of: Tensor.self) { group in
            for i in 0 ..< 8 {
                group.addTask {
                    if i == 4 { try model.load(weights) }
                    return try model.forward(input)
                }
            }
            for try await output in group { #expect(output == initial || output == loaded) }
        }
        #expect(try model.forward(input) == loaded)
    }
}

extension Model {
    /// The output a fresh copy of this architecture gives with `weights`.
    func loadedCopyOutput(_ weights: NamedTensors, _ input: Tensor) throws -> Tensor {
        let copy = architecture.build()
        try copy.load(weights)
        return try copy.forward(input)
    }
}

/// The public tensor API: checked initialisers, and the usual last step of a classifier.
@Suite struct TensorTests {
    @Test func initialisersThrowInsteadOfTrapping() throws {
        #expect(throws: ModelError.self) { try Tensor(shape: [2, 3], scalars: [1, 2, 3]) }
        #expect(throws: ModelError.self) { try Tensor(shape: [-1, 3], scalars: []) }
        #expect(throws: ModelError.self) { try Tensor.zeros([Int.max, 2]) }
        #expect(throws: ModelError.self) { try Tensor.zeros([4, -2]) }
        let t = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        #expect(t.shape == [2, 2] && t.scalars == [1, 2, 3, 4])
        #expect(try Tensor.zeros([0, 1 << 62, 1 << 62]).count == 0)
    }

    @Test func softmaxArgmaxTopK() throws {
        let logits = try Tensor(shape: [2, 4], scalars: [1, 3, 3, 0, -1, -2, 5, 4])
        let p = logits.softmax()
        #expect(abs(p.scalars[0 ..< 4].reduce(0, +) - 1) < 1e-6)
        #expect(abs(p.scalars[1] - 0.4576398) < 1e-6)  // torch.softmax([1, 3, 3, 0])[1]
        #expect(logits.argmax() == [1, 2])  // the first of equal values, as torch.argmax
        let top = logits.topK(3)
        #expect(top[0].map(\.index) == [1, 2, 0] && top[1].map(\.index) == [2, 3, 0])
        #expect(top[1].map(\.value) == [5, 4, -1])
        #expect(logits.topK(10)[0].count == 4 && logits.topK(0)[0].isEmpty)
    }
}
