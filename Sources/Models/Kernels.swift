import Foundation

/// The shape arithmetic of a 2-D convolution, as `nn.Conv2d` defines it.
public struct ConvGeometry: Sendable, Equatable {
    public var inChannels: Int, outChannels: Int
    public var kernel: Int, stride: Int, padding: Int, dilation: Int, groups: Int

    public func outputSize(_ size: Int) -> Int {
        (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
    }

    func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.count == 4 else { throw ModelError.badInput("Conv2d expects [N, C, H, W], got \(input)") }
        guard input[1] == inChannels else {
            throw ModelError.badInput("Conv2d(\(inChannels), \(outChannels)) got \(input[1]) channels (shape \(input))")
        }
        let reach = dilation * (kernel - 1) + 1
        guard input[2] + 2 * padding >= reach, input[3] + 2 * padding >= reach else {
            throw ModelError.badInput("a \(input[2])x\(input[3]) feature map is too small for a \(kernel)x\(kernel) convolution; use a larger input")
        }
        return [input[0], outChannels, outputSize(input[2]), outputSize(input[3])]
    }
}

/// A convolution ready to run: weights with any BatchNorm folded in, bias, and an epilogue that
/// adds the bias, an optional residual and an optional ReLU in one pass over the output.
public struct FusedConv: Sendable {
    public let geometry: ConvGeometry
    /// `[out, in/groups, k, k]`, row-major: the GEMM's A matrix per group.
    let weight: [Float]
    let bias: [Float]

    /// - Parameters:
    ///   - residual: added before the ReLU (a ResNet block's identity path); same shape as the output.
    public func run(_ x: Tensor, relu: Bool = false, residual: Tensor? = nil) -> Tensor {
        let g = geometry
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = (g.outputSize(h), g.outputSize(w))
        let cinG = g.inChannels / g.groups, coutG = g.outChannels / g.groups
        let k = cinG * g.kernel * g.kernel, plane = oh * ow
        var y = Tensor(zeros: [n, g.outChannels, oh, ow])
        // A 1x1, stride-1, unpadded convolution reads its input as the B matrix directly.
        let direct = g.kernel == 1 && g.stride == 1 && g.padding == 0
        var columns = [Float](repeating: 0, count: direct ? 0 : k * plane)
        x.data.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    columns.withUnsafeMutableBufferPointer { cp in
                        for image in 0 ..< n {
                            for group in 0 ..< g.groups {
                                let input = xp.baseAddress! + (image * g.inChannels + group * cinG) * h * w
                                let b: UnsafePointer<Float>
                                if direct {
                                    b = input
                                } else {
                                    Kernels.im2col(input, channels: cinG, height: h, width: w, geometry: g,
                                                   outHeight: oh, outWidth: ow, into: cp.baseAddress!)
                                    b = UnsafePointer(cp.baseAddress!)
                                }
                                BLAS.gemm(m: coutG, n: plane, k: k, a: wp.baseAddress! + group * coutG * k, b: b,
                                          c: yp.baseAddress! + (image * g.outChannels + group * coutG) * plane)
                            }
                        }
                    }
                }
            }
        }
        Kernels.epilogue(&y, bias: bias, residual: residual, relu: relu)
        return y
    }
}

/// Loops over tensors that are not matrix products.
enum Kernels {
    /// Unfolds `channels` input planes into `[channels * k * k, outHeight * outWidth]` columns.
    static func im2col(_ input: UnsafePointer<Float>, channels: Int, height: Int, width: Int, geometry g: ConvGeometry,
                       outHeight: Int, outWidth: Int, into columns: UnsafeMutablePointer<Float>) {
        var row = columns
        for c in 0 ..< channels {
            let plane = input + c * height * width
            for ki in 0 ..< g.kernel {
                for kj in 0 ..< g.kernel {
                    for oy in 0 ..< outHeight {
                        let iy = oy * g.stride - g.padding + ki * g.dilation
                        let out = row + oy * outWidth
                        guard iy >= 0 && iy < height else {
                            out.update(repeating: 0, count: outWidth)
                            continue
                        }
                        let line = plane + iy * width
                        for ox in 0 ..< outWidth {
                            let ix = ox * g.stride - g.padding + kj * g.dilation
                            out[ox] = ix >= 0 && ix < width ? line[ix] : 0
                        }
                    }
                    row += outHeight * outWidth
                }
            }
        }
    }

    /// y = relu(y + bias[c] + residual), per channel plane.
    static func epilogue(_ y: inout Tensor, bias: [Float], residual: Tensor?, relu: Bool) {
        let channels = y.shape[1], plane = y.shape[2] * y.shape[3]
        y.data.withUnsafeMutableBufferPointer { yp in
            for i in 0 ..< y.shape[0] * channels {
                let b = bias[i % channels]
                let base = i * plane
                if let residual {
                    residual.data.withUnsafeBufferPointer { rp in
                        for j in base ..< base + plane { yp[j] += b + rp[j] }
                    }
                } else {
                    for j in base ..< base + plane { yp[j] += b }
                }
                if relu { for j in base ..< base + plane where yp[j] < 0 { yp[j] = 0 } }
            }
        }
    }

    static func relu(_ values: inout [Float]) {
        values.withUnsafeMutableBufferPointer { p in
            for i in p.indices where p[i] < 0 { p[i] = 0 }
        }
    }

    static func maxPool(_ x: Tensor, kernel: Int, stride: Int, padding: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1
        var y = Tensor(zeros: [n, c, oh, ow])
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                for p in 0 ..< n * c {
                    let plane = xp.baseAddress! + p * h * w
                    for oy in 0 ..< oh {
                        let y0 = max(oy * stride - padding, 0), y1 = min(oy * stride - padding + kernel, h)
                        for ox in 0 ..< ow {
                            let x0 = max(ox * stride - padding, 0), x1 = min(ox * stride - padding + kernel, w)
                            var best = -Float.infinity
                            for iy in y0 ..< y1 {
                                for ix in x0 ..< x1 {
                                    let v = plane[iy * w + ix]
                                    if v > best || v.isNaN { best = v }
                                }
                            }
                            yp[(p * oh + oy) * ow + ox] = best
                        }
                    }
                }
            }
        }
        return y
    }

    static func adaptiveAvgPool(_ x: Tensor, _ oh: Int, _ ow: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var y = Tensor(zeros: [n, c, oh, ow])
        for p in 0 ..< n * c {
            for oy in 0 ..< oh {
                let y0 = oy * h / oh, y1 = ((oy + 1) * h + oh - 1) / oh
                for ox in 0 ..< ow {
                    let x0 = ox * w / ow, x1 = ((ox + 1) * w + ow - 1) / ow
                    var sum: Float = 0
                    for iy in y0 ..< y1 {
                        for ix in x0 ..< x1 { sum += x.data[(p * h + iy) * w + ix] }
                    }
                    y.data[(p * oh + oy) * ow + ox] = sum / Float((y1 - y0) * (x1 - x0))
                }
            }
        }
        return y
    }

    /// Softmax over the last dimension of `[N, C]`, stabilised by the row maximum.
    static func softmax(_ x: Tensor) -> Tensor {
        var y = x
        let c = x.shape[1]
        for row in 0 ..< x.shape[0] {
            let slice = row * c ..< (row + 1) * c
            let top = y.data[slice].max() ?? 0
            var sum: Float = 0
            for i in slice {
                y.data[i] = exp(y.data[i] - top)
                sum += y.data[i]
            }
            for i in slice { y.data[i] /= sum }
        }
        return y
    }
}

