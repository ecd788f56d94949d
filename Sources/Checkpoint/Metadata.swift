/// A JSON-shaped summary of a non-tensor part of a checkpoint (epoch, optimizer state, an
/// `argparse.Namespace`), bounded in depth and width so that any file summarises quickly.
public indirect enum MetadataValue: Sendable, Equatable, Encodable {
    /// Python's `None`.
    case null
    /// A Python `bool` (or a numpy `b1` scalar).
    case bool(Bool)
    /// An integer that fits in `Int` (or a numpy `i4` / `i8` scalar); larger ones become hex strings.
    case int(Int)
    /// A finite float (or a numpy `f4` / `f8` scalar); `nan` and `inf` become strings.
    case double(Double)
    /// Text, or a stand-in for what JSON cannot hold: a symbol, `<12 bytes>`, a storage, a truncation marker.
    case string(String)
    /// A tuple, list or set: its first 64 items, then a `<n more>` marker.
    case array([MetadataValue])
    /// Ordered key-value pairs.
    case object([Pair])
    /// A tensor outside the state dict: its type and shape, never its data.
    case tensor(dtype: DType, shape: [Int])

    /// One entry of an object: a dict key as text (a non-string key as `<kind>`) and its summarised value.
    public struct Pair: Sendable, Equatable {
        /// The key as text: a string key as it is, an integer in decimal, anything else as `<kind>`.
        public var key: String
        /// The entry's value, summarised.
        public var value: MetadataValue
    }

    static let maxDepth = 16
    static let maxItems = 64
    /// Values one summary may hold in all: shared references can make a small pickle a tree
    /// of 64^16 paths, and only this bound keeps summarising it fast.
    static let maxValues = 20_000
    /// Text bytes one budget unit pays for: a string, symbol, big integer or key costs one unit
    /// per 256 bytes on top of its own, so a summary renders at most ~5 MB of text however often
    /// the pickle references one long value.
    static let textBytesPerUnit = 256

    /// Spends the text cost of `text`; returns it, or a stand-in when the budget is spent.
    static func text(_ text: String, budget: inout Int) -> String {
        let cost = text.utf8.count / textBytesPerUnit
        guard cost > 0 else { return text }
        guard budget >= cost else { return "<\(text.utf8.count) bytes of text; summary truncated>" }
        budget -= cost
        return text
    }

    /// The value under `key` when this is an object that has it; nil otherwise.
    public subscript(key: String) -> MetadataValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    /// Summarises the non-tensor entries of a checkpoint within one budget of `maxValues`.
    static func summarise(_ entries: [(key: PickleValue, value: PickleValue)]) -> [Pair] {
        var budget = maxValues
        var out: [Pair] = []
        for entry in entries {
            guard budget > 0 else {
                out.append(Pair(key: "<more>", value: .int(entries.count - out.count)))
                break
            }
            out.append(Pair(key: text(keyText(entry.key), budget: &budget), value: MetadataValue(entry.value, depth: 0, budget: &budget)))
        }
        return out
    }

    /// Summarises a pickled value, spending one unit of `budget` per value.
    init(_ value: PickleValue, depth: Int, budget: inout Int) {
        budget -= 1
        guard depth < Self.maxDepth, budget >= 0 else {
            self = .string(budget < 0 ? "<summary truncated>" : "<nested deeper than \(Self.maxDepth) levels>")
            return
        }
        func items(_ values: [PickleValue]) -> MetadataValue {
            var out = values.prefix(Self.maxItems).map { MetadataValue($0, depth: depth + 1, budget: &budget) }
            if values.count > Self.maxItems { out.append(.string("<\(values.count - Self.maxItems) more>")) }
            return .array(out)
        }
        func pairs(_ dict: PickleDict) -> [Pair] {
            var out = dict.entries.prefix(Self.maxItems).map {
                Pair(key: Self.text(Self.keyText($0.key), budget: &budget), value: MetadataValue($0.value, depth: depth + 1, budget: &budget))
            }
            if dict.count > Self.maxItems { out.append(Pair(key: "<more>", value: .int(dict.count - Self.maxItems))) }
            return out
        }
        switch value {
        case .none: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .bigInt(let raw):
            self = raw.count / Self.textBytesPerUnit * 2 > budget
                ? .string("<\(raw.count)-byte integer; summary truncated>")
                : .string(Self.text("0x" + raw.reversed().map { String(format2: $0) }.joined(), budget: &budget))
        case .float(let d): self = d.isFinite ? .double(d) : .string(String(d))
        case .string(let s): self = .string(Self.text(s, budget: &budget))
        case .bytes(let b): self = .string("<\(b.count) bytes>")
        case .tuple(let list), .list(let list), .set(let list): self = items(list.items)
        case .dict(let dict): self = .object(pairs(dict))
        case .global(let module, let name): self = .string(Self.text("\(module).\(name)", budget: &budget))
        case .tensor(let t): self = .tensor(dtype: t.dtype, shape: t.shape)
        case .storage(let s): self = .string("<\(s.dtype.rawValue) storage of \(s.byteCount) bytes>")
        case .object(let object):
            if let scalar = Self.numpyScalar(object) {
                self = scalar
                return
            }
            var fields = [Pair(key: "__class__", value: .string(Self.text(object.qualifiedName, budget: &budget)))]
            if let state = object.stateDict {
                fields += pairs(state)
            } else if let state = object.state {
                fields.append(Pair(key: "__state__", value: MetadataValue(state, depth: depth + 1, budget: &budget)))
            }
            if !object.arguments.isEmpty {
                fields.append(Pair(key: "__args__", value: items(object.arguments)))
            }
            self = .object(fields)
        }
    }

    /// `numpy.float64(0.5)` and friends: `numpy.core.multiarray.scalar(dtype('f8'), raw bytes)`.
    static func numpyScalar(_ object: PickleObject) -> MetadataValue? {
        guard object.name == "scalar", object.module.hasPrefix("numpy"), object.arguments.count == 2,
              case .object(let dtype) = object.arguments[0], dtype.name == "dtype",
              let code = dtype.arguments.first?.string, case .bytes(let raw) = object.arguments[1] else { return nil }
        return raw.withUnsafeBytes { bytes -> MetadataValue? in
            switch (code, raw.count) {
            case ("f8", 8): return .double(bytes.loadUnaligned(as: Double.self))
            case ("f4", 4): return .double(Double(bytes.loadUnaligned(as: Float.self)))
            case ("i8", 8): return .int(Int(bytes.loadUnaligned(as: Int64.self)))
            case ("i4", 4): return .int(Int(bytes.loadUnaligned(as: Int32.self)))
            case ("b1", 1): return .bool(raw[0] != 0)
            default: return nil
            }
        }
    }

    static func keyText(_ key: PickleValue) -> String {
        switch key {
        case .string(let s): s
        case .int(let i): String(i)
        default: "<\(key.kindName)>"
        }
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .int(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .double(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .object(let pairs):
            var c = encoder.container(keyedBy: Key.self)
            for pair in pairs { try c.encode(pair.value, forKey: Key(pair.key)) }
        case .tensor(let dtype, let shape):
            var c = encoder.container(keyedBy: Key.self)
            try c.encode("tensor", forKey: Key("__class__"))
            try c.encode(dtype.rawValue, forKey: Key("dtype"))
            try c.encode(shape, forKey: Key("shape"))
        }
    }
}
