import Foundation
import Testing
import Models

/// Keys and shapes only, for tests that never read values.
struct Shapes: TensorSource {
    var tensorShapes: [(key: String, shape: [Int])]
    init(_ model: Model) { tensorShapes = model.namedParameters.map { (key: $0.key, shape: $0.parameter.shape) } }
    init(_ shapes: [(key: String, shape: [Int])]) { tensorShapes = shapes }
    /// `key d0 d1 ...` per line, the input format of the `detect` fuzz target.
    init(text: String) {
        tensorShapes = text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            return fields.first.map { (key: String($0), shape: fields.dropFirst().compactMap { Int($0) }) }
        }
    }
    func floats(for key: String) throws -> [Float] { throw ModelError.badInput("shapes only") }
}

@Suite struct LoadingTests {
    func weights(_ name: String, numClasses: Int = 1000) throws -> NamedTensors {
        Synthetic.weights(for: try Architecture.named(name, numClasses: numClasses).build())
    }

    @Test func keysAreTorchvisions() throws {
        let keys = try Architecture.named("resnet50").build().namedParameters.map(\.key)
        #expect(keys.count == 320)
        #expect(keys.prefix(6) == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"])
        #expect(keys.contains("layer2.0.downsample.1.running_var"))
        #expect(keys.last == "fc.bias")
        let vgg = try Architecture.named("vgg16_bn").build().namedParameters.map(\.key)
        #expect(vgg.contains("features.41.running_var") && vgg.contains("classifier.6.weight"))
        let tutorial = try Architecture.named("tutorial_vgg11").build().namedParameters.map(\.key)
        #expect(tutorial.first == "conv3_64.0.weight" && tutorial.contains("conv3_512b.4.running_mean"))
    }

    @Test func strictLoadNamesEveryProblem() throws {
        let model = try Architecture.named("resnet34").build()
        let error = #expect(throws: ModelError.self) { try model.load(try weights("resnet18")) }
        guard case .stateDictMismatch(_, let missing, let unexpected, let mismatched)? = error else {
            Issue.record("expected a state-dict mismatch")
            return
        }
        #expect(missing.contains("layer1.2.conv1.weight"))
        #expect(unexpected.isEmpty && mismatched.isEmpty)
        #expect(error?.description.contains("missing keys") == true)
    }

    @Test func shapeMismatchesGiveExpectedAndFound() throws {
        let model = try Architecture.named("resnet18").build()
        let error = #expect(throws: ModelError.self) { try model.load(try weights("resnet18", numClasses: 10)) }
        #expect(error?.description.contains("fc.weight: the network expects [1000, 512], the file has [10, 512]") == true)
        // Non-strict still refuses shape mismatches, as load_state_dict does.
        #expect(throws: ModelError.self) { try model.load(try weights("resnet18", numClasses: 10), options: .nonStrict) }
    }

    @Test func nonStrictLoadsAReplacedHead() throws {
        let model = try Architecture.named("resnet18", numClasses: 10).build()
        var source = try weights("resnet18", numClasses: 10)
        source.tensors.removeAll { $0.key.hasPrefix("fc.") }
        source.tensors.append((key: "head.weight", tensor: try Tensor.zeros([2, 2])))
        #expect(throws: ModelError.self) { try model.load(source) }
        let report = try model.load(source, options: .nonStrict)
        #expect(report.missing == ["fc.weight", "fc.bias"] && report.unexpected == ["head.weight"])
    }

    @Test func olderCheckpointsWithoutNumBatchesTrackedLoad() throws {
        var source = try weights("vgg11_bn")
        source.tensors.removeAll { $0.key.hasSuffix("num_batches_tracked") }
        #expect(try Architecture.named("vgg11_bn").build().load(source).missing.isEmpty)
    }

    @Test func nothingChangesWhenALoadFails() throws {
        let model = try Architecture.named("resnet18").build()
        #expect(throws: ModelError.self) { try model.load(try weights("resnet18", numClasses: 10)) }
        #expect(model.namedParameters.first?.parameter.values.allSatisfy { $0 == 0 } == true)
    }

