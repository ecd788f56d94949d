import Foundation


/// The shape arithmetic of a 2-D convolution, as `nn.Conv2d` defines it.
public struct ConvGeometry: Sendable, Equatable {
    /// Input and output channels (`in_channels`, `out_channels`).
    public var inChannels: Int, outChannels: Int
    /// Kernel side, stride, zero padding on each side and dilation, all in pixels and the same for
    /// height and width, and the number of channel groups: `nn.Conv2d`'s arguments.
    public var kernel: Int, stride: Int, padding: Int, dilation: Int, groups: Int

    /// The output height (or width) for an input `size` pixels high (or wide):
    /// `(size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1`, rounded down as `nn.Conv2d` does.
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
/// On the CKernels paths (AVX-512, AVX2, NEON: `KernelPath`) it runs as a GEMM that reads the input image as its B
/// matrix without materialising im2col, or for 3x3 stride-1 convolutions Winograd F(4x4, 3x3)
/// (F(2x2, 3x3) on small maps), all applying the epilogue in registers, with weights packed (or
/// transformed) once, by `Model.prepare(for:)` or else at the first run that needs them
/// (CKernels.swift). On the `blas` path the
/// convolution is im2col + OpenBLAS sgemm + an epilogue pass (BLAS.swift). A convolution keeps the
/// path that was current when it was made (`KernelPath.current`), its weights' layouts with it.
public struct FusedConv: Sendable {
    /// The shape arithmetic of the convolution this runs.
    public let geometry: ConvGeometry
    let bias: [Float]
    /// The kernels that run it.
    let path: KernelPath
    /// The weights, and their CKernels layouts made on first use.
    let prepared: PreparedWeights

    init(geometry: ConvGeometry, weight: [Float], bias: [Float], path: KernelPath = Kernels.path) {
        self.geometry = geometry
        self.bias = bias
        self.path = path
        // Only a 3x3 stride-1 convolution may need its weights in a second layout (Winograd or
        // not depends on the input size); the others keep just the packed copy.
        let g = geometry
        let winograd = g.kernel == 3 && g.stride == 1 && g.dilation == 1 && g.groups == 1
        prepared = PreparedWeights(weight, keepSource: path == .blas || winograd)
    }

    /// `[out, in/groups, k, k]`, row-major: the GEMM's A matrix per group.
    var weight: [Float] { prepared.source }

    /// `weight` per group in CKernels' panel layout.
    var packed: [Float] { prepared.packed { Kernels.packGroups($0, geometry: geometry, path: path) } }

    /// The Winograd-transformed weight matrices (36 for F(4x4, 3x3), 16 for F(2x2, 3x3)), packed.
    func winogradWeights(_ variant: Kernels.Winograd) -> [Float] {
        variant == .f2 ? prepared.winograd2 { Kernels.winogradWeights($0, .f2, geometry: geometry, path: path) }
            : prepared.winograd { Kernels.winogradWeights($0, .f4, geometry: geometry, path: path) }
    }

    /// Makes now the weight layout that a run on an input of `shape` reads (packed panels, or
    /// the Winograd transform its size selects), unless it is made already.
    func prepare(for shape: [Int]) {
        guard path != .blas else { return }
        if let variant = Kernels.winogradVariant(geometry, shape, path: path) {
            _ = winogradWeights(variant)
        } else {
            _ = packed
        }
    }

    /// `ZOO_PROFILE=1`: every convolution reports its time on stderr.
    static let profiling = ProcessInfo.processInfo.environment["ZOO_PROFILE"] == "1"

    /// Runs the convolution on `x` with its epilogue.
    /// - Parameters:
    ///   - x: the input, `[N, in, H, W]`.
    ///   - relu: apply a ReLU as the output is stored.
    ///   - residual: added before the ReLU (a ResNet block's identity path); same shape as the output.
    public func run(_ x: Tensor, relu: Bool = false, residual: Tensor? = nil) -> Tensor {
        if path != .blas {
            let start = Self.profiling ? DispatchTime.now().uptimeNanoseconds : 0
            let variant = Kernels.winogradVariant(geometry, x.shape, path: path)
            let y = variant.map { Kernels.winograd(self, $0, x, relu: relu, residual: residual) }
                ?? Kernels.convolve(self, x, relu: relu, residual: residual)
            if Self.profiling {
                let ns = Double(DispatchTime.now().uptimeNanoseconds - start)
                let g = geometry
                let flops = 2.0 * Double(y.count * g.inChannels / g.groups * g.kernel * g.kernel)
                FileHandle.standardError.write(String(format: "conv %@ %dx%d s%d g%d %d->%d in %@: %.3f ms %.1f GFLOP/s\n",
                    variant.map { $0 == .f4 ? "winograd4" : "winograd2" } ?? "gemm", g.kernel, g.kernel, g.stride, g.groups, g.inChannels, g.outChannels,
                    x.shape.description, ns / 1e6, flops / ns).data(using: .utf8)!)
            }
            return y
        }
        return BLAS.convolve(self, x, relu: relu, residual: residual)
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

    /// How many layouts are made (0 to 3), for tests.
    var layoutsMade: Int {
        lock.lock()
        defer { lock.unlock() }
        return [direct, transformed, transformed2].count { $0 != nil }
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
