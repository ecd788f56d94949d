/// The data a restricted unpickle produces. Nothing here can run code: a class the
/// allow-list does not know becomes an inert `PickleObject` that records what the file
/// asked for (module, name, arguments, state).
///
/// Every compound value is a reference type. Pickle's memo shares lists and dicts (a dict
/// memoised and then filled by SETITEMS must be the same dict everywhere), and boxing tuples
/// too lets `PickleArena` tear down arbitrarily deep or cyclic values without recursion.
public indirect enum PickleValue: @unchecked Sendable {
    /// Python's `None`.
    case none
    /// `True` or `False`.
    case bool(Bool)
    /// An integer that fits in 64 bits.
    case int(Int)
    /// An integer too large for `Int`: two's-complement little-endian bytes, as LONG1 stores it.
    case bigInt([UInt8])
    /// A Python float (a 64-bit double).
    case float(Double)
    /// A `str`, decoded from UTF-8.
    case string(String)
    /// A `bytes` (or `bytearray`) value, raw.
    case bytes([UInt8])
    /// A tuple, its items in order.
    case tuple(PickleList)
    /// A list, shared wherever the pickle's memo refers to it.
    case list(PickleList)
    /// A dict or `OrderedDict`, in insertion order.
    case dict(PickleDict)
    /// A `set` or `frozenset`, its items in the order the file lists them.
    case set(PickleList)
    /// A `module.name` symbol from GLOBAL / STACK_GLOBAL: data, never resolved.
    case global(module: String, name: String)
    /// An instance of a class the reader does not build: recorded, inert.
    case object(PickleObject)
    /// A tensor rebuilt from `torch._utils._rebuild_tensor_v2` (or an older form): a view into a storage.
    case tensor(TensorRecord)
    /// A storage named by a persistent id: a reference to its bytes, not yet read.
    case storage(StorageRef)

    /// The text of a `.string`; nil for any other value.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The value of an `.int`, or 0 / 1 for a `.bool` (Python's bool is an int); nil otherwise.
    public var int: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// The elements of a tuple, list or set.
    public var elements: [PickleValue]? {
        switch self {
        case .tuple(let list), .list(let list), .set(let list): return list.items
        default: return nil
        }
    }

    /// The tensor of a `.tensor`, or of an `.object` that is a pre-0.4 `torch.Tensor`; nil otherwise.
    public var tensor: TensorRecord? {
        switch self {
        case .tensor(let t): return t
        case .object(let o): return o.tensor
        default: return nil
        }
    }

    /// The dict of a `.dict`; nil for any other value.
    public var dict: PickleDict? {
        if case .dict(let d) = self { return d }
        return nil
    }

    /// A short name for the kind of value, for messages.
    public var kindName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int, .bigInt: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case .set: "set"
        case .global(let m, let n): "symbol \(m).\(n)"
        case .object(let o): "object \(o.qualifiedName)"
        case .tensor: "tensor"
        case .storage: "storage"
        }
    }
}

/// The items of a list, tuple or set.
public final class PickleList {
    /// The items, in the order the pickle appended them.
    public internal(set) var items: [PickleValue]
    init(_ items: [PickleValue] = []) { self.items = items }
}

/// An insertion-ordered dict. String and integer keys are indexed; other keys are kept in order.
public final class PickleDict {
    /// Every key-value pair in insertion order; a string or integer key set twice keeps its first
    /// position and its last value.
    public private(set) var entries: [(key: PickleValue, value: PickleValue)] = []
    private var index: [IndexKey: Int] = [:]
    /// What BUILD set on the dict itself (an `OrderedDict`'s `_metadata`), kept as data.
    public internal(set) var state: PickleValue?

    /// Strings are indexed by their UTF-8 bytes: Python compares keys by code points, Swift's
    /// `String ==` by canonical equivalence, which would merge the NFC and NFD spellings of a key.
    private enum IndexKey: Hashable {
        case string([UInt8])
        case int(Int)
    }

    private static func indexKey(_ key: PickleValue) -> IndexKey? {
        switch key {
        case .string(let s): .string(Array(s.utf8))
        case .int(let i): .int(i)
        default: nil
        }
    }

    init() {}

    /// The number of entries.
    public var count: Int { entries.count }

    func set(_ key: PickleValue, _ value: PickleValue) {
        if let k = Self.indexKey(key) {
            if let i = index[k] {
                entries[i].value = value
                return
            }
            index[k] = entries.count
        }
        entries.append((key, value))
    }

    func removeAll() {
        entries = []
        index = [:]
        state = nil
    }

    /// The value under the string key `key` (compared by code points, as Python does); nil when absent.
    public subscript(key: String) -> PickleValue? {
        index[.string(Array(key.utf8))].map { entries[$0].value }
    }
}

/// An instance of a class the reader does not construct: what the file asked for, inert.
public final class PickleObject {
    /// The module the class was looked up in (`collections`, `argparse`, ...).
    public let module: String
    /// The class name within `module` (`Namespace`).
    public let name: String
    /// The arguments REDUCE / NEWOBJ passed to the class, in order.
    public internal(set) var arguments: [PickleValue]
    /// What BUILD passed (a `__setstate__` argument, usually a dict); nil when there was no BUILD.
    public internal(set) var state: PickleValue?
    /// Set when the object is a `torch.Tensor()` (or `torch.FloatTensor()`...) that BUILD
    /// pointed at a storage, as torch < 0.4 pickled tensors.
    public internal(set) var tensor: TensorRecord?

    init(module: String, name: String, arguments: [PickleValue]) {
        self.module = module
        self.name = name
        self.arguments = arguments
    }

    /// `module.name`, as Python prints the class (`argparse.Namespace`).
    public var qualifiedName: String { "\(module).\(name)" }

    /// The object's `__dict__`-style state when BUILD gave it a dict (or a `(dict, slots)` pair).
    public var stateDict: PickleDict? {
        switch state {
        case .dict(let d): return d
        case .tuple(let pair) where pair.items.count == 2: return pair.items[0].dict
        default: return nil
        }
    }
}

/// Owns every compound value one unpickle made. Values may nest millions deep or refer to
/// themselves; releasing them naively would recurse once per level and overflow the stack.
/// The arena empties each container first, so nothing is released recursively.
final class PickleArena {
    private var lists: [PickleList] = []
    private var dicts: [PickleDict] = []
    private var objects: [PickleObject] = []
    /// Every GLOBAL / STACK_GLOBAL the unpicklers met, in order (see `PickleSymbol`).
    var symbols: [SymbolVerdicts.Occurrence] = []
    /// Symbols found in a tensor's hooks, metadata or state, which the tensor drops: where.
    var hiddenSymbols: [String: String] = [:]

    func list(_ items: [PickleValue] = []) -> PickleList {
        let list = PickleList(items)
        lists.append(list)
        return list
    }

    func dict() -> PickleDict {
        let dict = PickleDict()
        dicts.append(dict)
        return dict
    }

    func object(module: String, name: String, arguments: [PickleValue]) -> PickleObject {
        let object = PickleObject(module: module, name: name, arguments: arguments)
        objects.append(object)
        return object
    }

    deinit {
        for list in lists { list.items = [] }
        for dict in dicts { dict.removeAll() }
        for object in objects {
            object.arguments = []
            object.state = nil
        }
    }
}
