import Checkpoint
import Foundation

/// Where weights come from: a checkpoint, or tensors in memory.
public protocol TensorSource {
    /// Keys and shapes, in the source's order.
    var tensorShapes: [(key: String, shape: [Int])] { get }
    /// The values of `key` as float32, converted from whatever dtype the source stores.
    func floats(for key: String) throws -> [Float]
}

extension CheckpointFile: TensorSource {
    public var tensorShapes: [(key: String, shape: [Int])] { stateDict.entries.map { (key: $0.key, shape: $0.tensor.shape) } }

    public func floats(for key: String) throws -> [Float] {
        guard let tensor = stateDict[key] else { throw CheckpointError(.corrupt, path: path, "no tensor \(key)") }
        return try floats(of: tensor)
    }
}

/// Tensors by key, in order: formula weights in tests, weights built in code.
public struct NamedTensors: TensorSource, Sendable {
    /// The tensors under their state-dict keys; the first of a repeated key is the one read.
    public var tensors: [(key: String, tensor: Tensor)]

    /// Tensors under their state-dict keys (`conv1.weight`), in order.
    public init(_ tensors: [(key: String, tensor: Tensor)]) { self.tensors = tensors }

    public var tensorShapes: [(key: String, shape: [Int])] { tensors.map { (key: $0.key, shape: $0.tensor.shape) } }

    public func floats(for key: String) throws -> [Float] {
        guard let t = tensors.first(where: { $0.key == key }) else { throw ModelError.badInput("no tensor \(key)") }
        return t.tensor.data
    }
}

/// How strictly `Model.load` matches keys. Shapes must always match.
public struct LoadOptions: Sendable {
    /// Keys the network has and the state dict lacks keep their current values.
    public var allowMissing: Bool
    /// Keys the state dict has and the network lacks are ignored.
    public var allowUnexpected: Bool

    /// Options that allow missing or unexpected keys; both default to false, as in `strict`.
    ///
    /// - Parameters:
    ///   - allowMissing: Whether keys the network has and the state dict lacks are allowed.
    ///   - allowUnexpected: Whether keys the state dict has and the network lacks are allowed.
    public init(allowMissing: Bool = false, allowUnexpected: Bool = false) {
        self.allowMissing = allowMissing
        self.allowUnexpected = allowUnexpected
    }

    /// `load_state_dict(strict=True)`.
    public static let strict = LoadOptions()
    /// `load_state_dict(strict=False)`: e.g. a checkpoint with a replaced head.
    public static let nonStrict = LoadOptions(allowMissing: true, allowUnexpected: true)
}

/// What a load did.
public struct LoadReport: Sendable, Equatable {
    /// Keys whose values were put into the network, in the network's order.
    public var loaded: [String]
    /// Keys the network has and the source lacks (allowed by `allowMissing`), except `num_batches_tracked`.
    public var missing: [String]
    /// Keys the source has and the network lacks (allowed by `allowUnexpected`), in the source's order.
    public var unexpected: [String]
}

/// A network ready to load weights and run: one of the architectures, with state-dict keys
/// exactly torchvision's.
///
/// A model is `Sendable`: any number of tasks may run `forward` on one model at once. `load`
/// waits for the forward passes under way and holds new ones until the weights and the compiled
/// plan are both replaced, so no pass ever sees half of a load. (Writing a `Parameter`'s values
/// directly, bypassing `load`, is not synchronised: the plan would not see it anyway.)
public final class Model: @unchecked Sendable {
    /// The architecture the network was built from.
    public let architecture: Architecture
    /// The network itself (`ResNet`, `VGG` or `TutorialVGG`), for its parameters and layers.
    public let network: any Layer
    /// The compiled forward pass for the current weights: built by `load`, or by the first
    /// forward of a model that never loaded any. Read under `access`'s read lock, replaced
    /// under its write lock.
    private var compiled: Plan?
    private let access = ReadWriteLock()

