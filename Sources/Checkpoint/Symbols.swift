/// Every symbol (GLOBAL / STACK_GLOBAL) a checkpoint's pickles name, with a verdict on what the
/// original file would do in PyTorch. zoo itself never imports or calls any of them.
public struct PickleSymbol: Sendable, Equatable, Encodable {
    /// What loading the original file in PyTorch would do with a symbol.
    public enum Verdict: String, Sendable, Encodable {
        /// Accepted by `torch.load(weights_only=True)` by default (torch's own allow-list): the
        /// original loads in torch without importing anything else.
        case allowed
        /// Anything else: inert in zoo, but `torch.load(weights_only=False)` of the original would
        /// import it and may call it; `weights_only=True` refuses the file.
        case foreign
        /// Execution, file, process or network primitives and nested loaders: zoo refuses the
        /// whole file (a `security` error names it), so a loaded checkpoint never lists one.
        case hostile
    }

    /// `module.name`, at most `maxNameBytes` of it.
    public var name: String
    /// Byte offset of the first GLOBAL / STACK_GLOBAL naming it, in `record`.
    public var offset: Int
    /// The pickle it sits in (`archive/data.pkl`, `main pickle`).
    public var record: String
    /// What PyTorch would do with the symbol: allow it, import it, or (never in a loaded file) run it.
    public var verdict: Verdict
    /// Where the value sits: a key path in the unpickled object (`optimizer.param_groups.0`), a
    /// tensor's `backward_hooks` / `metadata` / `state`, or `constructor` when an allow-listed
    /// constructor consumed it.
    public var usedAt: String
    /// How many GLOBAL / STACK_GLOBAL opcodes name it.
    public var count: Int

    enum CodingKeys: String, CodingKey {
        case name, offset, record, verdict, count
        case usedAt = "used_at"
    }

    /// Distinct symbols listed per checkpoint, and the bytes of each name shown: a file can
    /// name one long symbol a million times through the memo.
    static let maxSymbols = 10_000
    static let maxNameBytes = 1024
}

/// The verdicts of `PickleSymbol`.
enum SymbolVerdicts {
    /// torch 2.15's `torch._weights_only_unpickler._get_allowed_globals()`, the default
    /// allow-list of `torch.load(weights_only=True)` (regenerate with
    /// `python -c "from torch._weights_only_unpickler import _get_allowed_globals as g; print(sorted(g()))"`).
    static let torchAllowed: Set<String> = [
        "_codecs.encode", "builtins.bytearray", "builtins.complex", "builtins.set", "collections.Counter",
        "collections.OrderedDict", "torch.BFloat16Storage", "torch.BFloat16Tensor", "torch.BoolStorage",
        "torch.BoolTensor", "torch.ByteStorage", "torch.ByteTensor", "torch.CharStorage", "torch.CharTensor",
        "torch.ComplexDoubleStorage", "torch.ComplexFloatStorage", "torch.DoubleStorage", "torch.DoubleTensor",
        "torch.FloatStorage", "torch.FloatTensor", "torch.HalfStorage", "torch.HalfTensor", "torch.IntStorage",
        "torch.IntTensor", "torch.LongStorage", "torch.LongTensor", "torch.QInt32Storage", "torch.QInt8Storage",
        "torch.QUInt2x4Storage", "torch.QUInt4x2Storage", "torch.QUInt8Storage", "torch.ShortStorage",
        "torch.ShortTensor", "torch.Size", "torch.Tensor", "torch._tensor._rebuild_from_type_v2",
        "torch._utils._rebuild_device_tensor_from_cpu_tensor", "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_meta_tensor_no_storage", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state", "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_wrapper_subclass", "torch.bcomplex32",
        "torch.bfloat16", "torch.bits16", "torch.bits1x8", "torch.bits2x4", "torch.bits4x2", "torch.bits8",
        "torch.bool", "torch.complex128", "torch.complex32", "torch.complex64", "torch.cuda.BFloat16Storage",
        "torch.cuda.BFloat16Tensor", "torch.cuda.BoolStorage", "torch.cuda.BoolTensor", "torch.cuda.ByteStorage",
        "torch.cuda.ByteTensor", "torch.cuda.CharStorage", "torch.cuda.CharTensor", "torch.cuda.ComplexDoubleStorage",
        "torch.cuda.ComplexFloatStorage", "torch.cuda.DoubleStorage", "torch.cuda.DoubleTensor",
        "torch.cuda.FloatStorage", "torch.cuda.FloatTensor", "torch.cuda.HalfStorage", "torch.cuda.HalfTensor",
        "torch.cuda.IntStorage", "torch.cuda.IntTensor", "torch.cuda.LongStorage", "torch.cuda.LongTensor",
        "torch.cuda.ShortStorage", "torch.cuda.ShortTensor", "torch.cuda.sparse.BFloat16Tensor",
        "torch.cuda.sparse.ByteTensor", "torch.cuda.sparse.CharTensor", "torch.cuda.sparse.DoubleTensor",
        "torch.cuda.sparse.FloatTensor", "torch.cuda.sparse.HalfTensor", "torch.cuda.sparse.IntTensor",
        "torch.cuda.sparse.LongTensor", "torch.cuda.sparse.ShortTensor", "torch.device", "torch.float16",
        "torch.float32", "torch.float4_e2m1fn_x2", "torch.float64", "torch.float8_e4m3fn", "torch.float8_e4m3fnuz",
        "torch.float8_e5m2", "torch.float8_e5m2fnuz", "torch.float8_e8m0fnu", "torch.int1", "torch.int16",
        "torch.int2", "torch.int3", "torch.int32", "torch.int4", "torch.int5", "torch.int6", "torch.int64",
        "torch.int7", "torch.int8", "torch.nn.parameter.Parameter", "torch.per_channel_affine",
        "torch.per_channel_affine_float_qparams", "torch.per_channel_symmetric", "torch.per_tensor_affine",
        "torch.per_tensor_symmetric", "torch.qint32", "torch.qint8", "torch.quint2x4", "torch.quint4x2",
        "torch.quint8", "torch.serialization._get_layout", "torch.sparse.BFloat16Tensor", "torch.sparse.ByteTensor",
        "torch.sparse.CharTensor", "torch.sparse.DoubleTensor", "torch.sparse.FloatTensor", "torch.sparse.HalfTensor",
        "torch.sparse.IntTensor", "torch.sparse.LongTensor", "torch.sparse.ShortTensor", "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage", "torch.uint1", "torch.uint16", "torch.uint2", "torch.uint3", "torch.uint32",
        "torch.uint4", "torch.uint5", "torch.uint6", "torch.uint64", "torch.uint7", "torch.uint8",
    ]

