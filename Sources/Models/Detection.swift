/// Which architecture a state dict belongs to, read from its keys and shapes: family, depth,
/// block type, groups and width, BatchNorm or not, number of classes.
extension Architecture {
    /// The architecture whose state-dict keys and shapes `source` has, head size included.
    ///
    /// - Throws: `ModelError.undetectedArchitecture` naming why each family did not fit, or naming
    ///   a dimension too large for any of them.
    public static func detect(_ source: some TensorSource) throws -> Architecture {
        let shapes = Dictionary(source.tensorShapes.map { ($0.key, $0.shape) }, uniquingKeysWith: { a, _ in a })
        if let (key, shape) = shapes.first(where: { $0.value.contains { $0 > maxDimension } }) {
            throw ModelError.undetectedArchitecture("\(key) has shape \(shape), with a dimension beyond any VGG or ResNet (\(maxDimension))")
        }
        var reasons: [String] = []
        for attempt in [detectResNet, detectVGG, detectTutorialVGG] {
            switch attempt(shapes) {
            case .success(let architecture): return architecture
            case .failure(let reason): reasons.append(reason.description)
            }
        }
        let sample = source.tensorShapes.prefix(4).map(\.key).joined(separator: ", ")
        throw ModelError.undetectedArchitecture(
            "no architecture fits this state dict (keys start \(sample)); pass --arch NAME. Candidates:\n"
                + reasons.map { "  " + $0 }.joined(separator: "\n"))
    }

    /// The largest channel or class count detection accepts: far above any real network, small
    /// enough that no layer size derived from it overflows.
    static let maxDimension = 1 << 24

    /// Why one family did not fit.
    struct Reason: Error, CustomStringConvertible {
        var description: String
        init(_ family: String, _ why: String) { description = "\(family): \(why)" }
    }

    private static func classes(_ shapes: [String: [Int]], _ key: String, _ family: String) -> Result<Int, Reason> {
        guard let shape = shapes[key], shape.count == 2 else { return .failure(Reason(family, "no 2-d \(key)")) }
        guard shape[0] > 0, shape[1] > 0 else { return .failure(Reason(family, "\(key) \(shape) is empty")) }
        return .success(shape[0])
    }

    /// How many consecutive indices `prefix.0.`, `prefix.1.`, ... the keys hold (one pass over the keys).
    private static func count(_ shapes: [String: [Int]], _ prefix: String) -> Int {
        let head = prefix + "."
        let present = Set(shapes.keys.compactMap { key -> Int? in
            guard key.hasPrefix(head) else { return nil }
            return Int(key.dropFirst(head.count).prefix { $0 != "." })
        })
        var n = 0
        while present.contains(n) { n += 1 }
        return n
    }

