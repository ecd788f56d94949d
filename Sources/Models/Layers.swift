import Foundation

// The layers of torchvision's VGG and ResNet, in eval mode. Each keeps torchvision's
// parameter names; the arithmetic lives in Convolution.swift, CKernels.swift, BLAS.swift and
// Loops.swift. `forward` runs one layer as PyTorch does; `Plan` (Plan.swift) runs a whole
// network with BatchNorm folded into the convolutions.

/// `nn.Conv2d` with square kernels.
public final class Conv2d: Layer {
    /// Channels, kernel size, stride, padding, dilation and groups.
    public let geometry: ConvGeometry
    /// `weight`, shaped `[out, in / groups, k, k]` as in PyTorch.
    public let weight: Parameter
    /// `bias`, shaped `[out]`; nil for a convolution made with `bias: false` (ResNet's, the tutorial VGG's).
    public let bias: Parameter?

    /// `nn.Conv2d(in, out, kernel_size, stride, padding, dilation, groups, bias)`, weights zero until loaded.
    ///
    /// - Parameters:
    ///   - inChannels: Channels of the input; a multiple of `groups`.
    ///   - outChannels: Channels of the output; a multiple of `groups`.
    ///   - kernelSize: Side of the square kernel, in pixels.
    ///   - stride: Step between output pixels, in input pixels.
    ///   - padding: Zeros added on every side, in pixels.
    ///   - dilation: Spacing between kernel taps, in pixels.
    ///   - groups: Channel groups convolved separately (32 or 64 in ResNeXt).
    ///   - bias: Whether the layer has a `bias` parameter.
    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        geometry = ConvGeometry(inChannels: inChannels, outChannels: outChannels, kernel: kernelSize, stride: stride,
                                padding: padding, dilation: dilation, groups: groups)
        weight = Parameter([outChannels, inChannels / groups, kernelSize, kernelSize])
        self.bias = bias ? Parameter([outChannels]) : nil
    }

    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {
        try body(path("weight"), weight)
        if let bias { try body(path("bias"), bias) }
    }

    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        let output = try geometry.outputShape(input)
        var r = row(output, weight, bias)
        r.multiplyAdds = output.reduce(1, *) * weight.count / geometry.outChannels
        rows.append(r)
        return output
    }

    /// The convolution of `x` (`[N, in, H, W]`) plus `bias`, giving `[N, out, H', W']`.
    public func forward(_ x: Tensor) -> Tensor { fused().run(x) }

    /// The convolution with a following eval-mode BatchNorm folded into its weights and bias:
    /// w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta.
    public func fused(with bn: BatchNorm2d? = nil) -> FusedConv {
        let out = geometry.outChannels
        var w = weight.values
        var b = bias?.values ?? [Float](repeating: 0, count: out)
        if let bn {
            let perOutput = w.count / out
            for o in 0 ..< out {
                let scale = Double(bn.weight.values[o]) / (Double(bn.runningVar.values[o]) + bn.eps).squareRoot()
                for i in o * perOutput ..< (o + 1) * perOutput { w[i] = Float(Double(w[i]) * scale) }
                b[o] = Float((Double(b[o]) - Double(bn.runningMean.values[o])) * scale + Double(bn.bias.values[o]))
            }
        }
        return FusedConv(geometry: geometry, weight: w, bias: b)
    }
}

/// `nn.BatchNorm2d` in eval mode: running statistics, affine weight and bias.
public final class BatchNorm2d: Layer {
    /// `weight` (gamma), the per-channel scale; 1 until loaded.
    public let weight: Parameter
    /// `bias` (beta), the per-channel shift; 0 until loaded.
    public let bias: Parameter
    /// `running_mean`, the per-channel mean used in eval mode.
    public let runningMean: Parameter
    /// `running_var`, the per-channel variance used in eval mode.
    public let runningVar: Parameter
    /// `num_batches_tracked`, a training counter: loaded when present, never used.
    public let numBatchesTracked = Parameter([], kind: .counter)
    /// Added to the variance before its square root (`eps`, 1e-5 by default, as in PyTorch).
    public let eps: Double