    @Test(arguments: Architecture.names)
    func detection(_ name: String) throws {
        for classes in [1000, 10] {
            let detected = try Architecture.detect(Shapes(try Architecture.named(name, numClasses: classes).build()))
            #expect(detected == (try Architecture.named(name, numClasses: classes)))
            #expect(detected.name == name)
        }
    }

    @Test func detectionExplainsEveryFamily() throws {
        let source = NamedTensors([(key: "encoder.weight", tensor: try Tensor.zeros([2, 2]))])
        let error = #expect(throws: ModelError.self) { try Architecture.detect(source) }
        let text = error?.description ?? ""
        #expect(text.contains("resnet: no conv1.weight") && text.contains("vgg: no features.0.weight")
            && text.contains("tutorial_vgg: no conv3_64.0.weight"))
    }

    /// Inputs that once broke detection (a division by zero, a loop to features.10^12) and the
    /// fuzz seeds: each must be detected and built, or refused, and never crash.
    @Test func detectionFuzzInputsReplay() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/fuzz/detect")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        var detected: [String] = []
        for name in names {
            let source = Shapes(text: try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8))
            guard let architecture = try? Architecture.detect(source) else { continue }
            let model = architecture.build()
            if (try? model.outputShape(for: [1, 3, 32, 32])) != nil {
                _ = try model.forward(Synthetic.input([1, 3, 32, 32]))  // zero weights; must not trap
            }
            #expect(model.namedParameters.allSatisfy { $0.parameter.shape.allSatisfy { $0 <= 1 << 24 } })
            detected.append(name)
        }
        #expect(detected == ["resnet18.txt", "resnet50.txt", "resnext50_32x4d.txt", "vgg11_bn.txt", "vgg16.txt", "wide_resnet50_2.txt"])
    }

    @Test func detectionIsLinearInTheKeys() throws {
        // 200,000 blocks in one stage: counting them once per index took minutes.
        let source = Shapes((0 ..< 200_000).map { (key: "layer1.\($0).conv1.weight", shape: [64, 64, 3, 3]) })
        let start = Date()
        #expect(throws: ModelError.self) { try Architecture.detect(source) }
        #expect(Date().timeIntervalSince(start) < 60)  // quadratic counting took minutes
    }

    @Test func narrowResNetsAreGeneralConfigurations() throws {
        // zoo's demo shape: small stages in torchvision's key layout.
        let config = ResNetConfig(block: .basic, layers: [1, 1, 1, 1], numClasses: 10, planes: [8, 16, 32, 64], stemWidth: 8)
        let model = Architecture.resnet(config).build()
        try model.load(Synthetic.weights(for: model))
        #expect(try Architecture.detect(Shapes(model)) == .resnet(config))
        #expect(try model.forward(Synthetic.input([2, 3, 8, 8])).shape == [2, 10])
    }

    @Test func npyRoundTripAndRefusals() throws {
        let tensor = Synthetic.input([2, 3, 5, 7])
        #expect(try NPY.decode(NPY.encode(tensor)) == tensor)
        #expect(NPY.encode(tensor).count % 64 == 2 * 3 * 5 * 7 * 4 % 64)  // header padded to 64 bytes
        var float64 = NPY.encode(tensor)
        let descr = try #require(float64.firstRange(of: Array("<f4".utf8)))
        float64.replaceSubrange(descr, with: Array("<f8".utf8))
        let error = #expect(throws: ModelError.self) { try NPY.decode(float64) }
        #expect(error?.description.contains("dtype <f8 is not float32") == true)
        #expect(throws: ModelError.self) { try NPY.decode(Array(NPY.encode(tensor).dropLast(4))) }
        #expect(throws: ModelError.self) { try NPY.decode(Array("not numpy".utf8)) }
    }
}
