import CKernels
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
/// adds the bias, an optional residual and an optional ReLU before the output is stored.
///
/// On AVX-512 machines the CKernels paths run it: a GEMM that reads the input image as its B
/// matrix without materialising im2col, or for 3x3 stride-1 convolutions Winograd F(4x4, 3x3)
/// (F(2x2, 3x3) on small maps), all applying the epilogue in registers, with weights packed (or transformed) once, at the
/// first run that needs them. Elsewhere the convolution is im2col + OpenBLAS sgemm + an
/// epilogue pass.
public struct FusedConv: Sendable {
    public let geometry: ConvGeometry
    let bias: [Float]
    /// The weights, and their CKernels layouts made on first use.
    let prepared: PreparedWeights

    init(geometry: ConvGeometry, weight: [Float], bias: [Float]) {
        self.geometry = geometry
        self.bias = bias
        // Only a 3x3 stride-1 convolution may need its weights in a second layout (Winograd or
        // not depends on the input size); the others keep just the packed copy.
        let g = geometry
        let winograd = g.kernel == 3 && g.stride == 1 && g.dilation == 1 && g.groups == 1
        prepared = PreparedWeights(weight, keepSource: !Kernels.avx512 || winograd)
    }

    /// `[out, in/groups, k, k]`, row-major: the GEMM's A matrix per group.
    var weight: [Float] { prepared.source }

    /// `weight` per group in CKernels' panel layout.
    var packed: [Float] { prepared.packed { Kernels.packGroups($0, geometry: geometry) } }

    /// The Winograd-transformed weight matrices (36 for F(4x4, 3x3), 16 for F(2x2, 3x3)), packed.
    func winogradWeights(_ variant: Kernels.Winograd) -> [Float] {
        variant == .f2 ? prepared.winograd2 { transformed($0, points: 16, zk_winograd2_transform) }
            : prepared.winograd { transformed($0, points: 36, zk_winograd_transform) }
    }

    private func transformed(_ weight: [Float], points: Int,
                             _ transform: (UnsafePointer<Float>?, Int32, Int32, UnsafeMutablePointer<Float>?, Int32, Int32) -> Void)
        -> [Float] {
        // Transformed, then packed, on all threads: this is most of a cold first forward.
        let (cout, cin) = (geometry.outChannels, geometry.inChannels)
        let size = zk_packed_a_count(Int32(cout), Int32(cin))
        var u = [Float](repeating: 0, count: points * cout * cin)
        var packed = [Float](repeating: 0, count: points * size)
        withoutActuallyEscaping(transform) { transform in
            let shared = UncheckedTransform(transform: transform)
            weight.withUnsafeBufferPointer { wp in
                u.withUnsafeMutableBufferPointer { up in
                    packed.withUnsafeMutableBufferPointer { pp in
                        let p = SharedPointers(input: wp.baseAddress!, output: up.baseAddress!, weights: pp.baseAddress!,
                                               bias: wp.baseAddress!, residual: nil)
                        let parts = min(cout, 4 * Kernels.threads)
                        Kernels.parallel(parts) { part in
                            let (o0, o1) = Kernels.range(part, of: parts, cout, unit: 1)
                            shared.transform(p.input, Int32(cout), Int32(cin), p.output, Int32(o0), Int32(o1))
                        }
                        Kernels.parallel(points) { xi in
                            zk_pack_a(Int32(cout), Int32(cin), p.output + xi * cout * cin, cin,
                                      UnsafeMutablePointer(mutating: p.weights) + xi * size)
                        }
                    }
                }
            }
        }
        return packed
    }