    static func verdict(module: String, name: String) -> PickleSymbol.Verdict {
        if SymbolPolicy.isHostile(module: module, name: name) { return .hostile }
        let root = SymbolPolicy.python2Modules[module] ?? module
        return torchAllowed.contains(root + "." + name) ? .allowed : .foreign
    }

    /// One occurrence of a symbol, as the unpickler met it.
    struct Occurrence {
        var module: String
        var name: String
        var record: String
        var offset: Int
    }

    /// The listed symbols: one per distinct name, in order of first appearance, each with where
    /// it is used in `roots` (the unpickled values, labelled) or in `hidden` (symbols found in a
    /// tensor's hooks, metadata or state, which the tensor itself drops).
    static func report(_ occurrences: [Occurrence], roots: [(label: String, value: PickleValue)],
                       hidden: [String: String]) -> [PickleSymbol] {
        var order: [String] = []
        var first: [String: PickleSymbol] = [:]
        for o in occurrences {
            let full = o.module + "." + o.name
            if first[full] != nil {
                first[full]?.count += 1
                continue
            }
            guard order.count < PickleSymbol.maxSymbols else { continue }
            order.append(full)
            first[full] = PickleSymbol(name: String(decoding: full.utf8.prefix(PickleSymbol.maxNameBytes), as: UTF8.self),
                                       offset: o.offset, record: o.record,
                                       verdict: verdict(module: o.module, name: o.name), usedAt: "constructor", count: 1)
        }
        let places = locate(Set(order), in: roots)
        return order.compactMap { full in
            guard var symbol = first[full] else { return nil }
            if let place = hidden[full] ?? places[full] { symbol.usedAt = place.isEmpty ? "<root>" : place }
            return symbol
        }
    }

    /// Nodes one `locate` walk visits: containers are visited once each however often shared.
    static let maxVisits = 1_000_000

    /// The first key path at which each of `names` appears (as a symbol value or as the class
    /// of an inert object), by an iterative walk that visits each container once.
    static func locate(_ names: Set<String>, in roots: [(label: String, value: PickleValue)]) -> [String: String] {
        var found: [String: String] = [:]
        guard !names.isEmpty else { return found }
        // Paths are parent links, built into text only for a hit.
        var parents: [(parent: Int, component: String)] = []
        var seen = Set<ObjectIdentifier>()
        var work: [(value: PickleValue, node: Int)] = []
        for root in roots.reversed() {
            parents.append((-1, root.label))
            work.append((root.value, parents.count - 1))
        }
        func path(_ node: Int) -> String {
            var parts: [String] = []
            var n = node
            while n >= 0, parts.count < 32 {
                parts.append(parents[n].component)
                n = parents[n].parent
            }
            if n >= 0 { parts.append("...") }
            return parts.reversed().filter { !$0.isEmpty }.joined(separator: ".")
        }
        func note(_ full: String, _ node: Int) {
            if names.contains(full), found[full] == nil { found[full] = path(node) }
        }
        func child(_ value: PickleValue, _ parent: Int, _ component: String) {
            parents.append((parent, component))
            work.append((value, parents.count - 1))
        }
        func component(_ key: PickleValue) -> String {
            switch key {
            case .string(let s): String(decoding: s.utf8.prefix(200), as: UTF8.self)
            case .int(let i): String(i)
            default: "<\(key.kindName)>"
            }
        }
        var visits = 0
        while visits < maxVisits, found.count < names.count, let item = work.popLast() {
            let (value, node) = item
            visits += 1
            switch value {
            case .global(let module, let name):
                note(module + "." + name, node)
            case .tuple(let list), .list(let list), .set(let list):
                guard seen.insert(ObjectIdentifier(list)).inserted else { continue }
                for (i, item) in list.items.enumerated().reversed() { child(item, node, String(i)) }
            case .dict(let dict):
                guard seen.insert(ObjectIdentifier(dict)).inserted else { continue }
                if let state = dict.state { child(state, node, "__state__") }
                for (key, item) in dict.entries.reversed() {
                    child(item, node, component(key))
                    if case .global = key { child(key, node, "<key>") }
                }
            case .object(let object):
                guard seen.insert(ObjectIdentifier(object)).inserted else { continue }
                note(object.qualifiedName, node)
                if let state = object.state { child(state, node, "") }
                for (i, item) in object.arguments.enumerated().reversed() { child(item, node, "__args__.\(i)") }
            default:
                continue
            }
        }
        return found
    }
}
