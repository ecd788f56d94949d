import Foundation
import Models
import Testing

/// One model shared by many tasks (a `Model` is `Sendable`). `scripts/test` also runs this suite
/// under ThreadSanitizer (`swift test --sanitize=thread --filter ConcurrencyTests`).
@Suite struct ConcurrencyTests {
    /// A small ResNet and a small VGG: every kind of plan step (fused convolutions, residual
    /// blocks, pools, Linear with and without ReLU, the tutorial's softmax) runs concurrently.
    static let architectures: [Architecture] = [
        .resnet(ResNetConfig(block: .bottleneck, layers: [1, 1, 1, 1], numClasses: 10, planes: [8, 16, 16, 16], stemWidth: 8)),
        try! Architecture.named("vgg11_bn"),
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
