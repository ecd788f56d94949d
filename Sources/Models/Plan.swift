/// A network's forward pass compiled for its current weights: every convolution with the
/// BatchNorm after it folded in and its ReLU (and a ResNet block's residual sum) applied as it
/// stores its output, every Linear with its ReLU, Dropout gone. `Model` builds it when weights
/// are loaded. Running it hands each intermediate tensor back to `BufferPool` as soon as the
/// next step has consumed it, so one forward pass reuses a few activation buffers.
final class Plan: @unchecked Sendable {  // immutable once built; the weight layouts it makes are behind locks
    enum Step {
        case conv(FusedConv, relu: Bool)
        case linear(Linear, relu: Bool)
        /// A ResNet block: `downsample` (or the identity) is added before the last ReLU; every
        /// convolution is followed by a ReLU.
        case residual(convs: [FusedConv], downsample: FusedConv?)
        /// `torch.flatten(x, 1)`: the same storage, read as `[N, features]`.
        case flatten
        case softmax
        /// Any other layer, through its own `forward`.
        case layer(any Layer)
    }

    let steps: [Step]
    /// Every convolution of the steps.
    private let convs: [FusedConv]
    /// Where the head begins: the first Flatten or Linear (`steps.count` if none).
    private let head: Int

    init(_ network: any Layer) {
        var builder = Builder()
        builder.append(network)
        steps = builder.steps
        convs = steps.flatMap { step -> [FusedConv] in
            switch step {
            case .conv(let conv, _): [conv]
            case .residual(let convs, let downsample): convs + (downsample.map { [$0] } ?? [])
            default: []
            }
        }
        head = steps.firstIndex { step in
            switch step {
            case .flatten, .linear: true
            default: false
            }
        } ?? steps.count
    }

    /// Into how many slices `run` cuts a batch of `batch` images: one per thread when the
    /// convolutions run on a CKernels path, on CKernels' own pool (not `ZOO_POOL=gcd`), and the
    /// threads divide the batch; otherwise 1, and each layer is cut between the threads. A slice
    /// runs every layer before the head on its own thread with single-threaded kernels, which
    /// keeps its activations in that thread's caches and leaves no layer waiting for its slowest
    /// part (ResNet-50 at batch 8: 2-3 % faster, ResNet-18 6 %; benchmarks/RESULTS.md); the head
    /// then runs once on the whole batch, so the classifier's weights are read once, not once
    /// per slice.
    func slices(_ batch: Int) -> Int {
        let threads = Kernels.threads
        guard convs.contains(where: { $0.path != .blas }), !Kernels.useGCD, threads > 1, batch >= threads,
              batch % threads == 0 else {
            return 1
        }
        return threads
    }

    /// The steps before a final softmax: the logits of the tutorial VGG, all steps otherwise.
    var logitSteps: ArraySlice<Step> {
        if case .softmax = steps.last { return steps.dropLast() }
        return steps[...]
    }

    /// Runs `steps` (all of them unless given; a range of `self.steps`) on `x`.
    func run(_ x: Tensor, _ steps: ArraySlice<Step>? = nil) -> Tensor {
        let steps = steps ?? self.steps[...]
        let parts = slices(x.shape[0]), cut = min(max(head, steps.startIndex), steps.endIndex)
        guard parts > 1, cut > steps.startIndex else { return runBatch(x, steps) }
        let size = x.count / parts, shape = [x.shape[0] / parts] + x.shape.dropFirst()
        let outputs = Locked<[Tensor?]>(Array(repeating: nil, count: parts))
        let trunk = steps.startIndex ..< cut
        Kernels.parallel(parts) { part in
            let slice = Tensor(shape: shape, data: Array(x.data[part * size ..< (part + 1) * size]))
            let y = self.runBatch(slice, self.steps[trunk])
            outputs.withLock { $0[part] = y }
        }
        var ys = outputs.withLock { values in
            defer { values = [] }  // the slices' outputs go back to the pool below, held nowhere else
            return values.map { $0! }
        }
        let joined = Tensor(shape: [x.shape[0]] + ys[0].shape.dropFirst(), data: ys.flatMap(\.data))
        while let y = ys.popLast() { BufferPool.shared.recycle(y) }
        return runBatch(joined, steps[cut...], owned: true)
    }

