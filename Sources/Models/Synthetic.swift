/// Deterministic pseudo-random values from a key and an element index: the same numbers in
/// Swift and in NumPy (`Tests/Fixtures/make_fidelity.py`), so tests and benchmarks need no
/// weight files. Integer mixing (a murmur3-style finaliser) keeps it bit-exact everywhere.
public enum Synthetic {
    static func fnv1a(_ key: String) -> UInt32 {
        key.utf8.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 }
    }

    /// `count` values uniform in [-0.5, 0.5), each exactly representable in float32.
    public static func uniform(_ key: String, count: Int) -> [Float] {
        let seed = fnv1a(key)
        return (0 ..< count).map { j in
            var x = (UInt32(truncatingIfNeeded: j) &* 0x9E37_79B1) ^ seed
            x ^= x >> 16
            x = x &* 0x85EB_CA6B
            x ^= x >> 13
            x = x &* 0xC2B2_AE35
            x ^= x >> 16
            return Float(x >> 8) * 0x1p-24 - 0.5
        }
    }

    /// `uniform * a + b`, rounded as float32 at each step.
    public static func values(_ key: String, count: Int, scale a: Float, offset b: Float = 0) -> [Float] {
        uniform(key, count: count).map { $0 * a + b }
    }

    /// A deterministic input batch (values in [-1, 1)).
    public static func input(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, data: values("input", count: shape.reduce(1, *), scale: 2))
    }

    /// The formula weights for every parameter of `model`, by key:
    /// conv/linear weights He-uniform (`sqrt(24 / fan_in)`), BatchNorm weight 1 +- 0.2,
    /// biases and running means +-0.1, running variances in [0.5, 1.5), counters 0.
    public static func weights(for model: Model) -> NamedTensors {
        NamedTensors(model.namedParameters.map { key, parameter in
            let n = parameter.count
            let values: [Float]
            if key.hasSuffix("num_batches_tracked") {
                values = [Float](repeating: 0, count: n)
            } else if key.hasSuffix("running_mean") {
                values = Self.values(key, count: n, scale: 0.2)
            } else if key.hasSuffix("running_var") {
                values = Self.values(key, count: n, scale: 1, offset: 1)
            } else if key.hasSuffix("weight") && parameter.shape.count >= 2 {
                let fanIn = parameter.shape.dropFirst().reduce(1, *)
                values = Self.values(key, count: n, scale: Float((24.0 / Double(fanIn)).squareRoot()))
            } else if key.hasSuffix("weight") {
                values = Self.values(key, count: n, scale: 0.4, offset: 1)
            } else {
                values = Self.values(key, count: n, scale: 0.2)
            }
            return (key: key, tensor: Tensor(shape: parameter.shape, data: values))
        })
    }
}