    init(_ architecture: Architecture) {
        self.architecture = architecture
        switch architecture {
        case .resnet(let c): network = ResNet(c)
        case .vgg(let c): network = VGG(c)
        case .tutorialVGG(let c): network = TutorialVGG(c)
        }
    }

    /// The architecture's name (`resnet50`, `vgg16_bn`).
    public var name: String { architecture.name }

    /// Threads the BLAS kernels use (all cores unless set).
    public static var threads: Int {
        get { BLAS.threads }
        set { BLAS.threads = newValue }
    }

    /// Every parameter and buffer under its state-dict key, in torchvision's order.
    public var namedParameters: [(key: String, parameter: Parameter)] { network.namedParameters() }

    /// Puts weights into the network, checking every key and shape first: nothing is changed
    /// unless the whole state dict fits. `num_batches_tracked` may be absent, as in older files.
    @discardableResult
    public func load(_ source: some TensorSource, options: LoadOptions = .strict) throws -> LoadReport {
        try access.write { try replaceWeights(source, options: options) }
    }

    private func replaceWeights(_ source: some TensorSource, options: LoadOptions) throws -> LoadReport {
        let expected = namedParameters
        let provided = Dictionary(source.tensorShapes.map { ($0.key, $0.shape) }, uniquingKeysWith: { first, _ in first })
        let known = Set(expected.map(\.key))
        let missing = expected.filter { provided[$0.key] == nil && $0.parameter.kind != .counter }.map(\.key)
        let unexpected = source.tensorShapes.map(\.key).filter { !known.contains($0) }
        let mismatched = expected.compactMap { key, parameter -> ModelError.Mismatch? in
            guard let shape = provided[key], shape != parameter.shape else { return nil }
            return ModelError.Mismatch(key: key, expected: parameter.shape, found: shape)
        }
        if !mismatched.isEmpty || (!options.allowMissing && !missing.isEmpty) || (!options.allowUnexpected && !unexpected.isEmpty) {
            throw ModelError.stateDictMismatch(architecture: name, missing: options.allowMissing ? [] : missing,
                                               unexpected: options.allowUnexpected ? [] : unexpected, mismatched: mismatched)
        }
        var loaded: [String] = []
        for (key, parameter) in expected where provided[key] != nil {
            let values = try source.floats(for: key)
            guard values.count == parameter.count else {
                throw ModelError.stateDictMismatch(architecture: name, missing: [], unexpected: [], mismatched: [
                    ModelError.Mismatch(key: key, expected: [parameter.count], found: [values.count])])
            }
            parameter.values = values
            loaded.append(key)
        }
        compile()
        return LoadReport(loaded: loaded, missing: missing, unexpected: unexpected)
    }

    /// Runs `body` with the current plan, under the read lock; a model that never loaded weights
    /// compiles its initial ones first.
    private func withPlan<R>(_ body: (Plan) -> R) -> R {
        if let result = access.read({ compiled.map(body) }) { return result }
        access.write { if compiled == nil { compile() } }
        return withPlan(body)
    }

    /// Builds the plan for the current weights (BatchNorm folded). Every parameter is
    /// materialised first, so that forward passes under the read lock only ever read them.
    private func compile() {
        for (_, parameter) in namedParameters { _ = parameter.values }
        compiled = Plan(network)
    }

    /// The output shape for an input shape, or why the network cannot take it.
    public func outputShape(for input: [Int]) throws -> [Int] {
        try trace(input).output
    }

