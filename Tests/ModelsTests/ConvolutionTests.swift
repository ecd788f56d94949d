import Testing
@testable import Models

/// Every convolution kernel against a plain loop, on every path this CPU runs, over the shapes
/// whose edges differ: output planes of 1 to 50 columns (every remainder of a 16-, 8- or
/// 4-lane vector, read by the register tile or by the narrow column kernel), planes large
/// enough for a layer to be cut between threads by rows or by columns, and Winograd blocks with
/// a partial last vector of tiles.
struct ConvolutionTests {
    struct Shape: CustomStringConvertible {
        var cin: Int, cout: Int, kernel: Int, stride: Int, padding: Int, height: Int, width: Int, batch: Int
        var description: String { "\(cin)->\(cout) \(kernel)x\(kernel) s\(stride) p\(padding) on \(batch)x\(height)x\(width)" }
    }

    static let shapes: [Shape] =
        // 1x1: B read in place, a plane of 1 to 50 columns (one row of the map), 23 input
        // channels (K steps past every unroll of the column kernel).
        (1 ... 50).map { Shape(cin: 23, cout: 20, kernel: 1, stride: 1, padding: 0, height: 1, width: $0, batch: 1) }
        + [
            // Large enough to be cut between two threads: by rows (few columns beside many rows),
            // and by columns (56x56: many columns beside few rows; on the packing paths, all but 7x7).
            Shape(cin: 1024, cout: 256, kernel: 1, stride: 1, padding: 0, height: 7, width: 7, batch: 1),
            Shape(cin: 256, cout: 96, kernel: 1, stride: 1, padding: 0, height: 14, width: 14, batch: 1),
            Shape(cin: 64, cout: 64, kernel: 1, stride: 1, padding: 0, height: 56, width: 56, batch: 1),
            Shape(cin: 64, cout: 30, kernel: 1, stride: 1, padding: 0, height: 13, width: 11, batch: 3),
            // B packed from the image: strided (a kernel row of B at a time; K blocks of 256 that
            // cut 3x3 kernel rows), padded, a 7x7 output of 49 columns, a 1x1 downsample of odd sides.
            Shape(cin: 16, cout: 20, kernel: 3, stride: 2, padding: 1, height: 13, width: 13, batch: 2),
            Shape(cin: 24, cout: 20, kernel: 1, stride: 2, padding: 0, height: 13, width: 15, batch: 2),
            Shape(cin: 256, cout: 64, kernel: 3, stride: 2, padding: 1, height: 14, width: 14, batch: 1),
            Shape(cin: 3, cout: 10, kernel: 7, stride: 2, padding: 3, height: 21, width: 19, batch: 1),
            // Winograd F(2x2, 3x3): a 7x7 map's 16 tiles and a 9x9 map's 25 (a vector and 9 past
            // it on AVX-512, 1 past three on AVX2 and NEON). F(4x4, 3x3): 9 tiles a 9x9 image
            // (18 and 27 for 2 and 3 images), 13x13's 16 x 2.
            Shape(cin: 32, cout: 20, kernel: 3, stride: 1, padding: 1, height: 7, width: 7, batch: 1),
            Shape(cin: 32, cout: 20, kernel: 3, stride: 1, padding: 1, height: 9, width: 9, batch: 1),
            Shape(cin: 32, cout: 20, kernel: 3, stride: 1, padding: 1, height: 9, width: 9, batch: 3),
            Shape(cin: 32, cout: 20, kernel: 3, stride: 1, padding: 1, height: 9, width: 9, batch: 2),
            Shape(cin: 32, cout: 20, kernel: 3, stride: 1, padding: 1, height: 13, width: 13, batch: 2),
            Shape(cin: 16, cout: 12, kernel: 3, stride: 1, padding: 1, height: 30, width: 26, batch: 1),
            // One block of 16 tiles cut by output channels between two threads (on AVX2 and NEON
            // in two phases: input channels [c0, c1) each, then output channels), F(4x4) and F(2x2).
            Shape(cin: 33, cout: 70, kernel: 3, stride: 1, padding: 1, height: 14, width: 14, batch: 1),
            Shape(cin: 40, cout: 64, kernel: 3, stride: 1, padding: 1, height: 7, width: 7, batch: 1),
            // One shared block past ZK_NR on AVX2 and NEON: a 28x28 map's 49 tiles, 32x32's 64
            // (ZK_WIDE); 36x36's 81 in blocks again.
            Shape(cin: 24, cout: 64, kernel: 3, stride: 1, padding: 1, height: 28, width: 28, batch: 1),
            Shape(cin: 24, cout: 64, kernel: 3, stride: 1, padding: 1, height: 32, width: 32, batch: 1),
            Shape(cin: 24, cout: 64, kernel: 3, stride: 1, padding: 1, height: 36, width: 36, batch: 1),
            // Rows of 14 tiles: runs of consecutive whole tiles, read and written with vector shuffles.
            Shape(cin: 8, cout: 8, kernel: 3, stride: 1, padding: 1, height: 56, width: 56, batch: 1),
        ]

