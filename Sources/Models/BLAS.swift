import COpenBLAS
import Foundation

// The one file that calls BLAS.
//
// Layout conventions: tensors are NCHW float32, row-major. A convolution weight stays in
// PyTorch's [out, in/groups, kH, kW] order, which read row-major is already the GEMM's A matrix
// of shape [out/groups, in/groups * kH * kW]; im2col produces B as [in/groups * kH * kW, oH * oW],
// and C = A * B is the [out/groups, oH * oW] slice of the output image. A Linear weight is
// [out, in], so y = x * W^T.

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

    /// The threads a forward pass uses (`Model.threads`). With the CKernels paths zoo splits
    /// the work itself and OpenBLAS runs single-threaded: its idle workers would otherwise spin
    /// (sched_yield) beside zoo's own threads after every call. Without them OpenBLAS gets them all.
    static var threads: Int {
        get { configured.withLock { $0 } ?? Int(openblas_get_num_threads()) }
        set {
            configured.withLock { $0 = max(1, newValue) }
            openblas_set_num_threads(Kernels.avx512 ? 1 : Int32(max(1, newValue)))
        }
    }

    /// The count set through `threads`; nil until then (OpenBLAS's default, all cores).
    private static let configured = Locked<Int?>(nil)

    /// Called once before the first CKernels call: from then on OpenBLAS is single-threaded.
    static let singleThreaded: Void = {
        let current = Int(openblas_get_num_threads())
        configured.withLock { if $0 == nil { $0 = current } }
        openblas_set_num_threads(1)
    }()
}

/// A value behind a lock, for the few process-wide settings.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
