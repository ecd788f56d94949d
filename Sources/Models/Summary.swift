import Foundation

/// The table torchsummary's `summary(model, input_size)` prints, computed from shapes alone.
/// Rows are the modules in the order their forward finishes (containers like `nn.Sequential`
/// are not listed; a block is listed after its children; a module called twice is listed twice).
public struct Summary: Sendable, Codable {
    /// The model's architecture name (`resnet18`).
    public var architecture: String
    /// `[C, H, W]`.
    public var inputSize: [Int]
    /// One row per module run, in the order their forwards finish.
    public var rows: [SummaryRow]

    enum CodingKeys: String, CodingKey {
        case architecture, rows
        case inputSize = "input_size"
    }

    /// The summary of `model` for one input of `inputSize`, from shapes alone (nothing runs).
    ///
    /// - Parameters:
    ///   - model: The model to summarise.
    ///   - inputSize: `[C, H, W]` of one input, without the batch dimension.
    /// - Throws: `ModelError.badInput` when the network cannot take an input of that size.
    public init(model: Model, inputSize: [Int]) throws {
        architecture = model.name
        self.inputSize = inputSize
        rows = try model.summaryRows(inputSize: inputSize)
    }

    /// The sum of the rows' parameters (torchsummary's "Total params"); buffers are not counted.
    public var totalParameters: Int { rows.reduce(0) { $0 + $1.parameters } }
    /// The parameters of trainable rows ("Trainable params").
    public var trainableParameters: Int { rows.filter(\.trainable).reduce(0) { $0 + $1.parameters } }

    /// Sizes in MB as torchsummary computes them: 4 bytes a float, outputs counted twice
    /// (forward and backward), batch size 1.
    public var inputMB: Double { Double(inputSize.reduce(1, *)) * 4 / 1_048_576 }
    /// Every row's output, counted twice (forward and backward), in MiB: "Forward/backward pass size (MB)".
    public var forwardBackwardMB: Double { 2 * Double(rows.reduce(0) { $0 + $1.outputShape.dropFirst().reduce(1, *) }) * 4 / 1_048_576 }
    /// The parameters in MiB: "Params size (MB)".
    public var parametersMB: Double { Double(totalParameters) * 4 / 1_048_576 }
    /// Input, forward/backward and parameters together: "Estimated Total Size (MB)".
    public var totalMB: Double { inputMB + forwardBackwardMB + parametersMB }

    /// The table, line for line as torchsummary prints it.
    public var text: String {
        func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        func line(_ a: String, _ b: String, _ c: String) -> String { pad(a, 20) + "  " + pad(b, 25) + " " + pad(c, 15) }
        let rule = String(repeating: "-", count: 64), double = String(repeating: "=", count: 64)
        var lines = [rule, line("Layer (type)", "Output Shape", "Param #"), double]
        for (i, row) in rows.enumerated() {
            let shape = "[" + row.outputShape.map(String.init).joined(separator: ", ") + "]"
            lines.append(line("\(row.type)-\(i + 1)", shape, row.parameters.grouped))
        }
        lines += [double,
                  "Total params: \(totalParameters.grouped)",
                  "Trainable params: \(trainableParameters.grouped)",
                  "Non-trainable params: \((totalParameters - trainableParameters).grouped)",
                  rule,
                  String(format: "Input size (MB): %0.2f", inputMB),
                  String(format: "Forward/backward pass size (MB): %0.2f", forwardBackwardMB),
                  String(format: "Params size (MB): %0.2f", parametersMB),
                  String(format: "Estimated Total Size (MB): %0.2f", totalMB),
                  rule]
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Int {
    /// The number with thousands separators, as torchsummary prints it: `-1234567` is `"-1,234,567"`.
    /// The one formatter behind every count zoo prints.
    public var grouped: String {
        let digits = Array(String(magnitude))
        var out = self < 0 ? "-" : ""
        for (i, d) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return out
    }
}