    /// A GEMM that reads B in place is cut where each thread reads less: by rows when the weights
    /// are not small beside the image, by columns when they are (ResNet-50's 256 -> 64 on 56x56).
    /// (Two threads whatever this machine has, so the rule is checked on a one-core runner too.)
    @Test func inPlaceProductsAreCutByTheirLargerOperand() {
        func byColumns(m: Int, n: Int, k: Int) -> Bool {
            let cut = Kernels.split(pairs: 1, m: m, n: n, k: k, mr: 8, packsB: false, threads: 2)
            #expect(cut.parts == 2)
            return cut.byColumns
        }
        #expect(!byColumns(m: 256, n: 196, k: 1024))
        #expect(!byColumns(m: 512, n: 784, k: 128))
        #expect(byColumns(m: 64, n: 3136, k: 256))
        #expect(byColumns(m: 128, n: 784, k: 512))
    }

    @Test(arguments: KernelPath.available)
    func matchesPlainLoops(_ path: KernelPath) throws {
        var seed: UInt64 = 20261204
        func random(_ count: Int) -> [Float] {
            (0 ..< count).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int(seed >> 40) % 2001 - 1000) / 1000
            }
        }
        for (index, s) in Self.shapes.enumerated() {
            // Every other shape without the epilogue's residual and ReLU (a ReLU hides wrong negatives).
            let epilogue = index % 2 == 0
            let g = ConvGeometry(inChannels: s.cin, outChannels: s.cout, kernel: s.kernel, stride: s.stride,
                                 padding: s.padding, dilation: 1, groups: 1)
            let (oh, ow) = (g.outputSize(s.height), g.outputSize(s.width))
            let weight = random(s.cout * s.cin * s.kernel * s.kernel), bias = random(s.cout)
            let x = Tensor(shape: [s.batch, s.cin, s.height, s.width], data: random(s.batch * s.cin * s.height * s.width))
            let residual = Tensor(shape: [s.batch, s.cout, oh, ow], data: random(s.batch * s.cout * oh * ow))
            let conv = FusedConv(geometry: g, weight: weight, bias: bias, path: path)
            let y = conv.run(x, relu: epilogue, residual: epilogue ? residual : nil)
            #expect(y.shape == residual.shape)

            var worst = 0.0
            for n in 0 ..< s.batch {
                for o in 0 ..< s.cout {
                    for oy in 0 ..< oh {
                        for ox in 0 ..< ow {
                            var sum = Double(bias[o])
                            for i in 0 ..< s.cin {
                                for ky in 0 ..< s.kernel {
                                    let iy = oy * s.stride - s.padding + ky
                                    guard iy >= 0, iy < s.height else { continue }
                                    for kx in 0 ..< s.kernel {
                                        let ix = ox * s.stride - s.padding + kx
                                        guard ix >= 0, ix < s.width else { continue }
                                        sum += Double(weight[((o * s.cin + i) * s.kernel + ky) * s.kernel + kx])
                                            * Double(x.data[((n * s.cin + i) * s.height + iy) * s.width + ix])
                                    }
                                }
                            }
                            let at = ((n * s.cout + o) * oh + oy) * ow + ox
                            let want = epilogue ? max(0, sum + Double(residual.data[at])) : sum
                            worst = max(worst, abs(Double(y.data[at]) - want) / (1 + abs(want)))
                        }
                    }
                }
            }
            #expect(worst < 1e-4, "\(path) \(s): worst relative error \(worst)")
        }
    }
}
