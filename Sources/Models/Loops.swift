import Foundation

// The loops that run in Swift on every machine: im2col for the OpenBLAS convolution, the
// epilogue that follows it, ReLU, the residual sum, adaptive average pooling and softmax.
// Tensors are NCHW float32, row-major.

extension Kernels {
    /// Unfolds `channels` input planes, starting at `start` in `input`, into
    /// `[channels * k * k, outHeight * outWidth]` columns. Reads only pixels inside the planes
    /// (iy, ix are checked against the image) and writes exactly the columns' count.
    static func im2col(_ input: UnsafeBufferPointer<Float>, from start: Int, channels: Int, height: Int, width: Int,
                       geometry g: ConvGeometry, outHeight: Int, outWidth: Int,
                       into columns: UnsafeMutableBufferPointer<Float>) {
        var row = 0
        for c in 0 ..< channels {
            let plane = start + c * height * width
            for ki in 0 ..< g.kernel {
                for kj in 0 ..< g.kernel {
                    for oy in 0 ..< outHeight {
                        let iy = oy * g.stride - g.padding + ki * g.dilation
                        let out = row + oy * outWidth
                        guard iy >= 0 && iy < height else {
                            for ox in 0 ..< outWidth { columns[out + ox] = 0 }
                            continue
                        }
                        let line = plane + iy * width
                        for ox in 0 ..< outWidth {
                            let ix = ox * g.stride - g.padding + kj * g.dilation
                            columns[out + ox] = ix >= 0 && ix < width ? input[line + ix] : 0
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

    /// y += x, elementwise (a residual block's `out += identity`).
    static func add(_ y: inout Tensor, _ x: Tensor) {
        precondition(y.shape == x.shape, "adding \(x.shape) to \(y.shape)")
        y.data.withUnsafeMutableBufferPointer { yp in
            x.data.withUnsafeBufferPointer { xp in
                for i in yp.indices { yp[i] += xp[i] }
            }
        }
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
}
