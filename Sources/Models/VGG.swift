// VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
// Recognition" (2014). A port of torchvision/models/vgg.py, and of the tutorial VGG of the
// seed document (named blocks of bias-free conv + BN + ReLU, functional pools, softmax output).

/// torchvision's VGG: `features` from a configuration list, 7x7 adaptive pool, `classifier`.
public struct VGGConfig: Sendable, Equatable, Codable {
    /// Convolution widths; nil is a 2x2 max pool ("M" in torchvision's `cfgs`).
    public var layers: [Int?]
    /// Whether each convolution is followed by a BatchNorm (torchvision's `vgg16_bn` and friends).
    public var batchNorm: Bool
    /// Outputs of the last classifier layer (`classifier.6`).
    public var numClasses = 1000

    /// A VGG configuration.
    ///
    /// - Parameters:
    ///   - layers: Convolution widths, nil for a max pool (one of `configurations`).
    ///   - batchNorm: Whether each convolution is followed by a BatchNorm.
    ///   - numClasses: Outputs of the classifier.
    public init(layers: [Int?], batchNorm: Bool, numClasses: Int = 1000) {
        self.layers = layers
        self.batchNorm = batchNorm
        self.numClasses = numClasses
    }

    /// torchvision's `cfgs`: A = vgg11, B = vgg13, D = vgg16, E = vgg19.
    public static let configurations: [String: [Int?]] = [
        "A": [64, nil, 128, nil, 256, 256, nil, 512, 512, nil, 512, 512, nil],
        "B": [64, 64, nil, 128, 128, nil, 256, 256, nil, 512, 512, nil, 512, 512, nil],
        "D": [64, 64, nil, 128, 128, nil, 256, 256, 256, nil, 512, 512, 512, nil, 512, 512, 512, nil],
        "E": [64, 64, nil, 128, 128, nil, 256, 256, 256, 256, nil, 512, 512, 512, 512, nil, 512, 512, 512, 512, nil],
    ]
}

/// The classifier both VGGs share: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear,
/// so its weights are `classifier.0`, `classifier.3` and `classifier.6`.
func vggClassifier(_ numClasses: Int) -> Sequential {
    Sequential([Linear(512 * 7 * 7, 4096), ReLU(), Dropout(), Linear(4096, 4096), ReLU(), Dropout(),
                Linear(4096, numClasses)])
}

/// torchvision's `VGG`: `features`, a 7x7 adaptive average pool, and a three-layer `classifier`.
public final class VGG: Layer {
    /// The configuration the network was built from.
    public let config: VGGConfig
    /// `features.N`: a conv and its ReLU take two indices, three with BatchNorm, a pool one.
    public let features: Sequential
    /// Adaptive average pooling to 7x7, so that the classifier takes any input of 32x32 or more.
    public let avgpool = AdaptiveAvgPool2d(7, 7)
    /// Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear: weights at `classifier.0`, `.3` and `.6`.
    public let classifier: Sequential

    /// The network `config` describes, weights at their initial values until loaded.
    public init(_ config: VGGConfig) {
        self.config = config
        var layers: [Layer] = []
        var channels = 3
        for width in config.layers {
            guard let width else {
                layers.append(MaxPool2d(kernelSize: 2, stride: 2))
                continue
            }
            layers.append(Conv2d(channels, width, kernelSize: 3, padding: 1))
            if config.batchNorm { layers.append(BatchNorm2d(width)) }
            layers.append(ReLU())
            channels = width
        }
        features = Sequential(layers)
        classifier = vggClassifier(config.numClasses)
    }

    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {
        try features.visit(path.child("features"), body)
        try classifier.visit(path.child("classifier"), body)
    }

    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        let pooled = try avgpool.trace(try features.trace(input, &rows), &rows)
        return try classifier.trace(Flatten.shape(pooled), &rows)
    }

    /// `classifier(flatten(avgpool(features(x))))`: logits for `x` shaped `[N, 3, H, W]`.
    public func forward(_ x: Tensor) -> Tensor {
        var x = features.forward(x)
        x = avgpool.forward(x)
        x = Flatten.forward(x)
        x = classifier.forward(x)
        return x
    }
}

