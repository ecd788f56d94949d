// ResNet, ResNeXt and Wide ResNet: He et al., "Deep Residual Learning for Image Recognition"
// (2015); Xie et al., "Aggregated Residual Transformations" (2016); Zagoruyko & Komodakis,
// "Wide Residual Networks" (2016). A port of torchvision/models/resnet.py: property names are
// its state-dict keys, and the stride of a Bottleneck sits on the 3x3 convolution as there.

/// Everything that distinguishes one ResNet from another.
public struct ResNetConfig: Sendable, Equatable, Codable {
    /// The residual block every stage is built of.
    public enum Block: String, Sendable, Codable {
        /// torchvision's `BasicBlock` (two 3x3 convolutions; ResNet-18 and -34) and `Bottleneck`
        /// (1x1, 3x3, 1x1; ResNet-50 and deeper, ResNeXt, Wide ResNet).
        case basic, bottleneck

        /// Output channels per `planes`: 1 for BasicBlock, 4 for Bottleneck.
        public var expansion: Int { self == .basic ? 1 : 4 }
    }

    /// BasicBlock or Bottleneck.
    public var block: Block
    /// Blocks in layer1...layer4.
    public var layers: [Int]
    /// Groups of the 3x3 convolutions in each Bottleneck: 32 or 64 for ResNeXt, 1 otherwise.
    public var groups = 1
    /// Channels per group of a Bottleneck's 3x3 convolution at `planes` 64 (`width_per_group`):
    /// 4 or 8 for ResNeXt, 128 for Wide ResNet, 64 otherwise.
    public var widthPerGroup = 64
    /// For layer2...layer4, whether the stage dilates instead of striding (torchvision's
    /// `replace_stride_with_dilation`, used by segmentation backbones).
    public var replaceStrideWithDilation = [false, false, false]
    /// Outputs of `fc`.
    public var numClasses = 1000
    /// `planes` of layer1...layer4; torchvision uses 64, 128, 256, 512. Narrower stages make
    /// small models (zoo's demo) in the same key layout.
    public var planes = [64, 128, 256, 512]
    /// Output channels of `conv1`, the stem; torchvision uses 64.
    public var stemWidth = 64

    /// A configuration with torchvision's defaults for everything not given.
    ///
    /// - Parameters:
    ///   - block: BasicBlock or Bottleneck.
    ///   - layers: Blocks in each of the four stages (`[3, 4, 6, 3]` for ResNet-50).
    ///   - groups: Groups of the 3x3 convolutions in each Bottleneck.
    ///   - widthPerGroup: Channels per group of a Bottleneck's 3x3 convolution at `planes` 64.
    ///   - replaceStrideWithDilation: For layer2...layer4, whether the stage dilates instead of striding.
    ///   - numClasses: Outputs of `fc`.
    ///   - planes: `planes` of each stage.
    ///   - stemWidth: Output channels of `conv1`.
    public init(block: Block, layers: [Int], groups: Int = 1, widthPerGroup: Int = 64,
                replaceStrideWithDilation: [Bool] = [false, false, false], numClasses: Int = 1000,
                planes: [Int] = [64, 128, 256, 512], stemWidth: Int = 64) {
        self.block = block
        self.layers = layers
        self.groups = groups
        self.widthPerGroup = widthPerGroup
        self.replaceStrideWithDilation = replaceStrideWithDilation
        self.numClasses = numClasses
        self.planes = planes
        self.stemWidth = stemWidth
    }

    /// snake_case, like all of zoo's JSON; the camelCase keys of older catalogs and cache indexes are read too.
    enum CodingKeys: String, CodingKey {
        case block, layers, groups, planes
        case widthPerGroup = "width_per_group"
        case replaceStrideWithDilation = "replace_stride_with_dilation"
        case numClasses = "num_classes"
        case stemWidth = "stem_width"
    }

    enum OldKeys: String, CodingKey { case widthPerGroup, replaceStrideWithDilation, numClasses, stemWidth }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self), old = try decoder.container(keyedBy: OldKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ oldKey: OldKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? old.decodeIfPresent(T.self, forKey: oldKey) ?? fallback
        }
        self.init(block: try c.decode(Block.self, forKey: .block), layers: try c.decode([Int].self, forKey: .layers),
                  groups: try c.decodeIfPresent(Int.self, forKey: .groups) ?? 1,
                  widthPerGroup: try value(.widthPerGroup, .widthPerGroup, 64),
                  replaceStrideWithDilation: try value(.replaceStrideWithDilation, .replaceStrideWithDilation, [false, false, false]),
                  numClasses: try value(.numClasses, .numClasses, 1000),
                  planes: try c.decodeIfPresent([Int].self, forKey: .planes) ?? [64, 128, 256, 512],
                  stemWidth: try value(.stemWidth, .stemWidth, 64))
    }
}