    /// `run` on the whole of `x`, layer by layer; `owned`: `x` is an intermediate of this pass.
    private func runBatch(_ x: Tensor, _ steps: ArraySlice<Step>, owned: Bool = false) -> Tensor {
        var y = x
        var owned = owned  // whether y is an intermediate of this pass, free to recycle
        for step in steps {
            if case .flatten = step {
                y = Flatten.forward(y)  // a view of the same array: nothing to recycle
                continue
            }
            let next = apply(step, y)
            if owned { BufferPool.shared.recycle(y) }
            y = next
            owned = true
        }
        return y
    }

    /// Makes every convolution's weight layouts for an input of `shape` (`FusedConv.prepare`),
    /// following the shapes from step to step without running any.
    func prepare(for shape: [Int]) throws {
        var x = shape, rows: [SummaryRow] = []
        if !x.isEmpty { x[0] /= slices(x[0]) }  // the shape each slice runs
        for step in steps {
            switch step {
            case .conv(let conv, _):
                conv.prepare(for: x)
                x = try conv.geometry.outputShape(x)
            case .linear(let linear, _):
                x = try linear.trace(x, &rows)
            case .residual(let convs, let downsample):
                downsample?.prepare(for: x)
                for conv in convs {
                    conv.prepare(for: x)
                    x = try conv.geometry.outputShape(x)
                }
            case .flatten:
                x = Flatten.shape(x)
            case .softmax:
                break
            case .layer(let layer):
                x = try layer.trace(x, &rows)
            }
        }
    }

    /// The weight layouts its convolutions have made so far, and whether they run on a
    /// CKernels path (which makes them), for tests.
    var layouts: (made: Int, kernels: Bool) {
        (convs.reduce(0) { $0 + $1.prepared.layoutsMade }, convs.contains { $0.path != .blas })
    }

    private func apply(_ step: Step, _ x: Tensor) -> Tensor {
        switch step {
        case .conv(let conv, let relu):
            return conv.run(x, relu: relu)
        case .linear(let linear, let relu):
            return linear.forward(x, relu: relu)
        case .residual(let convs, let downsample):
            let identity = downsample?.run(x) ?? x
            var y = convs[0].run(x, relu: true)
            for conv in convs.dropFirst().dropLast() {
                let next = conv.run(y, relu: true)
                BufferPool.shared.recycle(y)
                y = next
            }
            let out = convs[convs.count - 1].run(y, relu: true, residual: identity)
            BufferPool.shared.recycle(y)
            if downsample != nil { BufferPool.shared.recycle(identity) }
            return out
        case .flatten:
            return Flatten.forward(x)
        case .softmax:
            return x.softmax()
        case .layer(let layer):
            return layer.forward(x)
        }
    }

    /// Collects steps in forward order, fusing as it goes.
    struct Builder {
        private(set) var steps: [Step] = []

        mutating func append(_ step: Step) { steps.append(step) }

        /// A network or container lowers itself; any other layer is one step.
        mutating func append(_ layer: any Layer) {
            if let layer = layer as? any Compilable {
                layer.compile(&self)
            } else {
                append([layer])
            }
        }

        /// Layers run one after another, as `nn.Sequential` runs them: a convolution absorbs the
        /// BatchNorm and ReLU after it, a Linear its ReLU, and Dropout (the identity in eval mode)
        /// disappears.
        mutating func append(_ layers: [any Layer]) {
            var i = 0
            while i < layers.count {
                let layer = layers[i]
                let next = i + 1 < layers.count ? layers[i + 1] : nil
                if let conv = layer as? Conv2d {
                    let bn = next as? BatchNorm2d
                    let after = i + (bn == nil ? 1 : 2)
                    let relu = after < layers.count && layers[after] is ReLU
                    steps.append(.conv(conv.fused(with: bn), relu: relu))
                    i = after + (relu ? 1 : 0)
                } else if let linear = layer as? Linear {
                    let relu = next is ReLU
                    steps.append(.linear(linear, relu: relu))
                    i += relu ? 2 : 1
                } else if layer is Dropout {
                    i += 1
                } else if let compilable = layer as? any Compilable {
                    compilable.compile(&self)
                    i += 1
                } else {
                    steps.append(.layer(layer))
                    i += 1
                }
            }
        }
    }
}

/// A network or container that lowers itself into plan steps; `Plan` runs any other layer
/// through its `forward`.
protocol Compilable: Layer {
    func compile(_ plan: inout Plan.Builder)
}
