/// Element types zoo reads, named as PyTorch names them (`torch.float32` is `.float32`).
public enum DType: String, CaseIterable, Sendable, Codable {
    /// Floating-point types: IEEE single, double and half precision, and bfloat16 (float32's
    /// exponent with a 7-bit mantissa).
    case float32, float64, float16, bfloat16
    /// Integer types (signed, and unsigned bytes) and one-byte booleans.
    case int64, int32, int16, int8, uint8, bool

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16, .int16: 2
        case .int8, .uint8, .bool: 1
        }
    }

    /// True for the four floating-point types: the ones `NativeWriter.Options.dtype` may store in
    /// half precision (integer and bool tensors keep their dtype).
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float64, .float16, .bfloat16: true
        default: false
        }
    }

    /// The legacy typed-storage class that carries this dtype (`torch.FloatStorage` -> `.float32`).
    public init?(storageClass name: String) {
        switch name {
        case "FloatStorage": self = .float32
        case "DoubleStorage": self = .float64
        case "HalfStorage": self = .float16
        case "BFloat16Storage": self = .bfloat16
        case "LongStorage": self = .int64
        case "IntStorage": self = .int32
        case "ShortStorage": self = .int16
        case "CharStorage": self = .int8
        case "ByteStorage": self = .uint8
        case "BoolStorage": self = .bool
        default: return nil
        }
    }

    /// Storage classes PyTorch has that zoo recognises but does not read.
    static let refusedStorageClasses: Set<String> = [
        "ComplexFloatStorage", "ComplexDoubleStorage", "ComplexHalfStorage",
        "QInt8Storage", "QUInt8Storage", "QInt32Storage", "QUInt4x2Storage", "QUInt2x4Storage",
    ]

    /// A `torch.<name>` dtype symbol as pickled by `_rebuild_tensor_v3` (`torch.float32`, `torch.half`, ...).
    public init?(torchName name: String) {
        switch name {
        case "float32", "float": self = .float32
        case "float64", "double": self = .float64
        case "float16", "half": self = .float16
        case "bfloat16": self = .bfloat16
        case "int64", "long": self = .int64
        case "int32", "int": self = .int32
        case "int16", "short": self = .int16
        case "int8": self = .int8
        case "uint8": self = .uint8
        case "bool": self = .bool
        default: return nil
        }
    }

    /// The safetensors header code (`F32`, `BF16`, `I64`, ...).
    public var safetensorsCode: String {
        switch self {
        case .float32: "F32"
        case .float64: "F64"
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .int64: "I64"
        case .int32: "I32"
        case .int16: "I16"
        case .int8: "I8"
        case .uint8: "U8"
        case .bool: "BOOL"
        }
    }

    /// The dtype a safetensors header names by `code` (`F32`, `BF16`, `I64`, ...); nil for a code
    /// zoo does not read.
    public init?(safetensorsCode code: String) {
        guard let match = DType.allCases.first(where: { $0.safetensorsCode == code }) else { return nil }
        self = match
    }
}
