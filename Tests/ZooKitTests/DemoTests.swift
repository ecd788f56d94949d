import Models
import Testing
@testable import ZooKit

/// The demo's evaluation, now a library call (`Zoo.demo`, `Evaluation`) that `zoo demo` prints.
@Suite struct DemoTests {
    @Test func predictionsAndAccuracy() throws {
        let logits = try Tensor(shape: [3, 3], scalars: [0, 2, 1,  5, 5, -1,  -3, -2, -1])
        #expect(logits.argmax() == [1, 0, 2])  // a tie goes to the first, as torch.argmax
        #expect(Evaluation.accuracy([1, 0, 2], labels: [1, 1, 2]) == 2.0 / 3)
        #expect(Evaluation.accuracy([], labels: []) == 0)
    }

    /// The shipped demo, offline, on a scratch cache: every prediction equals PyTorch's.
    @Test func demoAgreesWithTorch() throws {
        let scratch = try Scratch()
        let report = try makeZoo(scratch).demo()
        #expect(report.ok)
        #expect(report.testImages == 360)
        #expect(report.agreeWithTorch == 360)
        #expect(report.accuracy == report.torchAccuracy)
        #expect(report.maxLogitDifference < 1e-3)
    }
}