    /// `nn.BatchNorm2d(channels, eps)`: the identity (scale 1, shift 0, mean 0, variance 1) until loaded.
    ///
    /// - Parameters:
    ///   - channels: Channels of the input and output.
    ///   - eps: Added to the variance for numerical stability.
    public init(_ channels: Int, eps: Double = 1e-5) {
        weight = Parameter([channels], fill: 1)
        bias = Parameter([channels])
        runningMean = Parameter([channels], kind: .buffer)
        runningVar = Parameter([channels], kind: .buffer, fill: 1)
        self.eps = eps
    }

    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {
        try body(path("weight"), weight)
        try body(path("bias"), bias)
        try body(path("running_mean"), runningMean)
        try body(path("running_var"), runningVar)
        try body(path("num_batches_tracked"), numBatchesTracked)
    }

    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        guard input.count == 4, input[1] == weight.count else {
            throw ModelError.badInput("BatchNorm2d(\(weight.count)) got shape \(input)")
        }
        rows.append(row(input, weight, bias))
        return input
    }

    /// `(x - running_mean) / sqrt(running_var + eps) * weight + bias`, per channel of `x` (`[N, C, H, W]`).
    public func forward(_ x: Tensor) -> Tensor {
        var y = x
        let channels = weight.count, plane = x.shape[2] * x.shape[3]
        for n in 0 ..< x.shape[0] {
            for c in 0 ..< channels {
                let scale = weight.values[c] / (runningVar.values[c] + Float(eps)).squareRoot()
                let shift = bias.values[c] - runningMean.values[c] * scale
                let base = (n * channels + c) * plane
                for i in base ..< base + plane { y.data[i] = y.data[i] * scale + shift }
            }
        }
        return y
    }
}

/// `nn.Linear`: y = x W^T + b on `[N, in]`.
public final class Linear: Layer {
    /// `weight`, shaped `[out, in]`.
    public let weight: Parameter
    /// `bias`, shaped `[out]`; nil for a layer made with `bias: false`.
    public let bias: Parameter?

    /// `nn.Linear(in_features, out_features, bias)`, weights zero until loaded.
    ///
    /// - Parameters:
    ///   - inFeatures: Features of each input row.
    ///   - outFeatures: Features of each output row.
    ///   - bias: Whether the layer has a `bias` parameter.
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        weight = Parameter([outFeatures, inFeatures])
        self.bias = bias ? Parameter([outFeatures]) : nil
    }

    /// Features of each input row (`in_features`).
    public var inFeatures: Int { weight.shape[1] }
    /// Features of each output row (`out_features`).
    public var outFeatures: Int { weight.shape[0] }

    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {
        try body(path("weight"), weight)
        if let bias { try body(path("bias"), bias) }
    }

    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        guard input.count == 2, input[1] == inFeatures else {
            throw ModelError.badInput("Linear(\(inFeatures), \(outFeatures)) got shape \(input); it needs [N, \(inFeatures)]")
        }
        let output = [input[0], outFeatures]
        var r = row(output, weight, bias)
        r.multiplyAdds = input[0] * weight.count
        rows.append(r)
        return output
    }

    /// `x W^T + b` for `x` shaped `[N, in]`.
    public func forward(_ x: Tensor) -> Tensor { forward(x, relu: false) }

    /// The layer with an optional ReLU after it (a compiled plan's Linear + ReLU step).
    public func forward(_ x: Tensor, relu: Bool) -> Tensor {
        let path = Kernels.path
        var y = path != .blas && x.shape[0] <= 16
            ? Kernels.linear(x, weight: weight.values, bias: bias?.values, outFeatures: outFeatures, path: path)
            : BLAS.linear(x, weight: weight.values, bias: bias?.values, outFeatures: outFeatures)
        if relu { Kernels.relu(&y.data) }
        return y
    }
}

/// `nn.ReLU`.
public final class ReLU: Layer {
    /// `nn.ReLU()`; it has no parameters.
    public init() {}
    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {}
    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        rows.append(row(input))
        return input
    }
    /// `max(x, 0)`, element by element.
    public func forward(_ x: Tensor) -> Tensor {
        var y = x
        Kernels.relu(&y.data)
        return y
    }
}

