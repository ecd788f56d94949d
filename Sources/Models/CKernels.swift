import CKernels
import Foundation

// The one file that calls CKernels (`zk_*`, Sources/CKernels/include/ckernels.h): the AVX-512,
// AVX2 and NEON convolution GEMM and Winograd paths, small-batch Linear, max pooling, and the thread pool
// that runs them. Layouts as stated at the top of BLAS.swift.
//
// Pointers reach the pool's threads one by one in `SendablePointer`s. Every job of a
// `parallel` call writes a range of the output that no other job writes, and every pointer
// comes from a `withUnsafe...BufferPointer` that encloses the whole call, so the memory stays
// alive and no two threads write the same float.

/// A pointer lent to the jobs of one `Kernels.parallel` call.
/// Safe to send: the buffer outlives the call, and the jobs write disjoint ranges of it.
struct SendablePointer<Pointer>: @unchecked Sendable {
    let address: Pointer
    init(_ address: Pointer) { self.address = address }
}

/// Which kernels run the convolutions, Linear layers and max pooling: the AVX-512, AVX2 + FMA or
/// NEON kernels of CKernels, or OpenBLAS (im2col + sgemm) where none of them runs.
public enum KernelPath: String, Sendable, CaseIterable {
    /// CKernels' AVX-512 or AVX2 + FMA (x86-64) or NEON (arm64) kernels, or OpenBLAS with im2col.
    case avx512, avx2, neon, blas

    /// The path that layers made in this task use instead of `current` (the fidelity tests run
    /// every path side by side with other tests, which must not see `current` change under them).
    @TaskLocal package static var forTask: KernelPath?

    /// The paths this CPU runs, fastest first (`blas` always last).
    public static var available: [KernelPath] { [.avx512, .avx2, .neon, .blas].filter { zk_supports($0.code) != 0 } }

    /// The path models loaded from now on use: `ZOO_KERNELS=avx512|avx2|neon|blas` if this CPU runs
    /// it, otherwise the first of `available`. A model keeps the path it was loaded with.
    public static var current: KernelPath {
        get {
            _ = applied
            return selected.withLock { $0 }
        }
        set {
            _ = applied
            guard available.contains(newValue) else { return }
            selected.withLock { $0 = newValue }
            BLAS.pathChanged(to: newValue)
        }
    }

    /// OpenBLAS's threads set for the first path, once.
    private static let applied: Void = BLAS.pathChanged(to: selected.withLock { $0 })

    private static let selected = Locked<KernelPath>({
        let best = available[0]
        guard let name = ProcessInfo.processInfo.environment["ZOO_KERNELS"], !name.isEmpty else { return best }
        guard let forced = KernelPath(rawValue: name), available.contains(forced) else {
            FileHandle.standardError.write("zoo: ZOO_KERNELS=\(name) does not run on this CPU; using \(best.rawValue)\n".data(using: .utf8)!)
            return best
        }
        return forced
    }())

    /// CKernels' number for the path.
    var code: Int32 {
        switch self {
        case .avx512: Int32(ZK_AVX512)
        case .avx2: Int32(ZK_AVX2)
        case .neon: Int32(ZK_NEON)
        case .blas: Int32(ZK_BLAS)
        }
    }
}

/// The arithmetic below the layers. This file holds the CKernels paths and the thread pool they
/// share; Loops.swift the portable loops, BufferPool.swift the output buffers.
enum Kernels {
    /// The path of layers made now (`KernelPath.current`, or this task's `KernelPath.forTask`).
    static var path: KernelPath { KernelPath.forTask ?? KernelPath.current }

    /// Whether a CKernels path (not OpenBLAS) runs layers made now.
    static var simd: Bool { path != .blas }

    /// Rows per packed panel of A on `path`.
    static func mr(_ path: KernelPath) -> Int { Int(zk_mr(path.code)) }

    /// Worker threads for the CKernels paths: the BLAS thread count (`Model.threads`).
    static var threads: Int { max(1, BLAS.threads) }

    static let useGCD = ProcessInfo.processInfo.environment["ZOO_POOL"] == "gcd"