    /// - Parameters:
    ///   - residual: added before the ReLU (a ResNet block's identity path); same shape as the output.
    public func run(_ x: Tensor, relu: Bool = false, residual: Tensor? = nil) -> Tensor {
        if Kernels.avx512 {
            let start = Kernels.profiling ? DispatchTime.now().uptimeNanoseconds : 0
            let variant = Kernels.winogradVariant(geometry, x.shape)
            let y = variant.map { Kernels.winograd(self, $0, x, relu: relu, residual: residual) }
                ?? Kernels.convolve(self, x, relu: relu, residual: residual)
            if Kernels.profiling {
                let ns = Double(DispatchTime.now().uptimeNanoseconds - start)
                let g = geometry
                let flops = 2.0 * Double(y.count * g.inChannels / g.groups * g.kernel * g.kernel)
                FileHandle.standardError.write(String(format: "conv %@ %dx%d s%d g%d %d->%d in %@: %.3f ms %.1f GFLOP/s\n",
                    variant.map { $0 == .f4 ? "winograd4" : "winograd2" } ?? "gemm", g.kernel, g.kernel, g.stride, g.groups, g.inChannels, g.outChannels,
                    x.shape.description, ns / 1e6, flops / ns).data(using: .utf8)!)
            }
            return y
        }
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

/// A convolution's weights (BatchNorm folded in) and their layouts for the CKernels paths,
/// each made once, when first needed. The plain weights are dropped after packing when no other
/// layout can be asked for (`keepSource` false), so a 1x1 convolution holds one copy, not two.
final class PreparedWeights: @unchecked Sendable {
    private let lock = NSLock()
    private var plain: [Float]
    private let keepSource: Bool
    private var direct: [Float]?
    private var transformed: [Float]?
    private var transformed2: [Float]?

    init(_ weight: [Float], keepSource: Bool) {
        plain = weight
        self.keepSource = keepSource
    }

    /// The plain weights (empty once dropped; only the OpenBLAS path reads them, and it keeps them).
    var source: [Float] {
        lock.lock()
        defer { lock.unlock() }
        return plain
    }

    func packed(_ make: ([Float]) -> [Float]) -> [Float] {
        lock.lock()
        defer { lock.unlock() }
        if let direct { return direct }
        let made = make(plain)
        direct = made
        if !keepSource { plain = [] }
        return made
    }

    func winograd(_ make: ([Float]) -> [Float]) -> [Float] {
        lock.lock()
        defer { lock.unlock() }
        if let transformed { return transformed }
        let made = make(plain)
        transformed = made
        return made
    }

    func winograd2(_ make: ([Float]) -> [Float]) -> [Float] {
        lock.lock()
        defer { lock.unlock() }
        if let transformed2 { return transformed2 }
        let made = make(plain)
        transformed2 = made
        return made
    }
}

/// Raw addresses handed to the worker threads of one kernel call, which write disjoint parts
/// of the output.
struct SharedPointers: @unchecked Sendable {
    var input: UnsafePointer<Float>
    var output: UnsafeMutablePointer<Float>
    var weights: UnsafePointer<Float>
    var bias: UnsafePointer<Float>
    var residual: UnsafePointer<Float>?
}

/// Loops over tensors that are not matrix products.
enum Kernels {
    /// Whether the CKernels AVX-512 paths run on this machine.
    /// `ZOO_KERNELS=blas` in the environment forces the OpenBLAS paths, for comparisons.
    static let avx512: Bool = {
        let on = zk_available() != 0 && ProcessInfo.processInfo.environment["ZOO_KERNELS"] != "blas"
        if on { BLAS.singleThreaded }
        return on
    }()

    /// Worker threads for the CKernels paths: the BLAS thread count (`Model.threads`).
    static var threads: Int { max(1, BLAS.threads) }

    /// Output tensors' storage, left uninitialised (every kernel writes all of it): an array
    /// recycled by an earlier layer when one of the same size is free, which spares the page
    /// faults of a fresh allocation.
    static func uninitialized(_ shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        if let data = BufferPool.shared.take(count) { return Tensor(shape: shape, data: data) }
        return Tensor(shape: shape, data: [Float](unsafeUninitializedCapacity: count) { _, n in n = count })
    }

    /// Hands an intermediate tensor that nothing uses any more back for reuse.
    static func recycle(_ t: consuming Tensor) {
        BufferPool.shared.put(t.data)
    }

    /// Each group's `[out/groups, in/groups * k * k]` weight matrix in CKernels' panel layout,
    /// groups one after another.
    static func packGroups(_ weight: [Float], geometry g: ConvGeometry) -> [Float] {
        let m = g.outChannels / g.groups, k = g.inChannels / g.groups * g.kernel * g.kernel
        let size = zk_packed_a_count(Int32(m), Int32(k))
        var packed = [Float](repeating: 0, count: size * g.groups)
        weight.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBufferPointer { pp in
                for group in 0 ..< g.groups {
                    zk_pack_a(Int32(m), Int32(k), wp.baseAddress! + group * m * k, k, pp.baseAddress! + group * size)
                }
            }
        }
        return packed
    }

    /// Runs `count` jobs on up to `threads` threads (inline when one suffices): CKernels' pool
    /// (`zk_parallel`), or GCD where `ZOO_POOL=gcd`.
    static func parallel(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 || threads <= 1 {
            for i in 0 ..< count { body(i) }
        } else if useGCD {
            withoutActuallyEscaping(body) { body in
                let shared = UncheckedBody(body: body)
                DispatchQueue.concurrentPerform(iterations: count) { shared.body($0) }
            }
        } else {
            withoutActuallyEscaping(body) { body in
                var shared = UncheckedBody(body: body)
                withUnsafeMutablePointer(to: &shared) { context in
                    zk_parallel(Int32(threads), Int32(count), { context, job in
                        context!.assumingMemoryBound(to: UncheckedBody.self).pointee.body(Int(job))
                    }, context)
                }
            }
        }
    }

    static let useGCD = ProcessInfo.processInfo.environment["ZOO_POOL"] == "gcd"

    /// A convolution through the CKernels GEMM: jobs are (image, group) pairs, or with fewer
    /// pairs than threads, column (or for small planes row) ranges of one product.
    static func convolve(_ conv: FusedConv, _ x: Tensor, relu: Bool, residual: Tensor?) -> Tensor {
        let g = conv.geometry
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = (g.outputSize(h), g.outputSize(w))
        let cinG = g.inChannels / g.groups, coutG = g.outChannels / g.groups
        let k = cinG * g.kernel * g.kernel, plane = oh * ow
        let packedSize = zk_packed_a_count(Int32(coutG), Int32(k))
        let packed = conv.packed
        var y = uninitialized([n, g.outChannels, oh, ow])
        let pairs = n * g.groups
        let (splits, byColumns) = split(pairs: pairs, m: coutG, n: plane, k: k)
        let direct = g.kernel == 1 && g.stride == 1 && g.padding == 0
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                packed.withUnsafeBufferPointer { wp in
                    conv.bias.withUnsafeBufferPointer { bp in
                        withOptionalPointer(residual?.data) { rp in
                            let p = SharedPointers(input: xp.baseAddress!, output: yp.baseAddress!, weights: wp.baseAddress!,
                                                   bias: bp.baseAddress!, residual: rp)
                            parallel(pairs * splits) { job in
                                let pair = job / splits, part = job % splits
                                let image = pair / g.groups, group = pair % g.groups
                                var (m0, m1, n0, n1) = (0, coutG, 0, plane)
                                if byColumns {
                                    (n0, n1) = range(part, of: splits, plane, unit: Int(ZK_NR))
                                } else {
                                    (m0, m1) = range(part, of: splits, coutG, unit: Int(ZK_MR))
                                }
                                guard m1 > m0, n1 > n0 else { return }
                                let outBase = (image * g.outChannels + group * coutG) * plane
                                let input = p.input + (image * g.inChannels + group * cinG) * h * w
                                var epilogue = zk_epilogue(bias: p.bias + group * coutG,
                                                           residual: p.residual.map { $0 + outBase }, ldr: plane,
                                                           relu: relu ? 1 : 0)
                                let a = p.weights + group * packedSize
                                let (rows, r0, r1) = (Int32(coutG), Int32(m0), Int32(m1))
                                if direct {
                                    zk_gemm(a, rows, Int32(k), r0, r1, input, plane, Int32(n0), Int32(n1),
                                            p.output + outBase, plane, &epilogue)
                                } else {
                                    var source = zk_conv_input(data: input, channels: Int32(cinG), height: Int32(h), width: Int32(w),
                                                               kernel: Int32(g.kernel), stride: Int32(g.stride),
                                                               padding: Int32(g.padding), dilation: Int32(g.dilation),
                                                               out_height: Int32(oh), out_width: Int32(ow))
                                    zk_conv_gemm(a, rows, Int32(k), r0, r1, &source, Int32(n0), Int32(n1),
                                                 p.output + outBase, plane, &epilogue)
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
    static func winogradVariant(_ g: ConvGeometry, _ shape: [Int]) -> Winograd? {
        guard winogradSetting != "0", g.kernel == 3, g.stride == 1, g.dilation == 1, g.groups == 1, g.inChannels >= 8,
              shape.count == 4 else { return nil }
        let (oh, ow) = (g.outputSize(shape[2]), g.outputSize(shape[3]))
        guard shape[0] * max(g.inChannels * shape[2] * shape[3], g.outChannels * oh * ow) < Int(Int32.max) else { return nil }
        if shape[0] * Int(zk_winograd_tiles(Int32(oh), Int32(ow))) >= 16 { return .f4 }
        if winogradSetting != "4", shape[0] * Int(zk_winograd2_tiles(Int32(oh), Int32(ow))) >= 16 { return .f2 }
        return nil
    }

    static let winogradSetting = ProcessInfo.processInfo.environment["ZOO_WINOGRAD"]

    /// `ZOO_PROFILE=1`: every convolution reports its time on stderr.
    static let profiling = ProcessInfo.processInfo.environment["ZOO_PROFILE"] == "1"


    /// Winograd: jobs are blocks of up to 48 tile slots of the batch, evenly sized, and
    /// with fewer blocks than a few per thread, ranges of output channels too.
    static func winograd(_ conv: FusedConv, _ variant: Winograd, _ x: Tensor, relu: Bool, residual: Tensor?) -> Tensor {
        let g = conv.geometry
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = (g.outputSize(h), g.outputSize(w))
        let (cout, cin) = (g.outChannels, g.inChannels)
        let total = n * Int(variant == .f4 ? zk_winograd_tiles(Int32(oh), Int32(ow)) : zk_winograd2_tiles(Int32(oh), Int32(ow)))
        // Blocks start at multiples of 16 slots, so that each vector of 16 is one run of tiles.
        let fewest = (total + Int(ZK_NR) - 1) / Int(ZK_NR)
        let perBlock = ((total + fewest - 1) / fewest + 15) / 16 * 16
        let blocks = (total + perBlock - 1) / perBlock
        let t = threads
        let panels = (cout + Int(ZK_MR) - 1) / Int(ZK_MR)
        // Few blocks: output channel ranges too (each repeats its block's input transform).
        let jobs = t * jobsPerThread
        let splits = t > 1 && blocks < jobs ? min((jobs + blocks - 1) / blocks, panels, max(1, cout / 32)) : 1
        let weights = conv.winogradWeights(variant)
        let run = variant == .f4 ? zk_winograd : zk_winograd2
        var y = uninitialized([n, cout, oh, ow])
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                weights.withUnsafeBufferPointer { wp in
                    conv.bias.withUnsafeBufferPointer { bp in
                        withOptionalPointer(residual?.data) { rp in
                            let p = SharedPointers(input: xp.baseAddress!, output: yp.baseAddress!, weights: wp.baseAddress!,
                                                   bias: bp.baseAddress!, residual: rp)
                            parallel(blocks * splits) { job in
                                let block = job / splits, part = job % splits
                                let t0 = block * perBlock, t1 = min(total, t0 + perBlock)
                                let (m0, m1) = range(part, of: splits, cout, unit: Int(ZK_MR))
                                guard t1 > t0, m1 > m0 else { return }
                                var epilogue = zk_epilogue(bias: p.bias, residual: p.residual, ldr: 0, relu: relu ? 1 : 0)
                                run(p.weights, Int32(cout), Int32(cin), p.input, Int32(h), Int32(w), Int32(g.padding),
                                            Int32(t0), Int32(t1), Int32(m0), Int32(m1), p.output, &epilogue)
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// How to cut `pairs` products of m x n x k into jobs for the threads: with too few pairs
    /// for a few jobs per thread (so that a thread slowed by other work on the machine takes
    /// fewer of them), each product is cut into `parts` ranges of 48-column panels, or of
    /// 8-row panels when it has few columns, keeping every job at a few MFLOP at least.
    static func split(pairs: Int, m: Int, n: Int, k: Int) -> (parts: Int, byColumns: Bool) {
        let t = threads, jobs = t * jobsPerThread
        guard t > 1, pairs < jobs else { return (1, true) }
        let columnPanels = (n + Int(ZK_NR) - 1) / Int(ZK_NR), rowPanels = (m + Int(ZK_MR) - 1) / Int(ZK_MR)
        let work = 2 * m * n * k
        var parts = min((jobs + pairs - 1) / pairs, max(1, work / 4_000_000))
        if columnPanels >= 2 * parts { return (parts, true) }
        parts = min(parts, rowPanels)
        return parts > 1 ? (parts, false) : (1, true)
    }

    /// Jobs per thread when a layer is cut up (`ZOO_JOBS_PER_THREAD`, default 1: on a busy
    /// machine more, smaller jobs measured slower, as row ranges repeat the packing of B and
    /// column ranges the reading of A).
    static let jobsPerThread = max(1, Int(ProcessInfo.processInfo.environment["ZOO_JOBS_PER_THREAD"] ?? "") ?? 1)

    /// The `part`-th of `parts` near-equal ranges of `count`, cut at multiples of `unit`.
    static func range(_ part: Int, of parts: Int, _ count: Int, unit: Int) -> (Int, Int) {
        let units = (count + unit - 1) / unit
        return (min(count, units * part / parts * unit), min(count, units * (part + 1) / parts * unit))
    }

    /// A Linear layer on a small batch through `zk_linear`, output features split across threads.
    static func linear(_ x: Tensor, weight: [Float], bias: [Float]?, outFeatures: Int) -> Tensor {
        let (n, inFeatures) = (x.shape[0], x.shape[1])
        var y = Tensor(zeros: [n, outFeatures])
        let parts = outFeatures >= 512 ? threads : 1
        x.data.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    withOptionalPointer(bias) { bp in
                        let p = SharedPointers(input: xp.baseAddress!, output: yp.baseAddress!, weights: wp.baseAddress!,
                                               bias: wp.baseAddress!, residual: bp)
                        parallel(parts) { part in
                            let (o0, o1) = range(part, of: parts, outFeatures, unit: 16)
                            guard o1 > o0 else { return }
                            zk_linear(p.weights, p.residual, p.input, p.output, Int32(n), Int32(inFeatures),
                                      Int32(outFeatures), Int32(o0), Int32(o1))
                        }
                    }
                }
            }
        }
        return y
    }

    static func withOptionalPointer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let values else { return body(nil) }
        return values.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

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
        var y = uninitialized([n, c, oh, ow])
        let planes = n * c
        let parts = planes * h * w >= 1 << 16 ? min(threads, planes) : 1
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                let p = SharedPointers(input: xp.baseAddress!, output: yp.baseAddress!, weights: xp.baseAddress!,
                                       bias: xp.baseAddress!, residual: nil)
                parallel(parts) { part in
                    let (p0, p1) = range(part, of: parts, planes, unit: 1)
                    zk_max_pool(p.input + p0 * h * w, p.output + p0 * oh * ow, p1 - p0, Int32(h), Int32(w), Int32(kernel),
                                Int32(stride), Int32(padding), Int32(oh), Int32(ow))
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

/// A weight transform shared with the pool's threads.
private struct UncheckedTransform: @unchecked Sendable {
    let transform: (UnsafePointer<Float>?, Int32, Int32, UnsafeMutablePointer<Float>?, Int32, Int32) -> Void
}

/// A non-escaping closure shared with the pool's (or GCD's) threads for the duration of one
/// `parallel` call, whose jobs touch disjoint memory.
private struct UncheckedBody: @unchecked Sendable {
    let body: (Int) -> Void
}

/// Float arrays of finished intermediate tensors, by element count, for the next layer or
/// forward pass that needs one of that size. Bounded, so it holds at most a few activations.
final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool()
    private let lock = NSLock()
    private var free: [Int: [[Float]]] = [:]
    private var bytes = 0
    /// At most this many bytes wait in the pool.
    var limit = 512 << 20

    func take(_ count: Int) -> [Float]? {
        lock.lock()
        defer { lock.unlock() }
        guard var list = free[count], let data = list.popLast() else { return nil }
        free[count] = list.isEmpty ? nil : list
        bytes -= count * 4
        return data
    }

    func put(_ data: [Float]) {
        let size = data.count * 4
        guard size >= 1 << 16 else { return }
        lock.lock()
        defer { lock.unlock() }
        guard bytes + size <= limit, (free[data.count]?.count ?? 0) < 4 else { return }
        free[data.count, default: []].append(data)
        bytes += size
    }
}