extension VGG: Compilable {
    func compile(_ plan: inout Plan.Builder) {
        plan.append(features)
        plan.append(avgpool)
        plan.append(.flatten)
        plan.append(classifier)
    }
}

/// The seed document's VGG: five named blocks (`conv3_64` ... `conv3_512b`) of bias-free 3x3
/// conv + BatchNorm + ReLU, `F.max_pool2d(out, 2)` after each, `view(N, -1)`, the VGG
/// classifier, and `F.softmax` on the output. Its classifier needs exactly 7x7 features, so
/// inputs are 224x224 (to 231x231).
public struct TutorialVGGConfig: Sendable, Equatable, Codable {
    /// Convolutions per block: VGG_11 [1, 1, 2, 2, 2], VGG_13 [2, 2, 2, 2, 2], VGG_16 [2, 2, 3, 3, 3], VGG_19 [2, 2, 4, 4, 4].
    public var blocks: [Int]
    /// Outputs of the last classifier layer (`classifier.6`), before the softmax.
    public var numClasses = 1000

    /// A tutorial VGG configuration.
    ///
    /// - Parameters:
    ///   - blocks: Convolutions in each of the five blocks.
    ///   - numClasses: Outputs of the classifier.
    public init(blocks: [Int], numClasses: Int = 1000) {
        self.blocks = blocks
        self.numClasses = numClasses
    }

    static let blockNames = ["conv3_64", "conv3_128", "conv3_256", "conv3_512a", "conv3_512b"]
    static let widths = [64, 128, 256, 512, 512]
}

/// The seed document's VGG, built from a `TutorialVGGConfig`; its output is class probabilities.
public final class TutorialVGG: Layer {
    /// The configuration the network was built from.
    public let config: TutorialVGGConfig
    /// The five blocks under their state-dict names (`conv3_64` ... `conv3_512b`), each conv, BatchNorm, ReLU repeated.
    public let blocks: [(name: String, layers: Sequential)]
    /// The VGG classifier; the softmax after it is functional, not a module.
    public let classifier: Sequential
    private let pool = MaxPool2d(kernelSize: 2, listed: false)

    /// The network `config` describes, weights at their initial values until loaded.
    public init(_ config: TutorialVGGConfig) {
        self.config = config
        var channels = 3
        var blocks: [(String, Sequential)] = []
        for (i, count) in config.blocks.enumerated() {
            let width = TutorialVGGConfig.widths[i]
            var layers: [Layer] = []
            for _ in 0 ..< count {
                layers += [Conv2d(channels, width, kernelSize: 3, padding: 1, bias: false), BatchNorm2d(width), ReLU()]
                channels = width
            }
            blocks.append((TutorialVGGConfig.blockNames[i], Sequential(layers)))
        }
        self.blocks = blocks.map { (name: $0.0, layers: $0.1) }
        classifier = vggClassifier(config.numClasses)
    }

    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {
        for block in blocks { try block.layers.visit(path.child(block.name), body) }
        try classifier.visit(path.child("classifier"), body)
    }

    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        let features = try blocks.reduce(input) { try pool.trace(try $1.layers.trace($0, &rows), &rows) }
        return try classifier.trace(Flatten.shape(features), &rows)
    }

    /// Class probabilities (the tutorial's softmax output).
    public func forward(_ x: Tensor) -> Tensor {
        logits(x).softmax()
    }

    /// The classifier's output before the softmax.
    public func logits(_ x: Tensor) -> Tensor {
        let features = blocks.reduce(x) { pool.forward($1.layers.forward($0)) }
        return classifier.forward(Flatten.forward(features))
    }
}

extension TutorialVGG: Compilable {
    func compile(_ plan: inout Plan.Builder) {
        for block in blocks {
            plan.append(block.layers)
            plan.append(pool)
        }
        plan.append(.flatten)
        plan.append(classifier)
        plan.append(.softmax)
    }
}