    /// Runs `count` jobs, inline when one job or one thread suffices or when called from a job;
    /// otherwise on `threads` threads of CKernels' pool (`zk_parallel`), or on GCD's threads where
    /// `ZOO_POOL=gcd`. With `mayWait` false, when another caller's round holds the pool the jobs
    /// run inline instead of waiting for it (`zk_parallel_nowait`): weight layouts are made that
    /// way, under a lock that a batch slice's job may be waiting for.
    static func parallel(_ count: Int, mayWait: Bool = true, _ body: @Sendable (Int) -> Void) {
        if count <= 1 || threads <= 1 {
            for i in 0 ..< count { body(i) }
        } else if useGCD {
            DispatchQueue.concurrentPerform(iterations: count) { body($0) }
        } else {
            withoutActuallyEscaping(body) { body in
                var job = Job(body: body)
                // Safe: zk_parallel returns only when every job has run, so `job` outlives its use.
                withUnsafeMutablePointer(to: &job) { context in
                    let run: zk_job_fn = { context, index in
                        context!.assumingMemoryBound(to: Job.self).pointee.body(Int(index))
                    }
                    if mayWait { zk_parallel(Int32(threads), Int32(count), run, context) }
                    else { zk_parallel_nowait(Int32(threads), Int32(count), run, context) }
                }
            }
        }
    }

    /// The closure of one `parallel` call, reached by the pool's threads through a C context pointer.
    private struct Job {
        let body: @Sendable (Int) -> Void
    }

    /// The `part`-th of `parts` near-equal ranges of `count`, cut at multiples of `unit`.
    static func range(_ part: Int, of parts: Int, _ count: Int, unit: Int) -> (Int, Int) {
        let units = (count + unit - 1) / unit
        return (min(count, units * part / parts * unit), min(count, units * (part + 1) / parts * unit))
    }

    /// Jobs per thread when a layer is cut up (`ZOO_JOBS_PER_THREAD`, default 1: on a busy
    /// machine more, smaller jobs measured slower, as row ranges repeat the packing of B and
    /// column ranges the reading of A).
    static let jobsPerThread = max(1, Int(ProcessInfo.processInfo.environment["ZOO_JOBS_PER_THREAD"] ?? "") ?? 1)

    /// How to cut `pairs` products of m x n x k into jobs for the threads: with too few pairs
    /// for a few jobs per thread (so that a thread slowed by other work on the machine takes
    /// fewer of them), each product is cut into `parts` ranges of 48-column panels, or of
    /// 8-row panels when it has few columns, keeping every job at a few MFLOP at least.
    /// Where the kernels read B in place (`packsB` false: a plain GEMM on AVX-512), row ranges
    /// repeat nothing, and they are taken where there are rows enough and the weights are not
    /// small beside the image (4m > n): they balance to 8 rows where columns balance to 48 (a
    /// 14x14 map's 196 columns cut 96 | 100), and measured 3 to 10 % faster on ResNet-50's 14x14
    /// and 7x7 1x1 shapes. A thread of a row range reads all of B, one of a column range all of A;
    /// with few rows beside many columns (256 -> 64 channels on a 56x56 map) columns measured
    /// 0.89-0.93 (0.5 in slow processes) per layer (benchmarks/RESULTS.md).
    static func split(pairs: Int, m: Int, n: Int, k: Int, mr: Int, packsB: Bool = true,
                      threads t: Int = threads) -> (parts: Int, byColumns: Bool) {
        let jobs = t * jobsPerThread
        guard t > 1, pairs < jobs else { return (1, true) }
        let columnPanels = (n + Int(ZK_NR) - 1) / Int(ZK_NR), rowPanels = (m + mr - 1) / mr
        let work = 2 * m * n * k
        var parts = min((jobs + pairs - 1) / pairs, max(1, work / 4_000_000))
        if !packsB, rowPanels >= 4 * parts, 4 * m > n { return (parts, false) }
        if columnPanels >= 2 * parts { return (parts, true) }
        parts = min(parts, rowPanels)
        return parts > 1 ? (parts, false) : (1, true)
    }

    /// `body` with the address of `values`, or nil.
    private static func withOptionalPointer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let values else { return body(nil) }
        return values.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    // MARK: Weight layouts