/// A residual block, BasicBlock or Bottleneck, with its optional `downsample` (1x1 conv + BN).
public final class ResidualBlock: Layer {
    /// BasicBlock or Bottleneck, the torchvision class whose name the summary shows.
    public let kind: ResNetConfig.Block
    /// The first convolution and its BatchNorm: 3x3 (strided) in a BasicBlock, the 1x1 reduction in a Bottleneck.
    public let conv1: Conv2d, bn1: BatchNorm2d
    /// The second convolution and its BatchNorm: 3x3 in both kinds; in a Bottleneck it carries the stride and groups.
    public let conv2: Conv2d, bn2: BatchNorm2d
    /// Bottleneck only.
    public let conv3: Conv2d?, bn3: BatchNorm2d?
    /// The shortcut's 1x1 convolution and BatchNorm (`downsample.0`, `downsample.1`) when the block
    /// changes resolution or width; nil for an identity shortcut.
    public let downsample: Sequential?
    private let relu = ReLU()

    init(_ kind: ResNetConfig.Block, inplanes: Int, planes: Int, stride: Int, downsample: Sequential?,
         groups: Int, baseWidth: Int, dilation: Int) {
        self.kind = kind
        self.downsample = downsample
        switch kind {
        case .basic:
            conv1 = Conv2d(inplanes, planes, kernelSize: 3, stride: stride, padding: dilation, dilation: dilation, bias: false)
            bn1 = BatchNorm2d(planes)
            conv2 = Conv2d(planes, planes, kernelSize: 3, padding: dilation, dilation: dilation, bias: false)
            bn2 = BatchNorm2d(planes)
            conv3 = nil
            bn3 = nil
        case .bottleneck:
            let width = planes * baseWidth / 64 * groups
            conv1 = Conv2d(inplanes, width, kernelSize: 1, bias: false)
            bn1 = BatchNorm2d(width)
            conv2 = Conv2d(width, width, kernelSize: 3, stride: stride, padding: dilation, dilation: dilation,
                           groups: groups, bias: false)
            bn2 = BatchNorm2d(width)
            conv3 = Conv2d(width, planes * 4, kernelSize: 1, bias: false)
            bn3 = BatchNorm2d(planes * 4)
        }
    }

    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {
        try conv1.visit(path.child("conv1"), body)
        try bn1.visit(path.child("bn1"), body)
        try conv2.visit(path.child("conv2"), body)
        try bn2.visit(path.child("bn2"), body)
        if let conv3, let bn3 {
            try conv3.visit(path.child("conv3"), body)
            try bn3.visit(path.child("bn3"), body)
        }
        try downsample?.visit(path.child("downsample"), body)
    }

    /// In the order torchvision's forward runs them, which is the order torchsummary lists them.
    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        var x = try relu.trace(try bn1.trace(try conv1.trace(input, &rows), &rows), &rows)
        x = try bn2.trace(try conv2.trace(x, &rows), &rows)
        if let conv3, let bn3 {
            x = try relu.trace(x, &rows)
            x = try bn3.trace(try conv3.trace(x, &rows), &rows)
        }
        let identity = try downsample?.trace(input, &rows) ?? input
        guard identity == x else { throw ModelError.badInput("residual shapes \(identity) and \(x) differ") }
        x = try relu.trace(x, &rows)
        var block = row(x)
        block.type = kind == .basic ? "BasicBlock" : "Bottleneck"  // torchvision's class names
        rows.append(block)
        return x
    }

    /// `BasicBlock.forward` / `Bottleneck.forward`.
    public func forward(_ x: Tensor) -> Tensor {
        var identity = x

        var out = conv1.forward(x)
        out = bn1.forward(out)
        out = relu.forward(out)

        out = conv2.forward(out)
        out = bn2.forward(out)
        if let conv3, let bn3 {
            out = relu.forward(out)

            out = conv3.forward(out)
            out = bn3.forward(out)
        }

        if let downsample {
            identity = downsample.forward(x)
        }

        Kernels.add(&out, identity)
        out = relu.forward(out)

        return out
    }
}

extension ResidualBlock: Compilable {
    /// One step: the convolutions with their BatchNorms folded in, ReLU after each, the
    /// identity (or the downsampled input) added before the last ReLU.
    func compile(_ plan: inout Plan.Builder) {
        var convs = [conv1.fused(with: bn1), conv2.fused(with: bn2)]
        if let conv3, let bn3 { convs.append(conv3.fused(with: bn3)) }
        let down = downsample.flatMap { seq in
            (seq.layers.first as? Conv2d)?.fused(with: seq.layers.dropFirst().first as? BatchNorm2d)
        }
        plan.append(.residual(convs: convs, downsample: down))
    }
}

