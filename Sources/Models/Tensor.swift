import Foundation

/// A dense float32 tensor in row-major order. Images are NCHW, as in PyTorch.
///
/// The public initialisers check that the values fit the shape and throw `ModelError.badInput`
/// when they do not; nothing a caller passes can make a tensor trap.
public struct Tensor: Sendable, Equatable {
    /// The size of each dimension, outermost first.
    public internal(set) var shape: [Int]
    /// The values, row-major: `shape.reduce(1, *)` of them. (`scalars` is the public name.)
    public internal(set) var data: [Float]

    /// A tensor of `shape` holding `scalars` in row-major order.
    /// - Throws: `ModelError.badInput` when a dimension is negative, the shape's element count
    ///   overflows, or it differs from `scalars.count`.
    public init(shape: [Int], scalars: [Float]) throws {
        let count = try Tensor.elementCount(shape)
        guard count == scalars.count else {
            throw ModelError.badInput("a tensor of shape \(shape) holds \(count) values, not \(scalars.count)")
        }
        self.init(shape: shape, data: scalars)
    }

    /// A tensor of `shape` filled with zeros.
    /// - Throws: `ModelError.badInput` for a negative dimension or a shape too large to count.
    public static func zeros(_ shape: [Int]) throws -> Tensor {
        Tensor(shape: shape, data: [Float](repeating: 0, count: try elementCount(shape)))
    }

    /// For zoo's own kernels, whose shapes are checked before they run.
    init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "Tensor: \(data.count) values for shape \(shape)")
        self.shape = shape
        self.data = data
    }

    init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// The product of `shape`, checked.
    static func elementCount(_ shape: [Int]) throws -> Int {
        try shape.reduce(1) { product, size in
            guard size >= 0 else { throw ModelError.badInput("a tensor cannot have a negative dimension: \(shape)") }
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            guard !overflow else { throw ModelError.badInput("a tensor of shape \(shape) has too many elements to count") }
            return next
        }
    }

    /// The values, row-major.
    public var scalars: [Float] { data }

    /// The number of values.
    public var count: Int { data.count }

    /// The largest absolute value, for relative error figures.
    public var maxMagnitude: Float { data.reduce(0) { max($0, abs($1)) } }

    /// max |self - other|, the figure fidelity checks report.
    public func maxDifference(_ other: Tensor) -> Float {
        zip(data, other.data).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    // MARK: The last step of a classifier

    /// The rows of the last dimension: a `[N, C]` tensor has N rows of C values (a vector, one).
    private var rows: (count: Int, width: Int) {
        let width = shape.last ?? 1
        return (width == 0 ? 0 : data.count / width, width)
    }

    /// Softmax over the last dimension, stabilised by each row's maximum: logits to probabilities.
    public func softmax() -> Tensor {
        var y = self
        let (count, width) = rows
        for row in 0 ..< count {
            let slice = row * width ..< (row + 1) * width
            let top = data[slice].max() ?? 0
            var sum: Float = 0
            for i in slice {
                y.data[i] = exp(data[i] - top)
                sum += y.data[i]
            }
            for i in slice { y.data[i] /= sum }
        }
        return y
    }

    /// The index of the largest value in each row of the last dimension (the first, on ties).
    public func argmax() -> [Int] {
        topK(1).map { $0.first?.index ?? 0 }
    }

    /// The `k` largest values of each row of the last dimension with their indices, largest
    /// first (the lower index first on ties, as `torch.topk` on CPU gives them).
    public func topK(_ k: Int) -> [[(index: Int, value: Float)]] {
        let (count, width) = rows
        let k = max(0, min(k, width))
        guard k > 0 else { return Array(repeating: [], count: count) }
        return (0 ..< count).map { row in
            let base = row * width
            var best: [(index: Int, value: Float)] = []
            best.reserveCapacity(k + 1)
            for i in 0 ..< width {
                let value = data[base + i]
                guard best.count < k || value > best[best.count - 1].value else { continue }
                let at = best.firstIndex { value > $0.value } ?? best.count
                best.insert((i, value), at: at)
                if best.count > k { best.removeLast() }
            }
            return best
        }
    }
}
