/// A network family and its configuration: everything needed to build it, as data.
public enum Architecture: Sendable, Equatable, Codable {
    /// ResNet, ResNeXt or Wide ResNet (torchvision's `ResNet`).
    case resnet(ResNetConfig)
    /// torchvision's VGG, with or without BatchNorm.
    case vgg(VGGConfig)
    /// The seed document's VGG, with named blocks and a softmax output.
    case tutorialVGG(TutorialVGGConfig)

    /// The named variants, as torchvision (and the seed document) name them.
    public static let named: [(name: String, architecture: Architecture)] = {
        func resnet(_ block: ResNetConfig.Block, _ layers: [Int], groups: Int = 1, width: Int = 64) -> Architecture {
            .resnet(ResNetConfig(block: block, layers: layers, groups: groups, widthPerGroup: width))
        }
        var list: [(String, Architecture)] = [
            ("resnet18", resnet(.basic, [2, 2, 2, 2])),
            ("resnet34", resnet(.basic, [3, 4, 6, 3])),
            ("resnet50", resnet(.bottleneck, [3, 4, 6, 3])),
            ("resnet101", resnet(.bottleneck, [3, 4, 23, 3])),
            ("resnet152", resnet(.bottleneck, [3, 8, 36, 3])),
            ("resnext50_32x4d", resnet(.bottleneck, [3, 4, 6, 3], groups: 32, width: 4)),
            ("resnext101_32x8d", resnet(.bottleneck, [3, 4, 23, 3], groups: 32, width: 8)),
            ("resnext101_64x4d", resnet(.bottleneck, [3, 4, 23, 3], groups: 64, width: 4)),
            ("wide_resnet50_2", resnet(.bottleneck, [3, 4, 6, 3], width: 128)),
            ("wide_resnet101_2", resnet(.bottleneck, [3, 4, 23, 3], width: 128)),
        ]
        for (depth, cfg) in [(11, "A"), (13, "B"), (16, "D"), (19, "E")] {
            let layers = VGGConfig.configurations[cfg] ?? []
            list.append(("vgg\(depth)", .vgg(VGGConfig(layers: layers, batchNorm: false))))
            list.append(("vgg\(depth)_bn", .vgg(VGGConfig(layers: layers, batchNorm: true))))
        }
        for (depth, blocks) in [(11, [1, 1, 2, 2, 2]), (13, [2, 2, 2, 2, 2]), (16, [2, 2, 3, 3, 3]), (19, [2, 2, 4, 4, 4])] {
            list.append(("tutorial_vgg\(depth)", .tutorialVGG(TutorialVGGConfig(blocks: blocks))))
        }
        return list.map { (name: $0.0, architecture: $0.1) }
    }()

    /// The names of `named`, in its order (`resnet18` ... `tutorial_vgg19`).
    public static var names: [String] { named.map(\.name) }

    /// A named variant with `numClasses` outputs.
    public static func named(_ name: String, numClasses: Int = 1000) throws -> Architecture {
        guard var architecture = named.first(where: { $0.name == name })?.architecture else {
            throw ModelError.unknownArchitecture(name, known: names)
        }
        architecture.numClasses = numClasses
        return architecture
    }

    /// Outputs of the final Linear layer (1000 for ImageNet); setting it changes only the head.
    public var numClasses: Int {
        get {
            switch self {
            case .resnet(let c): c.numClasses
            case .vgg(let c): c.numClasses
            case .tutorialVGG(let c): c.numClasses
            }
        }
        set {
            switch self {
            case .resnet(var c): c.numClasses = newValue; self = .resnet(c)
            case .vgg(var c): c.numClasses = newValue; self = .vgg(c)
            case .tutorialVGG(var c): c.numClasses = newValue; self = .tutorialVGG(c)
            }
        }
    }

    /// The variant's name when it is a named one (whatever its class count and dilation),
    /// otherwise a description of its configuration.
    public var name: String {
        var canonical = self
        canonical.numClasses = 1000
        if case .resnet(var c) = canonical {
            c.replaceStrideWithDilation = [false, false, false]
            canonical = .resnet(c)
        }
        if let match = Self.named.first(where: { $0.architecture == canonical }) { return match.name }
        switch self {
        case .resnet(let c):
            return "resnet(\(c.block.rawValue), layers \(c.layers), planes \(c.planes), stem \(c.stemWidth), groups \(c.groups), width \(c.widthPerGroup))"
        case .vgg(let c):
            return "vgg(\(c.layers.map { $0.map(String.init) ?? "M" }.joined(separator: ",")), bn: \(c.batchNorm))"
        case .tutorialVGG(let c):
            return "tutorial_vgg(blocks \(c.blocks))"
        }
    }

    /// The smallest square input the network accepts (minimum sizes from torchvision's weight tables).
    public var minimumInputSize: Int {
        switch self {
        case .resnet: 1
        case .vgg: 32
        case .tutorialVGG: 224
        }
    }

    /// The same architecture with as many classes as the weights' classifier (`fc` or
    /// `classifier.6`) has, so a named variant fits a fine-tuned head.
    public func withClassCount(of source: some TensorSource) -> Architecture {
        var fitted = self
        let head = source.tensorShapes.first { $0.key == "fc.weight" || $0.key == "classifier.6.weight" }
        if let shape = head?.shape, shape.count == 2, (1 ... Self.maxDimension).contains(shape[0]) { fitted.numClasses = shape[0] }
        return fitted
    }

    /// A new network with default weights (BatchNorm identity, zeros elsewhere).
    public func build() -> Model { Model(self) }
}
