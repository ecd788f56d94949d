#if canImport(Accelerate)
import Accelerate  // Apple platforms: Accelerate's BLAS (written for, not built or tested in CI)
typealias blasint = Int32
#else
import COpenBLAS
#endif
import Foundation

// The one file that calls BLAS: OpenBLAS on Linux, Accelerate on Apple platforms.
//
// Layout conventions: tensors are NCHW float32, row-major. A convolution weight stays in
// PyTorch's [out, in/groups, kH, kW] order, which read row-major is already the GEMM's A matrix
// of shape [out/groups, in/groups * kH * kW]; im2col produces B as [in/groups * kH * kW, oH * oW],
// and C = A * B is the [out/groups, oH * oW] slice of the output image. A Linear weight is
// [out, in], so y = x * W^T.
//
// The matrices' addresses are offsets into arrays held by `withUnsafe...BufferPointer` for the
// whole call; each offset below says why it stays inside its array.

enum BLAS {
    /// C[m, n] = A[m, k] * B[k, n] (+ C when `accumulate`), all row-major with leading dimensions
    /// equal to their widths unless given.
    static func gemm(m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int? = nil,
                     b: UnsafePointer<Float>, ldb: Int? = nil, transposeB: Bool = false,
                     c: UnsafeMutablePointer<Float>, ldc: Int? = nil, accumulate: Bool = false) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), 1,
                    a, blasint(lda ?? k),
                    b, blasint(ldb ?? (transposeB ? k : n)),
                    accumulate ? 1 : 0, c, blasint(ldc ?? n))
    }

    /// A convolution as im2col + sgemm per (image, group), then the bias, residual and ReLU in
    /// a separate pass: the path where the CKernels ones do not run.
    static func convolve(_ conv: FusedConv, _ x: Tensor, relu: Bool, residual: Tensor?) -> Tensor {
        let g = conv.geometry
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = (g.outputSize(h), g.outputSize(w))
        let cinG = g.inChannels / g.groups, coutG = g.outChannels / g.groups
        let k = cinG * g.kernel * g.kernel, plane = oh * ow
        var y = Tensor(zeros: [n, g.outChannels, oh, ow])
        // A 1x1, stride-1, unpadded convolution reads its input as the B matrix directly.
        let direct = g.kernel == 1 && g.stride == 1 && g.padding == 0
        var columns = [Float](repeating: 0, count: direct ? 0 : k * plane)
        x.data.withUnsafeBufferPointer { xp in
            conv.weight.withUnsafeBufferPointer { wp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    columns.withUnsafeMutableBufferPointer { cp in
                        for image in 0 ..< n {
                            for group in 0 ..< g.groups {
                                // Safe: the channels of one group of one image of x ([n, in, h, w]), its
                                // [k, plane] columns, the group's [coutG, k] weights and [coutG, plane]
                                // slice of y, all inside their arrays.
                                let start = (image * g.inChannels + group * cinG) * h * w
                                let b: UnsafePointer<Float>
                                if direct {
                                    b = xp.baseAddress! + start
                                } else {
                                    Kernels.im2col(xp, from: start, channels: cinG, height: h, width: w, geometry: g,
                                                   outHeight: oh, outWidth: ow, into: cp)
                                    b = UnsafePointer(cp.baseAddress!)
                                }
                                gemm(m: coutG, n: plane, k: k, a: wp.baseAddress! + group * coutG * k, b: b,
                                     c: yp.baseAddress! + (image * g.outChannels + group * coutG) * plane)
                            }
                        }
                    }
                }
            }
        }
        Kernels.epilogue(&y, bias: conv.bias, residual: residual, relu: relu)
        return y
    }

    /// `nn.Linear` as one sgemm, y = x W^T + b; with the CKernels paths (OpenBLAS single-threaded)
    /// the output features are split across threads.
    static func linear(_ x: Tensor, weight: [Float], bias: [Float]?, outFeatures: Int) -> Tensor {
        let (n, inFeatures) = (x.shape[0], x.shape[1])
        var y = Tensor(zeros: [n, outFeatures])
        if let bias {
            for i in 0 ..< n { y.data.replaceSubrange(i * outFeatures ..< (i + 1) * outFeatures, with: bias) }
        }
        let accumulate = bias != nil
        x.data.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    let parts = Kernels.simd && outFeatures >= 256 ? Kernels.threads : 1
                    let (input, weights, output) = (SendablePointer(xp.baseAddress!), SendablePointer(wp.baseAddress!),
                                                    SendablePointer(yp.baseAddress!))
                    Kernels.parallel(parts) { part in
                        let o0 = outFeatures * part / parts, o1 = outFeatures * (part + 1) / parts
                        guard o1 > o0 else { return }
                        // Safe: weight rows [o0, o1) of [out, in], and columns [o0, o1) of every row
                        // of y [n, out], which no other job writes.
                        gemm(m: n, n: o1 - o0, k: inFeatures, a: input.address, b: weights.address + o0 * inFeatures,
                             ldb: inFeatures, transposeB: true, c: output.address + o0, ldc: outFeatures,
                             accumulate: accumulate)
                    }
                }
            }
        }
        return y
    }

    /// The threads a forward pass uses (`Model.threads`). With the CKernels paths zoo splits
    /// the work itself and OpenBLAS runs single-threaded: its idle workers would otherwise spin
    /// (sched_yield) beside zoo's own threads after every call. Without them OpenBLAS gets them all.
    static var threads: Int {
        get { configured.withLock { $0 } ?? libraryThreads }
        set {
            configured.withLock { $0 = max(1, newValue) }
            setLibraryThreads(Kernels.simd ? 1 : max(1, newValue))
        }
    }

    /// The count set through `threads`; nil until then (OpenBLAS's default, all cores).
    private static let configured = Locked<Int?>(nil)

    /// Called when `KernelPath.current` changes: OpenBLAS single-threaded on a CKernels path, all
    /// `threads` on the `blas` path.
    static func pathChanged(to path: KernelPath) {
        let current = libraryThreads
        let count = configured.withLock { value -> Int in
            if value == nil { value = current }
            return value!
        }
        setLibraryThreads(path != .blas ? 1 : count)
    }

    /// OpenBLAS's own thread count; Accelerate manages its threads itself (the cores).
    private static var libraryThreads: Int {
        #if canImport(Accelerate)
        ProcessInfo.processInfo.activeProcessorCount
        #else
        Int(openblas_get_num_threads())
        #endif
    }

    private static func setLibraryThreads(_ count: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(count))
        #endif
    }
}
