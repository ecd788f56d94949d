// A port of PIL's bilinear resampling with antialiasing (Pillow src/libImaging/Resample.c:
// precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleHorizontal_8bpc / Vertical_8bpc,
// ImagingResampleInner), which is what torchvision's Resize does to a PIL image.
//
// Separable: a horizontal pass into 8-bit rows, then a vertical pass. Each output pixel is a sum
// of 8-bit inputs times 22-bit fixed-point coefficients, started at one half (1 << 21), shifted
// right by 22 and clipped to 0...255: the clip between the passes is PIL's too. Since every
// output pixel depends only on its own coefficients, zoo computes only the pixels a window (the
// center crop) needs, and gets the same values PIL gets for them in the full image.

/// PIL's PRECISION_BITS for 8-bit images: 32 - 8 - 2.
private let precisionBits = 22

/// The contributions to each output pixel along one axis: `count` input pixels from `first`,
/// weighted by `weights[i * taps ..< i * taps + count]`.
struct ResampleCoefficients {
    var taps: Int
    var first: [Int]
    var count: [Int]
    var weights: [Int32]

    /// precompute_coeffs with PIL's bilinear filter (support 1) over the box 0..<inSize,
    /// then normalize_coeffs_8bpc.
    init(inSize: Int, outSize: Int) {
        let scale = Double(Float(inSize)) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale
        taps = Int(support.rounded(.up)) * 2 + 1
        first = [Int](repeating: 0, count: outSize)
        count = [Int](repeating: 0, count: outSize)
        weights = [Int32](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)                   // C's (int): toward zero
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var ww = 0.0
            for x in 0..<max(xmax, 0) {
                var t = (Double(x + xmin) - center + 0.5) * ss
                if t < 0 { t = -t }
                let w = t < 1.0 ? 1.0 - t : 0.0                              // bilinear_filter
                k[x] = w
                ww += w
            }
            for x in 0..<max(xmax, 0) {
                let w = ww != 0.0 ? k[x] / ww : k[x]
                let fixed = w * Double(1 << precisionBits)
                weights[xx * taps + x] = Int32(w < 0 ? -0.5 + fixed : 0.5 + fixed)
            }
            first[xx] = xmin
            count[xx] = max(xmax, 0)
        }
    }
}

@inline(__always) private func clip8(_ v: Int32) -> UInt8 {
    let s = v >> Int32(precisionBits)
    return s < 0 ? 0 : s > 255 ? 255 : UInt8(truncatingIfNeeded: s)
}

extension RGBImage {
    /// This image resized to `width` x `height` with PIL's BILINEAR filter (antialiased), as
    /// `Image.resize((width, height), Image.BILINEAR)` makes it.
    public func resized(width outWidth: Int, height outHeight: Int) -> RGBImage {
        resizedWindow(width: outWidth, height: outHeight, x: 0..<outWidth, y: 0..<outHeight)
    }

    /// The pixels `x` x `y` of `resized(width:height:)`, computed without the rest. Pixels of
    /// the window outside the resized image are 0 (torchvision pads a too-small image with 0).
    func resizedWindow(width outWidth: Int, height outHeight: Int, x window: Range<Int>, y rows: Range<Int>) -> RGBImage {
        let cols = window.clamped(to: 0..<outWidth), lines = rows.clamped(to: 0..<outHeight)
        var out = [UInt8](repeating: 0, count: window.count * rows.count * 3)
        guard !cols.isEmpty, !lines.isEmpty else { return RGBImage(unchecked: window.count, rows.count, out) }

        // Horizontal pass (when the width changes) over just the input rows the wanted output
        // rows read, into `temp`: `tempRows` rows of `cols.count` pixels, starting at input row `row0`.
        let needHorizontal = outWidth != width, needVertical = outHeight != height
        let vertical = needVertical ? ResampleCoefficients(inSize: height, outSize: outHeight) : nil
        let row0 = vertical.map { $0.first[lines.lowerBound] } ?? lines.lowerBound
        let rowEnd = vertical.map { v in lines.map { v.first[$0] + v.count[$0] }.max()! } ?? lines.upperBound
        let tempWidth = needHorizontal ? cols.count : width
        var temp: [UInt8]
        if needHorizontal {
            let h = ResampleCoefficients(inSize: width, outSize: outWidth)
            temp = [UInt8](repeating: 0, count: (rowEnd - row0) * tempWidth * 3)
            pixels.withUnsafeBufferPointer { src in
                h.weights.withUnsafeBufferPointer { kk in
                    temp.withUnsafeMutableBufferPointer { dst in
                        for y in row0..<rowEnd {
                            let line = src.baseAddress! + y * width * 3
                            let outLine = dst.baseAddress! + (y - row0) * tempWidth * 3
                            for (i, xx) in cols.enumerated() {
                                let xmin = h.first[xx], n = h.count[xx]
                                let k = kk.baseAddress! + xx * h.taps
                                var s0: Int32 = 1 << Int32(precisionBits - 1), s1 = s0, s2 = s0
                                var p = line + xmin * 3
                                for x in 0..<n {
                                    let w = k[x]
                                    s0 &+= Int32(p[0]) &* w
                                    s1 &+= Int32(p[1]) &* w
                                    s2 &+= Int32(p[2]) &* w
                                    p += 3
                                }
                                outLine[3 * i] = clip8(s0); outLine[3 * i + 1] = clip8(s1); outLine[3 * i + 2] = clip8(s2)
                            }
                        }
                    }
                }
            }
        } else {
            temp = Array(pixels[(row0 * width * 3)..<(rowEnd * width * 3)])
        }
        // Column `c` of `temp` is output column `cols.lowerBound + c` (resized) or input column
        // `c` (not resized horizontally).
        let tempColumn0 = needHorizontal ? cols.lowerBound : 0
        let outWidthPixels = window.count
        temp.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for yy in lines {
                    let outLine = dst.baseAddress! + (yy - rows.lowerBound) * outWidthPixels * 3
                    if let v = vertical {
                        let ymin = v.first[yy] - row0, n = v.count[yy]
                        v.weights.withUnsafeBufferPointer { kk in
                            let k = kk.baseAddress! + yy * v.taps
                            for xx in cols {
                                let c = (xx - tempColumn0) * 3
                                var s0: Int32 = 1 << Int32(precisionBits - 1), s1 = s0, s2 = s0
                                var p = src.baseAddress! + ymin * tempWidth * 3 + c
                                for y in 0..<n {
                                    let w = k[y]
                                    s0 &+= Int32(p[0]) &* w
                                    s1 &+= Int32(p[1]) &* w
                                    s2 &+= Int32(p[2]) &* w
                                    p += tempWidth * 3
                                }
                                let o = (xx - window.lowerBound) * 3
                                outLine[o] = clip8(s0); outLine[o + 1] = clip8(s1); outLine[o + 2] = clip8(s2)
                            }
                        }
                    } else {
                        let line = src.baseAddress! + (yy - row0) * tempWidth * 3
                        for xx in cols {
                            let c = (xx - tempColumn0) * 3, o = (xx - window.lowerBound) * 3
                            outLine[o] = line[c]; outLine[o + 1] = line[c + 1]; outLine[o + 2] = line[c + 2]
                        }
                    }
                }
            }
        }
        return RGBImage(unchecked: window.count, rows.count, out)
    }
}