    static func detectResNet(_ shapes: [String: [Int]]) -> Result<Architecture, Reason> {
        let family = "resnet"
        guard let stem = shapes["conv1.weight"], stem.count == 4, stem[0] > 0 else { return .failure(Reason(family, "no conv1.weight [C, 3, 7, 7]")) }
        guard shapes["layer1.0.conv1.weight"] != nil else { return .failure(Reason(family, "no layer1.0.conv1.weight")) }
        let block: ResNetConfig.Block = shapes["layer1.0.conv3.weight"] != nil ? .bottleneck : .basic
        let layers = (1 ... 4).map { count(shapes, "layer\($0)") }
        guard layers.allSatisfy({ $0 > 0 }) else { return .failure(Reason(family, "blocks per stage \(layers): a stage is empty")) }
        var planes: [Int] = []
        var groups = 1, width = 64
        for stage in 1 ... 4 {
            let last = block == .basic ? "conv2" : "conv3"
            guard let out = shapes["layer\(stage).0.\(last).weight"], out.count == 4 else {
                return .failure(Reason(family, "no layer\(stage).0.\(last).weight"))
            }
            planes.append(out[0] / block.expansion)
        }
        guard planes.allSatisfy({ $0 > 0 }) else { return .failure(Reason(family, "stage widths \(planes): a stage has no channels")) }
        if block == .bottleneck, let conv2 = shapes["layer1.0.conv2.weight"], conv2.count == 4, conv2[1] > 0 {
            // width = planes * widthPerGroup / 64 * groups, and conv2 has width / groups inputs.
            groups = conv2[0] / conv2[1]
            guard groups > 0, conv2[0] % conv2[1] == 0, conv2[0] <= Int.max / 64 else {
                return .failure(Reason(family, "layer1.0.conv2.weight \(conv2): output channels are not a multiple of the inputs per group"))
            }
            width = conv2[0] * 64 / (planes[0] * groups)
            guard width > 0 else { return .failure(Reason(family, "layer1.0.conv2.weight \(conv2) gives no channels per group")) }
        }
        guard case .success(let numClasses) = classes(shapes, "fc.weight", family) else {
            return .failure(Reason(family, "no fc.weight [classes, features]"))
        }
        return .success(.resnet(ResNetConfig(block: block, layers: layers, groups: groups, widthPerGroup: width,
                                             numClasses: numClasses, planes: planes, stemWidth: stem[0])))
    }

    static func detectVGG(_ shapes: [String: [Int]]) -> Result<Architecture, Reason> {
        let family = "vgg"
        guard shapes["features.0.weight"] != nil else { return .failure(Reason(family, "no features.0.weight")) }
        let batchNorm = shapes["features.1.running_var"] != nil
        let convSlots = batchNorm ? 3 : 2
        // Walk the feature indices: a conv takes 2 (3 with BN) slots, anything else between convs is a pool.
        var layers: [Int?] = []
        var index = 0
        let last = shapes.keys.compactMap { key -> Int? in
            guard key.hasPrefix("features.") else { return nil }
            return Int(key.dropFirst("features.".count).prefix { $0 != "." })
        }.max() ?? 0
        guard last < 256 else { return .failure(Reason(family, "features.\(last) is beyond any VGG (the deepest has 53 feature layers)")) }
        while index <= last {
            if let conv = shapes["features.\(index).weight"], conv.count == 4 {
                layers.append(conv[0])
                index += convSlots
            } else {
                layers.append(nil)
                index += 1
            }
        }
        layers.append(nil)  // every VGG configuration ends with a pool, which has no weights
        guard case .success(let numClasses) = classes(shapes, "classifier.6.weight", family) else {
            return .failure(Reason(family, "no classifier.6.weight"))
        }
        let config = VGGConfig(layers: layers, batchNorm: batchNorm, numClasses: numClasses)
        guard VGGConfig.configurations.values.contains(where: { $0 == layers }) else {
            let layout = layers.map { $0.map(String.init) ?? "M" }.joined(separator: ",")
            return .failure(Reason(family, "features layout [\(layout)] is none of vgg11/13/16/19"))
        }
        return .success(.vgg(config))
    }

    static func detectTutorialVGG(_ shapes: [String: [Int]]) -> Result<Architecture, Reason> {
        let family = "tutorial_vgg"
        guard shapes["conv3_64.0.weight"] != nil else { return .failure(Reason(family, "no conv3_64.0.weight")) }
        let blocks = TutorialVGGConfig.blockNames.map { name in
            (0 ..< 64).filter { shapes["\(name).\($0 * 3).weight"]?.count == 4 }.count
        }
        guard blocks.allSatisfy({ $0 > 0 }) else { return .failure(Reason(family, "convolutions per block \(blocks): a block is empty")) }
        guard case .success(let numClasses) = classes(shapes, "classifier.6.weight", family) else {
            return .failure(Reason(family, "no classifier.6.weight"))
        }
        return .success(.tutorialVGG(TutorialVGGConfig(blocks: blocks, numClasses: numClasses)))
    }
}
