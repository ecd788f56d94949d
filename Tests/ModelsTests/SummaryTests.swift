import Foundation
import Testing
import Models

/// The seed document printed two torchsummary tables; zoo reproduces them line for line.
@Suite struct SummaryTests {
    static let seed = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Seed")

    @Test(arguments: ["tutorial_vgg19", "resnet34"])
    func reproducesTheSeedTable(_ name: String) throws {
        let expected = try String(contentsOf: Self.seed.appendingPathComponent("\(name).txt"), encoding: .utf8)
        let summary = try Summary(model: try Architecture.named(name).build(), inputSize: [3, 224, 224])
        let got = summary.text.split(separator: "\n", omittingEmptySubsequences: false)
        let want = expected.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(got.count == want.count)
        for (i, (g, w)) in zip(got, want).enumerated() where g != w {
            Issue.record("line \(i + 1): got '\(g)', seed has '\(w)'")
        }
    }

    @Test func parameterCountsMatchTorchvision() throws {
        // `params` column of torchvision's weight tables (parameters only, not BN buffers).
        let counts = ["resnet18": 11_689_512, "resnet50": 25_557_032, "resnext101_64x4d": 83_455_272,
                      "wide_resnet101_2": 126_886_696, "vgg11": 132_863_336, "vgg16_bn": 138_365_992,
                      "vgg19_bn": 143_678_248]
        for (name, count) in counts {
            let model = try Architecture.named(name).build()
            let parameters = model.namedParameters.filter { $0.parameter.kind == .parameter }.reduce(0) { $0 + $1.parameter.count }
            #expect(parameters == count, "\(name)")
        }
    }

    @Test func tooSmallInputsAreRefused() throws {
        let vgg = try Architecture.named("vgg16").build()
        #expect(throws: ModelError.self) { try vgg.outputShape(for: [1, 3, 16, 16]) }
        #expect(try vgg.outputShape(for: [1, 3, 32, 32]) == [1, 1000])
        let tutorial = try Architecture.named("tutorial_vgg11").build()
        #expect(throws: ModelError.self) { try tutorial.outputShape(for: [1, 3, 200, 200]) }
        #expect(throws: ModelError.self) { try tutorial.outputShape(for: [1, 4, 224, 224]) }
        #expect(throws: ModelError.self) { try tutorial.outputShape(for: [3, 224, 224]) }
    }
}