    /// The network's output shape and torchsummary rows for `input`, from one trace; throws
    /// for a shape the network cannot take.
    private func trace(_ input: [Int]) throws -> (output: [Int], rows: [SummaryRow]) {
        guard input.count == 4 else {
            throw ModelError.badInput("expected a batch of shape [N, 3, H, W], got rank \(input.count) shape \(input)")
        }
        guard input[1] == 3 else { throw ModelError.badInput("expected 3 channels (RGB), got \(input[1]) in shape \(input)") }
        guard input.allSatisfy({ $0 > 0 }) else { throw ModelError.badInput("empty input shape \(input)") }
        var rows: [SummaryRow] = []
        do {
            let output = try network.trace(input, &rows)
            return (output, rows)
        } catch let ModelError.badInput(reason) {
            throw ModelError.badInput("\(name) cannot take a \(input[2])x\(input[3]) input: \(reason) (at least \(architecture.minimumInputSize)x\(architecture.minimumInputSize))")
        }
    }

    /// Runs a batch `[N, 3, H, W]` and returns the output (logits; class probabilities for the
    /// tutorial VGG, as its forward ends in a softmax).
    public func forward(_ input: Tensor) throws -> Tensor {
        _ = try outputShape(for: input.shape)
        return withPlan { $0.run(input) }
    }

    /// The output before a final softmax: the tutorial VGG's logits; `forward` for the others.
    public func logits(_ input: Tensor) throws -> Tensor {
        _ = try outputShape(for: input.shape)
        return withPlan { $0.run(input, $0.logitSteps) }
    }

    /// Makes now the kernels' weight layouts (packed panels, Winograd transforms) that a forward
    /// on inputs of shape `input` reads, which that forward would otherwise make first: several
    /// steady-state forwards' worth of time (resnet18 at 224x224: about 4). Layouts depend on the
    /// input's size and on the images each thread runs (a batch the threads divide runs as one
    /// slice per thread; a 7x7 map runs Winograd F(2x2, 3x3) for up to three images, F(4x4, 3x3)
    /// for four or more). The OpenBLAS path has nothing to prepare.
    ///
    /// - Throws: `ModelError.badInput` for a shape the network cannot take.
    public func prepare(for input: [Int]) throws {
        _ = try outputShape(for: input)
        try withPlan { plan in Result { try plan.prepare(for: input) } }.get()
    }

    /// The plan's weight layouts made so far, and whether its kernels make any, for tests.
    var layouts: (made: Int, kernels: Bool) { withPlan { $0.layouts } }

    /// `prepare(for:)` on another thread; returns at once. A forward that starts meanwhile waits
    /// only for the layouts it reaches before they are made, never makes one twice, and a `load`
    /// waits for the preparation to end.
    public func prepareInBackground(for input: [Int]) {
        DispatchQueue.global(qos: .userInitiated).async { try? self.prepare(for: input) }
    }

    /// Floating-point operations (2 per multiply-add) of one forward pass on `input` `[N, C, H, W]`.
    public func flops(for input: [Int]) throws -> Double {
        2 * Double(try trace(input).rows.reduce(0) { $0 + $1.multiplyAdds })
    }

    /// The torchsummary rows for an input of shape `[C, H, W]` (batch -1, as torchsummary prints).
    public func summaryRows(inputSize: [Int]) throws -> [SummaryRow] {
        try trace([1] + inputSize).rows
    }
}

extension Model {
    /// A network for `checkpoint`, built for `architecture` (a named variant, with the class count
    /// read from the file's classifier) or detected from its keys and shapes, with the weights loaded.
    /// - Parameters:
    ///   - checkpoint: the opened file.
    ///   - name: a named architecture (`resnet50`), or nil to detect it from the keys and shapes.
    ///   - options: how strictly keys must match.
    ///   - inputShape: when given, checked before any weight is read.
    public static func load(_ checkpoint: CheckpointFile, architecture name: String? = nil,
                            options: LoadOptions = .strict, inputShape: [Int]? = nil) throws -> Model {
        var architecture: Architecture
        if let name {
            architecture = try Architecture.named(name).withClassCount(of: checkpoint)
        } else {
            architecture = try Architecture.detect(checkpoint)
        }
        let model = architecture.build()
        if let inputShape { _ = try model.outputShape(for: inputShape) }
        try model.load(checkpoint, options: options)
        return model
    }
}
