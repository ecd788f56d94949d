/// A dense float32 tensor in row-major order. Images are NCHW, as in PyTorch.
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "Tensor: \(data.count) values for shape \(shape)")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public var count: Int { data.count }

    /// The largest absolute value, for relative error figures.
    public var maxMagnitude: Float { data.reduce(0) { max($0, abs($1)) } }

    /// max |self - other|, the figure fidelity checks report.
    public func maxDifference(_ other: Tensor) -> Float {
        zip(data, other.data).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }
}