    /// Each group's `[out/groups, in/groups * k * k]` weight matrix in `path`'s panel layout,
    /// groups one after another.
    static func packGroups(_ weight: [Float], geometry g: ConvGeometry, path: KernelPath) -> [Float] {
        let m = g.outChannels / g.groups, k = g.inChannels / g.groups * g.kernel * g.kernel
        let size = zk_packed_a_count(path.code, Int32(m), Int32(k))
        // Safe uninitialised: zk_pack_a writes every float of its panels, padding rows included.
        var packed = [Float](unsafeUninitializedCapacity: size * g.groups) { _, n in n = size * g.groups }
        weight.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBufferPointer { pp in
                for group in 0 ..< g.groups {
                    // Safe: group g's m x k matrix and its packed panels lie inside the two arrays.
                    zk_pack_a(path.code, Int32(m), Int32(k), wp.baseAddress! + group * m * k, k, pp.baseAddress! + group * size)
                }
            }
        }
        return packed
    }

    /// The Winograd-transformed weight matrices of a 3x3 convolution (36 for F(4x4, 3x3), 16 for
    /// F(2x2, 3x3)), each packed: transformed, then packed, on all threads (this is most of a
    /// cold first forward).
    static func winogradWeights(_ weight: [Float], _ variant: Winograd, geometry: ConvGeometry, path: KernelPath) -> [Float] {
        let points = variant == .f4 ? 36 : 16
        let (cout, cin) = (geometry.outChannels, geometry.inChannels)
        let size = zk_packed_a_count(path.code, Int32(cout), Int32(cin))
        if path != .avx512 {
            // Transformed straight into the packed layout, output channels split across threads.
            var packed = [Float](repeating: 0, count: points * size)
            weight.withUnsafeBufferPointer { wp in
                packed.withUnsafeMutableBufferPointer { pp in
                    let (w, p) = (SendablePointer(wp.baseAddress!), SendablePointer(pp.baseAddress!))
                    let parts = min(cout, 4 * threads)
                    parallel(parts, mayWait: false) { part in
                        // Safe: the job writes only rows [o0, o1) of each packed matrix.
                        let (o0, o1) = range(part, of: parts, cout, unit: 1)
                        zk_winograd_pack(path.code, Int32(points), w.address, Int32(cout), Int32(cin), p.address,
                                         Int32(o0), Int32(o1))
                    }
                }
            }
            return packed
        }
        // Safe uninitialised: the transform writes every float of u, zk_pack_a every float of packed.
        var u = [Float](unsafeUninitializedCapacity: points * cout * cin) { _, n in n = points * cout * cin }
        var packed = [Float](unsafeUninitializedCapacity: points * size) { _, n in n = points * size }
        weight.withUnsafeBufferPointer { wp in
            u.withUnsafeMutableBufferPointer { up in
                packed.withUnsafeMutableBufferPointer { pp in
                    let (w, u, p) = (SendablePointer(wp.baseAddress!), SendablePointer(up.baseAddress!), SendablePointer(pp.baseAddress!))
                    let parts = min(cout, 4 * threads)
                    parallel(parts, mayWait: false) { part in
                        // Each job transforms the output channels [o0, o1) of all `points` matrices.
                        let (o0, o1) = range(part, of: parts, cout, unit: 1)
                        if variant == .f4 {
                            zk_winograd_transform(path.code, w.address, Int32(cout), Int32(cin), u.address, Int32(o0), Int32(o1))
                        } else {
                            zk_winograd2_transform(path.code, w.address, Int32(cout), Int32(cin), u.address, Int32(o0), Int32(o1))
                        }
                    }
                    parallel(points, mayWait: false) { xi in
                        // Safe: matrix xi is cout x cin floats of u, its packed copy `size` floats of packed.
                        zk_pack_a(path.code, Int32(cout), Int32(cin), u.address + xi * cout * cin, cin, p.address + xi * size)
                    }
                }
            }
        }
        return packed
    }

    // MARK: Convolutions

    /// A convolution through the CKernels GEMM: jobs are (image, group) pairs, or with fewer
    /// pairs than threads, column (or for small planes row) ranges of one product.
    static func convolve(_ conv: FusedConv, _ x: Tensor, relu: Bool, residual: Tensor?) -> Tensor {
        let g = conv.geometry
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = (g.outputSize(h), g.outputSize(w))
        let cinG = g.inChannels / g.groups, coutG = g.outChannels / g.groups
        let k = cinG * g.kernel * g.kernel, plane = oh * ow
        let path = conv.path, code = path.code
        let packedSize = zk_packed_a_count(code, Int32(coutG), Int32(k))
        let packed = conv.packed
        var y = uninitialized([n, g.outChannels, oh, ow])
        let pairs = n * g.groups
        let direct = g.kernel == 1 && g.stride == 1 && g.padding == 0
        let (splits, byColumns) = split(pairs: pairs, m: coutG, n: plane, k: k, mr: mr(path),
                                        packsB: !(direct && path == .avx512))
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                packed.withUnsafeBufferPointer { wp in
                    conv.bias.withUnsafeBufferPointer { bp in
                        withOptionalPointer(residual?.data) { rp in
                            let (input, output) = (SendablePointer(xp.baseAddress!), SendablePointer(yp.baseAddress!))
                            let (weights, bias, residual) = (SendablePointer(wp.baseAddress!), SendablePointer(bp.baseAddress!),
                                                             SendablePointer(rp))
                            parallel(pairs * splits) { job in
                                let pair = job / splits, part = job % splits
                                let image = pair / g.groups, group = pair % g.groups
                                var (m0, m1, n0, n1) = (0, coutG, 0, plane)
                                if byColumns {
                                    (n0, n1) = range(part, of: splits, plane, unit: Int(ZK_NR))
                                } else {
                                    (m0, m1) = range(part, of: splits, coutG, unit: mr(path))
                                }
                                guard m1 > m0, n1 > n0 else { return }
                                // Safe: the offsets below stay inside one image and one group of x, y,
                                // the residual (shaped as y), the packed weights and the bias; the job
                                // writes only rows [m0, m1) and columns [n0, n1) of its group's plane.
                                let outBase = (image * g.outChannels + group * coutG) * plane
                                let source = input.address + (image * g.inChannels + group * cinG) * h * w
                                var epilogue = zk_epilogue(bias: bias.address + group * coutG,
                                                           residual: residual.address.map { $0 + outBase }, ldr: plane,
                                                           relu: relu ? 1 : 0)
                                let a = weights.address + group * packedSize
                                let (rows, r0, r1) = (Int32(coutG), Int32(m0), Int32(m1))
                                if direct {
                                    zk_gemm(code, a, rows, Int32(k), r0, r1, source, plane, Int32(n0), Int32(n1),
                                            output.address + outBase, plane, &epilogue)
                                } else {
                                    var image = zk_conv_input(data: source, channels: Int32(cinG), height: Int32(h), width: Int32(w),
                                                              kernel: Int32(g.kernel), stride: Int32(g.stride),
                                                              padding: Int32(g.padding), dilation: Int32(g.dilation),
                                                              out_height: Int32(oh), out_width: Int32(ow))
                                    zk_conv_gemm(code, a, rows, Int32(k), r0, r1, &image, Int32(n0), Int32(n1),
                                                 output.address + outBase, plane, &epilogue)
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The two Winograd algorithms: F(4x4, 3x3) and, for maps too small to give it 16 tiles, F(2x2, 3x3).
    enum Winograd { case f4, f2 }

    /// Which Winograd algorithm runs this convolution, if any: 3x3, stride 1, undilated,
    /// ungrouped, with at least 16 output tiles in the batch to fill a GEMM panel (F(4x4, 3x3)
    /// when it has them; a 7x7 map alone has 4 of 4x4 but 16 of 2x2), and offsets that fit the
    /// 32-bit gather indices. `ZOO_WINOGRAD=0` turns both off, `=4` leaves only F(4x4, 3x3).
    static func winogradVariant(_ g: ConvGeometry, _ shape: [Int], path: KernelPath) -> Winograd? {
        guard winogradSetting != "0", g.kernel == 3, g.stride == 1, g.dilation == 1, g.groups == 1, g.inChannels >= 8,
              shape.count == 4 else { return nil }
        let (oh, ow) = (g.outputSize(shape[2]), g.outputSize(shape[3]))
        guard shape[0] * max(g.inChannels * shape[2] * shape[3], g.outChannels * oh * ow) < Int(Int32.max) else { return nil }
        if shape[0] * Int(zk_winograd_tiles(path.code, Int32(oh), Int32(ow))) >= 16 { return .f4 }
        if winogradSetting != "4", shape[0] * Int(zk_winograd2_tiles(path.code, Int32(oh), Int32(ow))) >= 16 { return .f2 }
        return nil
    }

    static let winogradSetting = ProcessInfo.processInfo.environment["ZOO_WINOGRAD"]

    /// Winograd: jobs are blocks of up to ZK_NR tile slots of the batch, evenly sized, and
    /// with fewer blocks than a few per thread, ranges of output channels too. One block so cut
    /// (up to ZK_WIDE slots) runs in two rounds on the generic core (AVX2, NEON): the threads
    /// transform ranges of input channels into one shared V, then make their output channels
    /// from it; on AVX-512 each job still repeats the block's input transform (winograd.c has no
    /// two-phase entry).
    static func winograd(_ conv: FusedConv, _ variant: Winograd, _ x: Tensor, relu: Bool, residual: Tensor?) -> Tensor {
        let g = conv.geometry
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = (g.outputSize(h), g.outputSize(w))
        let (cout, cin) = (g.outChannels, g.inChannels)
        let path = conv.path, code = path.code, mr = mr(path)
        let total = n * Int(variant == .f4 ? zk_winograd_tiles(code, Int32(oh), Int32(ow)) : zk_winograd2_tiles(code, Int32(oh), Int32(ow)))
        // Blocks of at most ZK_NR slots start at multiples of zk_winograd_unit, and their count
        // is a multiple of the threads where there are units enough: 224 slots in 5 blocks left
        // one thread 128 and the other 96.
        let t = threads, unit = Int(zk_winograd_unit(code)), m: Int32 = variant == .f4 ? 4 : 2
        let fewest = (total + Int(ZK_NR) - 1) / Int(ZK_NR), even = (fewest + t - 1) / t * t
        let panels = (cout + mr - 1) / mr
        // Few blocks: output channel ranges too (each repeats its block's input transform).
        let jobs = t * jobsPerThread
        func splits(_ blocks: Int) -> Int {
            t > 1 && blocks < jobs ? min((jobs + blocks - 1) / blocks, panels, max(1, cout / 32)) : 1
        }
        // One block cut by output channels: on the generic core, the threads share one input
        // transform (each does a range of input channels, then a range of output channels)
        // instead of each repeating all of it. It takes up to ZK_WIDE slots: the 49 tiles of a
        // 28x28 map in two blocks (32 and 17 slots) left one thread 40 % more work.
        let count = zk_winograd_v_count(code, m, Int32(cin), Int32(total))  // 0: no two-round route
        let blocks = count > 0 && total <= Int(ZK_WIDE) && splits(1) > 1 ? 1
            : t > 1 && fewest > 1 && even <= (total + unit - 1) / unit ? even : fewest
        let splits = splits(blocks)
        let transformed = conv.winogradWeights(variant)
        var y = uninitialized([n, cout, oh, ow])
        let shared = blocks == 1 && splits > 1 ? count : 0
        var v = shared > 0 ? uninitialized([shared]) : Tensor(shape: [0], data: [])
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                transformed.withUnsafeBufferPointer { wp in
                    conv.bias.withUnsafeBufferPointer { bp in
                        withOptionalPointer(residual?.data) { rp in
                            v.data.withUnsafeMutableBufferPointer { vp in
                                let (input, output) = (SendablePointer(xp.baseAddress!), SendablePointer(yp.baseAddress!))
                                let (weights, bias, residual) = (SendablePointer(wp.baseAddress!), SendablePointer(bp.baseAddress!),
                                                                 SendablePointer(rp))
                                if shared > 0, let base = vp.baseAddress {
                                    let v = SendablePointer(base)
                                    // Safe: job `part` writes input channels [c0, c1) of v, then (after
                                    // the first round has ended) output channels [m0, m1) of y.
                                    parallel(splits) { part in
                                        let (c0, c1) = range(part, of: splits, cin, unit: 1)
                                        zk_winograd_input(code, m, Int32(cin), input.address, Int32(h), Int32(w), Int32(g.padding),
                                                          0, Int32(total), Int32(c0), Int32(c1), v.address)
                                    }
                                    parallel(splits) { part in
                                        let (m0, m1) = range(part, of: splits, cout, unit: mr)
                                        guard m1 > m0 else { return }
                                        var epilogue = zk_epilogue(bias: bias.address, residual: residual.address, ldr: 0, relu: relu ? 1 : 0)
                                        zk_winograd_output(code, m, weights.address, Int32(cout), Int32(cin), v.address, Int32(h), Int32(w),
                                                           Int32(g.padding), 0, Int32(total), Int32(m0), Int32(m1), output.address, &epilogue)
                                    }
                                    return
                                }
                                parallel(blocks * splits) { job in
                                    // Each job writes the tiles [t0, t1) of output channels [m0, m1).
                                    let block = job / splits, part = job % splits
                                    let (t0, t1) = range(block, of: blocks, total, unit: unit)
                                    let (m0, m1) = range(part, of: splits, cout, unit: mr)
                                    guard t1 > t0, m1 > m0 else { return }
                                    var epilogue = zk_epilogue(bias: bias.address, residual: residual.address, ldr: 0, relu: relu ? 1 : 0)
                                    if variant == .f4 {
                                        zk_winograd(code, weights.address, Int32(cout), Int32(cin), input.address, Int32(h), Int32(w),
                                                    Int32(g.padding), Int32(t0), Int32(t1), Int32(m0), Int32(m1), output.address, &epilogue)
                                    } else {
                                        zk_winograd2(code, weights.address, Int32(cout), Int32(cin), input.address, Int32(h), Int32(w),
                                                     Int32(g.padding), Int32(t0), Int32(t1), Int32(m0), Int32(m1), output.address, &epilogue)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        BufferPool.shared.recycle(v)
        return y
    }

    // MARK: Other layers

    /// A Linear layer on a small batch through `zk_linear`, output features split across threads.
    static func linear(_ x: Tensor, weight: [Float], bias: [Float]?, outFeatures: Int, path: KernelPath) -> Tensor {
        let (n, inFeatures) = (x.shape[0], x.shape[1])
        var y = Tensor(zeros: [n, outFeatures])
        let parts = outFeatures >= 512 ? threads : 1
        x.data.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    withOptionalPointer(bias) { bp in
                        let (input, output) = (SendablePointer(xp.baseAddress!), SendablePointer(yp.baseAddress!))
                        let (weights, bias) = (SendablePointer(wp.baseAddress!), SendablePointer(bp))
                        parallel(parts) { part in
                            // Each job writes the output features [o0, o1) of every row.
                            let (o0, o1) = range(part, of: parts, outFeatures, unit: 16)
                            guard o1 > o0 else { return }
                            zk_linear(path.code, weights.address, bias.address, input.address, output.address, Int32(n), Int32(inFeatures),
                                      Int32(outFeatures), Int32(o0), Int32(o1))
                        }
                    }
                }
            }
        }
        return y
    }

    /// `nn.MaxPool2d` through `zk_max_pool` (on every CPU), planes split across threads.
    static func maxPool(_ x: Tensor, kernel: Int, stride: Int, padding: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1
        var y = uninitialized([n, c, oh, ow])
        let planes = n * c, code = path.code
        let parts = planes * h * w >= 1 << 16 ? min(threads, planes) : 1
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                let (input, output) = (SendablePointer(xp.baseAddress!), SendablePointer(yp.baseAddress!))
                parallel(parts) { part in
                    // Safe: planes [p0, p1) of x (h x w each) and of y (oh x ow each); no other job writes them.
                    let (p0, p1) = range(part, of: parts, planes, unit: 1)
                    zk_max_pool(code, input.address + p0 * h * w, output.address + p0 * oh * ow, p1 - p0, Int32(h), Int32(w),
                                Int32(kernel), Int32(stride), Int32(padding), Int32(oh), Int32(ow))
                }
            }
        }
        return y
    }
}
