/// A weight or buffer of a network, under the shape torchvision gives it.
public final class Parameter {
    /// What a state-dict entry is to PyTorch, which decides how loading and summaries treat it.
    public enum Kind: Sendable {
        /// A learnable weight (`conv1.weight`, `fc.bias`).
        case parameter
        /// A float buffer (`running_mean`, `running_var`).
        case buffer
        /// An int64 counter (`num_batches_tracked`): optional on load, as PyTorch makes it.
        case counter
    }

    /// The shape torchvision gives it (`[64, 3, 7, 7]` for ResNet's `conv1.weight`); `[]` for a scalar.
    public let shape: [Int]
    /// Weight, buffer or counter.
    public let kind: Kind
    /// Elements in `shape`.
    public let count: Int
    private let fill: Float
    private var stored: [Float]?

    /// A parameter of `shape` whose values are `fill` until loaded; nothing is allocated until they are read.
    ///
    /// - Parameters:
    ///   - shape: Dimensions, outermost first.
    ///   - kind: What the entry is to PyTorch.
    ///   - fill: The initial value of every element (1 for BatchNorm's weight and running variance).
    public init(_ shape: [Int], kind: Kind = .parameter, fill: Float = 0) {
        self.shape = shape
        self.kind = kind
        self.fill = fill
        // Saturating: a shape that overflows cannot match any file, and load says so.
        count = shape.reduce(1) { product, size in
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            return overflow ? Int.max : next
        }
    }

    /// The elements, allocated (filled with the initial value) on first use: building a
    /// network allocates nothing, so `Model.load` checks every shape against the file before
    /// a shape the file dictates can make zoo allocate anything.
    public var values: [Float] {
        get {
            if let stored { return stored }
            let initial = [Float](repeating: fill, count: count)
            stored = initial
            return initial
        }
        set { stored = newValue }
    }
}

/// Builds dotted state-dict keys: `ParameterPath("layer1").child("0")("bn1")` is `layer1.0.bn1`.
public struct ParameterPath: Sendable, CustomStringConvertible {
    /// The dotted path so far (`layer1.0`); empty at the top of a network.
    public var prefix: String

    /// A path starting at `prefix` (a dotted key path, or empty for the top of a network).
    public init(_ prefix: String = "") { self.prefix = prefix }

    /// The path of the child module `name`: `prefix.name`.
    public func child(_ name: String) -> ParameterPath { ParameterPath(callAsFunction(name)) }
    /// The path of the child at `index` of a sequence (`features.3`).
    public func child(_ index: Int) -> ParameterPath { child(String(index)) }
    /// The full key of the parameter `name` under this path (`layer1.0.bn1` + `weight`).
    public func callAsFunction(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }
    public var description: String { prefix }
}

/// One row of a torchsummary table: a module that ran, in the order its forward finished.
public struct SummaryRow: Sendable, Codable, Equatable {
    /// The module's class name (`Conv2d`, `BasicBlock`), as torchsummary's "Layer (type)" column shows it.
    public var type: String
    /// The module's output shape with the batch dimension as -1 (`[-1, 64, 112, 112]`).
    public var outputShape: [Int]
    /// Elements of the module's own `weight` and `bias` (torchsummary's "Param #"); buffers are not counted.
    public var parameters: Int
    /// Whether the table counts the parameters as trainable; zoo's modules mark every row so.
    public var trainable: Bool
    /// Multiply-adds of one forward pass for the traced batch (convolutions and Linear layers).
    public var multiplyAdds = 0

    enum CodingKeys: String, CodingKey {
        case type
        case outputShape = "output_shape"
        case parameters
        case trainable
        case multiplyAdds = "multiply_adds"
    }
}

/// A piece of a network. One `visit` per module drives loading, listing and summaries, so key
/// paths are written once.
public protocol Module: AnyObject {
    /// Calls `body` with every parameter and buffer under its state-dict key, in torchvision's order.
    func visit(_ path: ParameterPath, _ body: (String, Parameter) throws -> Void) rethrows
    /// Infers the output shape for `input` (`[N, C, H, W]` or `[N, F]`) and appends the rows
    /// torchsummary would print. Throws `ModelError.badInput` for a shape the module cannot take.
    func trace(_ input: [Int], _ rows: inout [SummaryRow]) throws -> [Int]
}

/// A module that transforms a tensor on its own.
public protocol Layer: Module {
    /// Runs the layer on `x` (`[N, C, H, W]` or `[N, F]`) as its PyTorch module does in eval mode.
    ///
    /// It does not check the shape: `Model.forward` traces the input first and throws
    /// `ModelError.badInput` for one the network cannot take.
    func forward(_ x: Tensor) -> Tensor
}

extension Module {
    /// Every parameter and buffer with its key, in order.
    public func namedParameters(_ path: ParameterPath = ParameterPath()) -> [(key: String, parameter: Parameter)] {
        var out: [(String, Parameter)] = []
        visit(path) { out.append(($0, $1)) }
        return out.map { (key: $0.0, parameter: $0.1) }
    }

    /// The row torchsummary prints for a module with these weights (`weight` and `bias` counted).
    func row(_ output: [Int], _ weights: Parameter?...) -> SummaryRow {
        SummaryRow(type: String(describing: type(of: self)), outputShape: [-1] + output.dropFirst(),
                   parameters: weights.reduce(0) { $0 + ($1?.count ?? 0) }, trainable: true)
    }
}
