import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The shipped demo: import, verify and convert a small ResNet trained on digits, then evaluate it.",
            discussion: "The model (demo/digits_resnet.pth) was trained with PyTorch by demo/train.py; zoo's predictions on its held-out test set must equal PyTorch's.")

        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        func run() throws {
            let report = try zoo.zoo().demo()
            try options.emit(report) { r in
                """
                \(r.model): imported, converted to \(r.native ?? "-"), \(r.verified ? "verified" : "NOT verified")
                test accuracy \(String(format: "%.2f%%", r.accuracy * 100)) on \(r.testImages) held-out digits (PyTorch: \(String(format: "%.2f%%", r.torchAccuracy * 100)))
                predictions identical to PyTorch's: \(r.agreeWithTorch)/\(r.testImages) (max logit difference \(String(format: "%.1e", r.maxLogitDifference))); forward \(String(format: "%.1f", r.milliseconds)) ms

                """
            }
            guard report.ok else { throw ExitCode(1) }
        }
    }
}
