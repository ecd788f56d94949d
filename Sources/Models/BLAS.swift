import COpenBLAS

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

    /// The number of threads OpenBLAS uses.
    static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }
}