/// `nn.Dropout`: the identity in eval mode.
public final class Dropout: Layer {
    /// `nn.Dropout()`; in eval mode it does nothing, so it keeps no probability.
    public init() {}
    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {}
    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        rows.append(row(input))
        return input
    }
    /// `x` unchanged (eval mode).
    public func forward(_ x: Tensor) -> Tensor { x }
}

/// `nn.MaxPool2d` (floor mode, padding with -inf).
public final class MaxPool2d: Layer {
    /// Window side, step between windows and padding on each side, in pixels (`kernel_size`, `stride`, `padding`).
    public let kernelSize: Int, stride: Int, padding: Int
    /// False for `F.max_pool2d` calls, which torchsummary does not see.
    let listed: Bool

    /// `nn.MaxPool2d(kernel_size, stride, padding)`.
    ///
    /// - Parameters:
    ///   - kernelSize: Side of the square window, in pixels.
    ///   - stride: Step between windows; nil takes `kernelSize`, as PyTorch does.
    ///   - padding: Padding on each side (with -inf), in pixels.
    ///   - listed: False for a functional `F.max_pool2d`, which a torchsummary table does not list.
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, listed: Bool = true) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.listed = listed
    }

    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {}

    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        guard input.count == 4 else { throw ModelError.badInput("MaxPool2d got shape \(input)") }
        let h = (input[2] + 2 * padding - kernelSize) / stride + 1
        let w = (input[3] + 2 * padding - kernelSize) / stride + 1
        guard input[2] + 2 * padding >= kernelSize, input[3] + 2 * padding >= kernelSize else {
            throw ModelError.badInput("a \(input[2])x\(input[3]) feature map is too small for a \(kernelSize)x\(kernelSize) max pool; use a larger input")
        }
        let output = [input[0], input[1], h, w]
        if listed { rows.append(row(output)) }
        return output
    }

    /// The maximum over each window of `x` (`[N, C, H, W]`).
    public func forward(_ x: Tensor) -> Tensor { Kernels.maxPool(x, kernel: kernelSize, stride: stride, padding: padding) }
}

/// `nn.AdaptiveAvgPool2d`, with PyTorch's bins: start = floor(i * in / out), end = ceil((i + 1) * in / out).
public final class AdaptiveAvgPool2d: Layer {
    /// The output size in pixels, whatever the input size (7x7 in VGG, 1x1 in ResNet).
    public let outputHeight: Int, outputWidth: Int

    /// `nn.AdaptiveAvgPool2d((height, width))`.
    ///
    /// - Parameters:
    ///   - height: Output height in pixels.
    ///   - width: Output width in pixels.
    public init(_ height: Int, _ width: Int) {
        outputHeight = height
        outputWidth = width
    }

    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {}

    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        guard input.count == 4, input[2] > 0, input[3] > 0 else { throw ModelError.badInput("AdaptiveAvgPool2d got shape \(input)") }
        let output = [input[0], input[1], outputHeight, outputWidth]
        rows.append(row(output))
        return output
    }

    /// The mean over each of PyTorch's bins of `x` (`[N, C, H, W]`).
    public func forward(_ x: Tensor) -> Tensor { Kernels.adaptiveAvgPool(x, outputHeight, outputWidth) }
}

/// `torch.flatten(x, 1)` / `x.view(N, -1)`: not a module, so it adds no summary row.
enum Flatten {
    static func shape(_ input: [Int]) -> [Int] { [input[0], input.dropFirst().reduce(1, *)] }
    static func forward(_ x: Tensor) -> Tensor { Tensor(shape: shape(x.shape), data: x.data) }
}

/// `nn.Sequential`: children named by index, as in `features.3.weight`.
public final class Sequential: Layer {
    /// The children, in order; child `i`'s keys start with `i.`.
    public let layers: [Layer]

    /// `nn.Sequential(*layers)`.
    public init(_ layers: [Layer]) { self.layers = layers }

    public func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows {
        for (i, layer) in layers.enumerated() { try layer.visit(path.child(i), body) }
    }

    public func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int] {
        try layers.reduce(input) { try $1.trace($0, &rows) }
    }

    /// Runs each child on the output of the one before.
    public func forward(_ x: Tensor) -> Tensor {
        layers.reduce(x) { $1.forward($0) }
    }
}

extension Sequential: Compilable {
    func compile(_ plan: inout Plan.Builder) { plan.append(layers) }
}
