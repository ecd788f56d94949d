import Foundation
import Testing
import Models

/// Outputs of every named architecture against the outputs torchvision computed for the same
/// weights and inputs (`Tests/Fixtures/make_fidelity.py`; weights and inputs come from the
/// `Synthetic` formula on both sides, so only the outputs are committed).
/// Passing means max |swift - torch| <= 1e-4 * max |torch|, on every kernel path this CPU runs
/// (`KernelPath.available`: the AVX-512, AVX2 or NEON kernels and the OpenBLAS fallback); the
/// layer-by-layer forward is checked on the default path.
@Suite(.serialized) struct FidelityTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/fidelity")

    struct Reference: Decodable {
        struct Checks: Decodable {
            var input_first: [Float]
            var param_first: [String: [Float]]
        }
        var name: String
        var num_classes: Int
        var input_shape: [Int]
        var output_shape: [Int]
        var output: [Float]
        var logits: [Float]?
        var checks: Checks
    }

    static var names: [String] {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("index.json")) else { return [] }
        return (try? JSONDecoder().decode([String].self, from: data)) ?? []
    }

    /// The fixtures' extra variants, built as `make_fidelity.py` builds them.
    static func architecture(_ reference: Reference) throws -> Architecture {
        switch reference.name {
        case "resnet50_dilated_10":
            guard case .resnet(var config) = try Architecture.named("resnet50", numClasses: 10) else { throw ModelError.badInput("resnet50") }
            config.replaceStrideWithDilation = [false, true, true]
            return .resnet(config)
        case "resnext50_32x4d_odd": return try Architecture.named("resnext50_32x4d", numClasses: reference.num_classes)
        case "vgg11_bn_5": return try Architecture.named("vgg11_bn", numClasses: reference.num_classes)
        default: return try Architecture.named(reference.name, numClasses: reference.num_classes)
        }
    }

    @Test func everyNamedArchitectureHasAReference() {
        #expect(Set(Architecture.names).isSubset(of: Set(Self.names)))
    }

    @Test(arguments: names, KernelPath.available)
    func matchesTorchvision(_ name: String, _ path: KernelPath) throws {
        // Models loaded in this task run `path`; other tests' models keep `KernelPath.current`.
        try KernelPath.$forTask.withValue(path) { try check(name, path) }
    }

    private func check(_ name: String, _ path: KernelPath) throws {
        let primary = path == KernelPath.available[0]
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("\(name).json"))
        let reference = try JSONDecoder().decode(Reference.self, from: data)
        let model = try Self.architecture(reference).build()
        let weights = Synthetic.weights(for: model)
        try model.load(weights)

        // The formula itself first: the same first values as NumPy computed.
        let input = Synthetic.input(reference.input_shape)
        #expect(Array(input.data.prefix(4)) == reference.checks.input_first)
        for (key, first) in reference.checks.param_first {
            let values = try weights.floats(for: key)
            #expect(Array(values.prefix(first.count)) == first, "formula differs for \(key)")
        }

        let output = try model.forward(input)
        #expect(output.shape == reference.output_shape)
        let torch = try Tensor(shape: reference.output_shape, scalars: reference.output)
        let ratio = output.maxDifference(torch) / torch.maxMagnitude
        print("fidelity \(name) [\(path.rawValue)]: max|swift - torch| / max|torch| = \(ratio) (max|torch| = \(torch.maxMagnitude))")
        #expect(ratio <= 1e-4, "\(name) [\(path.rawValue)]: relative difference \(ratio)")
        guard primary else { return }
        // The layer-by-layer forward (torchvision's, BatchNorm not folded) agrees too.
        let layered = model.network.forward(input)
        let layeredRatio = layered.maxDifference(torch) / torch.maxMagnitude
        print("fidelity \(name) layer by layer: \(layeredRatio)")
        #expect(layeredRatio <= 1e-4, "\(name): layer-by-layer relative difference \(layeredRatio)")
        if let logits = reference.logits {
            let torchLogits = try Tensor(shape: reference.output_shape, scalars: logits)
            let logitRatio = try model.logits(input).maxDifference(torchLogits) / torchLogits.maxMagnitude
            print("fidelity \(name) logits: \(logitRatio)")
            #expect(logitRatio <= 1e-4)
        }
    }
}