/// torchvision's `ResNet`.
public final class ResNet: Layer {
    /// The configuration the network was built from.
    public let config: ResNetConfig
    /// The stem: a 7x7 stride-2 convolution from RGB to `stemWidth` channels.
    public let conv1: Conv2d
    /// The stem's BatchNorm.
    public let bn1: BatchNorm2d
    /// The ReLU after the stem's BatchNorm.
    public let relu = ReLU()
    /// The stem's 3x3 stride-2 max pool.
    public let maxpool = MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
    /// The four stages of residual blocks; each but layer1 halves the resolution (unless it dilates).
    public let layer1: [ResidualBlock], layer2: [ResidualBlock], layer3: [ResidualBlock], layer4: [ResidualBlock]
    /// Global average pooling to 1x1 before `fc`.
    public let avgpool = AdaptiveAvgPool2d(1, 1)
    /// The classifier: `planes[3] * expansion` features (512 or 2048) to `numClasses`.
    public let fc: Linear

    /// The network `config` describes, weights at their initial values until loaded.
    public init(_ config: ResNetConfig) {
        self.config = config
        conv1 = Conv2d(3, config.stemWidth, kernelSize: 7, stride: 2, padding: 3, bias: false)
        bn1 = BatchNorm2d(config.stemWidth)
        var inplanes = config.stemWidth
        var dilation = 1
        /// `ResNet._make_layer`.
        func makeLayer(_ stage: Int, stride: Int) -> [ResidualBlock] {
            let planes = config.planes[stage]
            var stride = stride
            let previousDilation = dilation
            if stage > 0 && config.replaceStrideWithDilation[stage - 1] {
                dilation *= stride
                stride = 1
            }
            let expanded = planes * config.block.expansion
            let downsample = stride != 1 || inplanes != expanded
                ? Sequential([Conv2d(inplanes, expanded, kernelSize: 1, stride: stride, bias: false), BatchNorm2d(expanded)])
                : nil
            var blocks = [ResidualBlock(config.block, inplanes: inplanes, planes: planes, stride: stride, downsample: downsample,
                                        groups: config.groups, baseWidth: config.widthPerGroup, dilation: previousDilation)]
            inplanes = expanded
            for _ in 1 ..< max(config.layers[stage], 1) {
                blocks.append(ResidualBlock(config.block, inplanes: inplanes, planes: planes, stride: 1, downsample: nil,
                                            groups: config.groups, baseWidth: config.widthPerGroup, dilation: dilation))
            }
            return Array(blocks.prefix(config.layers[stage]))
        }
        layer1 = makeLayer(0, stride: 1)
        layer2 = makeLayer(1, stride: 2)
        layer3 = makeLayer(2, stride: 2)
        layer4 = makeLayer(3, stride: 2)
        fc = Linear(config.planes[3] * config.block.expansion, config.numClasses)
    }

    private var stages: [(String, [ResidualBlock])] {
        [("layer1", layer1), ("layer2", layer2), ("layer3", layer3), ("layer4", layer4)]
    }

    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {
        try conv1.visit(path.child("conv1"), body)
        try bn1.visit(path.child("bn1"), body)
        for (name, blocks) in stages {
            for (i, block) in blocks.enumerated() { try block.visit(path.child(name).child(i), body) }
        }
        try fc.visit(path.child("fc"), body)
    }

    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        var x = try maxpool.trace(try relu.trace(try bn1.trace(try conv1.trace(input, &rows), &rows), &rows), &rows)
        for (_, blocks) in stages { x = try blocks.reduce(x) { try $1.trace($0, &rows) } }
        x = try avgpool.trace(x, &rows)
        return try fc.trace(Flatten.shape(x), &rows)
    }

    /// `ResNet._forward_impl`.
    public func forward(_ x: Tensor) -> Tensor {
        var x = conv1.forward(x)
        x = bn1.forward(x)
        x = relu.forward(x)
        x = maxpool.forward(x)

        x = layer1.reduce(x) { $1.forward($0) }
        x = layer2.reduce(x) { $1.forward($0) }
        x = layer3.reduce(x) { $1.forward($0) }
        x = layer4.reduce(x) { $1.forward($0) }

        x = avgpool.forward(x)
        x = Flatten.forward(x)
        x = fc.forward(x)

        return x
    }
}

extension ResNet: Compilable {
    func compile(_ plan: inout Plan.Builder) {
        plan.append([conv1, bn1, relu, maxpool])
        for (_, blocks) in stages { blocks.forEach { plan.append($0) } }
        plan.append(avgpool)
        plan.append(.flatten)
        plan.append(fc)
    }
}
