import Foundation

/// A data-only pickle VM for protocols 0-5. It never calls anything: GLOBAL yields a symbol,
/// and REDUCE / NEWOBJ / BUILD construct a value only for the allow-list in `reduce(_:_:)`;
/// every other class becomes an inert `PickleObject`. A symbol from a hostile namespace
/// refuses the whole file (see `SymbolPolicy`).
///
/// Opcode semantics follow CPython's `Lib/pickle.py` (`_Unpickler.load_*`).
struct Unpickler {
    enum Opcode: UInt8 {
        case mark = 0x28            // (
        case stop = 0x2E            // .
        case pop = 0x30             // 0
        case popMark = 0x31         // 1
        case dup = 0x32             // 2
        case float = 0x46           // F
        case int = 0x49             // I
        case binInt = 0x4A          // J
        case binInt1 = 0x4B         // K
        case long = 0x4C            // L
        case binInt2 = 0x4D         // M
        case none = 0x4E            // N
        case persID = 0x50          // P
        case binPersID = 0x51       // Q
        case reduce = 0x52          // R
        case string = 0x53          // S
        case binString = 0x54       // T
        case shortBinString = 0x55  // U
        case unicode = 0x56         // V
        case binUnicode = 0x58      // X
        case append = 0x61          // a
        case build = 0x62           // b
        case global = 0x63          // c
        case dict = 0x64            // d
        case emptyDict = 0x7D       // }
        case appends = 0x65         // e
        case get = 0x67             // g
        case binGet = 0x68          // h
        case inst = 0x69            // i
        case longBinGet = 0x6A      // j
        case list = 0x6C            // l
        case emptyList = 0x5D       // ]
        case obj = 0x6F             // o
        case put = 0x70             // p
        case binPut = 0x71          // q
        case longBinPut = 0x72      // r
        case setItem = 0x73         // s
        case tuple = 0x74           // t
        case emptyTuple = 0x29      // )
        case setItems = 0x75        // u
        case binFloat = 0x47        // G
        // protocol 2
        case proto = 0x80
        case newObj = 0x81
        case ext1 = 0x82
        case ext2 = 0x83
        case ext4 = 0x84
        case tuple1 = 0x85
        case tuple2 = 0x86
        case tuple3 = 0x87
        case newTrue = 0x88
        case newFalse = 0x89
        case long1 = 0x8A
        case long4 = 0x8B
        // protocol 3
        case binBytes = 0x42        // B
        case shortBinBytes = 0x43   // C
        // protocol 4
        case shortBinUnicode = 0x8C
        case binUnicode8 = 0x8D
        case binBytes8 = 0x8E
        case emptySet = 0x8F
        case addItems = 0x90
        case frozenSet = 0x91
        case newObjEx = 0x92
        case stackGlobal = 0x93
        case memoize = 0x94
        case frame = 0x95
        // protocol 5
        case byteArray8 = 0x96
        case nextBuffer = 0x97
        case readonlyBuffer = 0x98
    }

    /// Bounds on what a file can make the VM hold, far above any real checkpoint.
    static let maxStack = 10_000_000
    static let maxMemo = 10_000_000
    static let maxMarks = 100_000
    /// Values and bytes the allow-listed constructors may copy, per byte of pickle (plus a
    /// floor): a small file cannot make zoo copy one big list a million times.
    static let copiesPerByte = 16
    static let copyFloor = 1 << 22
    /// Values the VM may create (every push), per byte of the file the pickle came from (plus a
    /// floor): a deflated `data.pkl` that inflates a thousandfold into tiny objects stops here,
    /// while a stored pickle (one value needs at least one opcode byte) never reaches it.
    static let valuesPerFileByte = 4
    static let valueFloor = 1 << 20

    /// Turns a persistent id (the tuple or string BINPERSID pops) into a value, usually a storage.
    typealias PersistentLoad = (PickleValue) throws -> PickleValue

    private let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    /// Where the pickle sits, for messages: `"archive/data.pkl"`, `"main pickle"`.
    private let record: String
    /// Added to positions in messages, when the pickle is a slice of a larger file.
    private let baseOffset: Int
    private let persistentLoad: PersistentLoad
    let arena: PickleArena

    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var opcodeOffset = 0
    /// What `reduce` may still copy, and dict keys may still hash; see `copiesPerByte`.
    private var copyBudget: Int
    /// Values that may still be pushed; see `valuesPerFileByte`.
    private var valueBudget: Int
    private let fileBytes: Int

    /// - Parameters:
    ///   - bytes: memory that outlives the unpickler.
    ///   - start: index of the first opcode.
    ///   - record: names the pickle in error messages.
    ///   - baseOffset: file offset of `bytes[0]`, so errors give offsets in the file.
    ///   - fileBytes: bytes of the file the pickle occupies (its compressed size when deflated;
    ///     `bytes.count` when nil), which sets the value budget.
    init(bytes: UnsafeRawBufferPointer, start: Int = 0, record: String, baseOffset: Int = 0, fileBytes: Int? = nil,
         arena: PickleArena, persistentLoad: @escaping PersistentLoad) {
        self.bytes = bytes
        self.position = start
        self.record = record
        self.baseOffset = baseOffset
        self.arena = arena
        self.persistentLoad = persistentLoad
        self.copyBudget = Self.copyFloor + Self.copiesPerByte * bytes.count
        let fileBytes = min(fileBytes ?? bytes.count, bytes.count)
        self.fileBytes = fileBytes
        self.valueBudget = Self.valueFloor + Self.valuesPerFileByte * fileBytes
    }

    // MARK: Errors

    private var location: String { "\(record) byte \(baseOffset + opcodeOffset)" }

    private func corrupt(_ message: String) -> CheckpointError {
        CheckpointError(.corrupt, path: "", at: location, message)
    }

    private func unsupported(_ message: String) -> CheckpointError {
        CheckpointError(.unsupported, path: "", at: location, message)
    }

    // MARK: Reading bytes

    private mutating func take(_ count: Int, for what: String) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= bytes.count - position else {
            throw corrupt("\(what) of \(count) bytes runs past the end of the pickle (\(bytes.count - position) left)")
        }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position ..< position + count])
        position += count
        return slice
    }

    private mutating func byte() throws -> UInt8 { try take(1, for: "argument")[0] }

    private mutating func littleEndian(_ count: Int) throws -> UInt64 {
        let raw = try take(count, for: "argument")
        var value: UInt64 = 0
        for i in (0 ..< count).reversed() { value = value << 8 | UInt64(raw[i]) }
        return value
    }

    /// A length field, checked against the bytes that are left.
    private mutating func length(_ width: Int) throws -> Int {
        let raw = try littleEndian(width)
        guard raw <= UInt64(bytes.count - position) else {
            throw corrupt("length \(raw) exceeds the \(bytes.count - position) bytes left in the pickle")
        }
        return Int(raw)
    }

    /// A text argument of protocol 0 opcodes, up to (not including) the newline.
    private mutating func line() throws -> String {
        guard let newline = bytes[position...].firstIndex(of: 0x0A) else {
            throw corrupt("text argument is not terminated by a newline")
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position ..< newline]), as: UTF8.self)
        position = newline + 1
        return text
    }

    // MARK: The stack

    private mutating func push(_ value: PickleValue) throws {
        guard stack.count < Self.maxStack else { throw corrupt("stack exceeds \(Self.maxStack) items") }
        valueBudget -= 1
        guard valueBudget >= 0 else {
            throw corrupt("the pickle creates more than \(Self.valueFloor + Self.valuesPerFileByte * fileBytes) values from \(fileBytes) bytes of file (a decompression bomb?)")
        }
        stack.append(value)
    }

    private mutating func pop() throws -> PickleValue {
        guard let top = stack.popLast(), stack.count >= (marks.last ?? 0) else {
            throw corrupt("pop from an empty stack")
        }
        return top
    }

    private mutating func top() throws -> PickleValue {
        guard let top = stack.last, stack.count > (marks.last ?? 0) else {
            throw corrupt("the stack is empty")
        }
        return top
    }

    /// Everything pushed since the last MARK, which is removed.
    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw corrupt("no MARK on the stack") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func memoPut(_ index: Int) throws {
        guard index >= 0 else { throw corrupt("negative memo index \(index)") }
        guard memo.count < Self.maxMemo || memo[index] != nil else {
            throw corrupt("memo exceeds \(Self.maxMemo) entries")
        }
        memo[index] = try top()
    }

    private mutating func memoGet(_ index: Int) throws {
        guard let value = memo[index] else { throw corrupt("memo index \(index) was never stored") }
        try push(value)
    }

    private func integerArgument(_ text: String, opcode: String) throws -> Int {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
            throw corrupt("\(opcode) argument '\(text.prefix(40))' is not an integer")
        }
        return value
    }

    // MARK: The loop

    /// Runs until STOP and returns the value on top of the stack. `position` is left just after STOP.
    mutating func load() throws -> PickleValue {
        while true {
            opcodeOffset = position
            let code = try take(1, for: "opcode")[0]
            guard let op = Opcode(rawValue: code) else {
                throw corrupt("unknown opcode 0x\(String(code, radix: 16))")
            }
            switch op {
            case .stop:
                let result = try pop()
                return result
            case .proto:
                let version = try byte()
                guard version <= 5 else { throw unsupported("pickle protocol \(version) (zoo reads 0-5)") }
            case .frame:
                _ = try littleEndian(8)  // framing only groups opcodes; the bytes are read in place.
            case .mark:
                guard marks.count < Self.maxMarks else { throw corrupt("more than \(Self.maxMarks) open MARKs") }
                marks.append(stack.count)
            case .pop:
                if stack.count == (marks.last ?? -1) { marks.removeLast() } else { _ = try pop() }
            case .popMark:
                _ = try popMark()
            case .dup:
                try push(try top())
            case .none:
                try push(.none)
            case .newTrue:
                try push(.bool(true))
            case .newFalse:
                try push(.bool(false))
            case .binInt:
                try push(.int(Int(Int32(bitPattern: UInt32(try littleEndian(4))))))
            case .binInt1:
                try push(.int(Int(try littleEndian(1))))
            case .binInt2:
                try push(.int(Int(try littleEndian(2))))
            case .long1:
                try push(Self.integer(littleEndian: try take(try length(1), for: "LONG1")))
            case .long4:
                let raw = Int32(bitPattern: UInt32(try littleEndian(4)))
                guard raw >= 0 else { throw corrupt("LONG4 with negative length \(raw)") }
                let count = Int(raw)
                try push(Self.integer(littleEndian: try take(count, for: "LONG4")))
            case .int:
                let text = try line()
                switch text {
                case "00": try push(.bool(false))
                case "01": try push(.bool(true))
                default: try push(.int(try integerArgument(text, opcode: "INT")))
                }
            case .long:
                var text = try line()
                if text.hasSuffix("L") { text.removeLast() }
                try push(.int(try integerArgument(text, opcode: "LONG")))
            case .float:
                let text = try line()
                guard let value = Double(text) else { throw corrupt("FLOAT argument '\(text.prefix(40))' is not a number") }
                try push(.float(value))
            case .binFloat:
                try push(.float(Double(bitPattern: try littleEndian(8).byteSwapped)))  // BINFLOAT is big-endian
            case .binUnicode:
                try push(try unicode(length: try length(4)))
            case .shortBinUnicode:
                try push(try unicode(length: try length(1)))
            case .binUnicode8:
                try push(try unicode(length: try length(8)))
            case .unicode:
                try push(.string(Self.rawUnicodeEscape(try line())))
            case .shortBinString:
                try push(Self.legacyString(Array(try take(try length(1), for: "SHORT_BINSTRING"))))
            case .binString:
                try push(Self.legacyString(Array(try take(try length(4), for: "BINSTRING"))))
            case .string:
                guard let decoded = Self.unquote(try line()) else { throw corrupt("STRING argument is not a quoted string") }
                try push(Self.legacyString(decoded))
            case .shortBinBytes:
                try push(.bytes(Array(try take(try length(1), for: "SHORT_BINBYTES"))))
            case .binBytes:
                try push(.bytes(Array(try take(try length(4), for: "BINBYTES"))))
            case .binBytes8, .byteArray8:
                try push(.bytes(Array(try take(try length(8), for: "BINBYTES8"))))
            case .nextBuffer:
                throw unsupported("NEXT_BUFFER: out-of-band pickle buffers are not part of a checkpoint")
            case .readonlyBuffer:
                _ = try top()
            case .emptyTuple:
                try push(.tuple(arena.list()))
            case .tuple1, .tuple2, .tuple3:
                let count = Int(op.rawValue - Opcode.tuple1.rawValue) + 1
                guard stack.count - (marks.last ?? 0) >= count else { throw corrupt("TUPLE\(count) needs \(count) items on the stack") }
                let items = Array(stack.suffix(count))
                stack.removeLast(count)
                try push(.tuple(arena.list(items)))
            case .tuple:
                try push(.tuple(arena.list(try popMark())))
            case .emptyList:
                try push(.list(arena.list()))
            case .list:
                try push(.list(arena.list(try popMark())))
            case .append:
                let value = try pop()
                try appendTo(try top(), [value])
            case .appends:
                let values = try popMark()
                try appendTo(try top(), values)
            case .emptyDict:
                try push(.dict(arena.dict()))
            case .dict:
                let items = try popMark()
                let dict = arena.dict()
                try setItems(dict, items)
                try push(.dict(dict))
            case .setItem:
                let value = try pop()
                let key = try pop()
                guard case .dict(let dict) = try top() else { throw corrupt("SETITEM on \(try top().kindName), expected a dict") }
                try charge(Self.hashCost(key))
                dict.set(key, value)
            case .setItems:
                let items = try popMark()
                guard case .dict(let dict) = try top() else { throw corrupt("SETITEMS on \(try top().kindName), expected a dict") }
                try setItems(dict, items)
            case .emptySet:
                try push(.set(arena.list()))
            case .addItems:
                let items = try popMark()
                guard case .set(let set) = try top() else { throw corrupt("ADDITEMS on \(try top().kindName), expected a set") }
                set.items.append(contentsOf: items)
            case .frozenSet:
                try push(.set(arena.list(try popMark())))
            case .put:
                try memoPut(try integerArgument(try line(), opcode: "PUT"))
            case .binPut:
                try memoPut(Int(try littleEndian(1)))
            case .longBinPut:
                try memoPut(Int(try littleEndian(4)))
            case .memoize:
                try memoPut(memo.count)
            case .get:
                try memoGet(try integerArgument(try line(), opcode: "GET"))
            case .binGet:
                try memoGet(Int(try littleEndian(1)))
            case .longBinGet:
                try memoGet(Int(try littleEndian(4)))
            case .global:
                let module = try line()
                let name = try line()
                try push(try symbol(module, name))
            case .stackGlobal:
                let name = try pop()
                let module = try pop()
                guard let m = module.string, let n = name.string else {
                    throw corrupt("STACK_GLOBAL needs two strings, found \(module.kindName) and \(name.kindName)")
                }
                try push(try symbol(m, n))
            case .ext1, .ext2, .ext4:
                throw unsupported("EXT opcodes refer to Python's copyreg extension registry, which a checkpoint cannot rely on")
            case .reduce:
                let args = try pop()
                let callable = try pop()
                guard let arguments = args.elements else { throw corrupt("REDUCE arguments are a \(args.kindName), expected a tuple") }
                try push(try reduce(callable, arguments))
            case .newObj:
                let args = try pop()
                let cls = try pop()
                guard let arguments = args.elements else { throw corrupt("NEWOBJ arguments are a \(args.kindName), expected a tuple") }
                try push(try reduce(cls, arguments))
            case .newObjEx:
                let kwargs = try pop()
                let args = try pop()
                let cls = try pop()
                guard let arguments = args.elements else { throw corrupt("NEWOBJ_EX arguments are a \(args.kindName), expected a tuple") }
                try push(try reduce(cls, arguments + [kwargs]))
            case .inst:
                let module = try line()
                let name = try line()
                let cls = try symbol(module, name)
                try push(try reduce(cls, try popMark()))
            case .obj:
                var items = try popMark()
                guard !items.isEmpty else { throw corrupt("OBJ needs a class after MARK") }
                let cls = items.removeFirst()
                try push(try reduce(cls, items))
            case .build:
                let state = try pop()
                try build(try top(), state)
            case .persID:
                try push(try persistentLoad(.string(try line())))
            case .binPersID:
                try push(try persistentLoad(try pop()))
            }
        }
    }

    // MARK: Opcode families

    private mutating func unicode(length count: Int) throws -> PickleValue {
        let raw = try take(count, for: "string")
        guard let text = String(validating: raw, as: UTF8.self) else { throw corrupt("string is not valid UTF-8") }
        return .string(text)
    }

    private mutating func appendTo(_ target: PickleValue, _ values: [PickleValue]) throws {
        switch target {
        case .list(let list): list.items.append(contentsOf: values)
        case .object(let object): object.arguments.append(contentsOf: values)  // list subclasses
        default: throw corrupt("APPEND to \(target.kindName), expected a list")
        }
    }

    private mutating func setItems(_ dict: PickleDict, _ items: [PickleValue]) throws {
        guard items.count % 2 == 0 else { throw corrupt("SETITEMS with an odd number (\(items.count)) of keys and values") }
        for i in stride(from: 0, to: items.count, by: 2) {
            try charge(Self.hashCost(items[i]))
            dict.set(items[i], items[i + 1])
        }
    }

    /// What inserting `key` into a dict costs in hashing: its bytes, so that one long key
    /// re-inserted through the memo is paid for each time (charged against the copy budget).
    static func hashCost(_ key: PickleValue) -> Int {
        switch key {
        case .string(let s): s.utf8.count / 8
        case .bytes(let b): b.count / 8
        case .bigInt(let b): b.count / 8
        default: 0
        }
    }

    private mutating func symbol(_ module: String, _ name: String) throws -> PickleValue {
        // Checking and listing a name costs its length: STACK_GLOBAL can name one long memoised
        // string a million times.
        try charge((module.utf8.count + name.utf8.count) / 8)
        arena.symbols.append(SymbolVerdicts.Occurrence(module: module, name: name, record: record, offset: baseOffset + opcodeOffset))
        if SymbolPolicy.isHostile(module: module, name: name) {
            throw CheckpointError(.security, path: "", at: location,
                "refused: the pickle references \(module).\(name), which only a malicious file would; nothing was executed")
        }
        return .global(module: module, name: name)
    }

    private func build(_ target: PickleValue, _ state: PickleValue) throws {
        switch target {
        case .object(let object) where object.module == "torch" && object.arguments.isEmpty && object.tensor == nil
            && (object.name == "Tensor" || DType(storageClass: object.name.replacingOccurrences(of: "Tensor", with: "Storage")) != nil):
            object.tensor = try bareTensor(object.name, state)
        case .object(let object): object.state = state
        case .dict(let dict): dict.state = state
        case .tensor:
            // torch's weights-only BUILD calls `tensor.set_(*state)` (a Parameter's __setstate__
            // does the same with 4 or 5 items): the tensor would become a view of another storage.
            if let items = state.elements, items.count != 3 {
                throw unsupported("BUILD re-points a tensor at \(items.first?.kindName ?? "nothing") (torch's tensor.set_): the file says two different things about one tensor; refused")
            }  // else `_rebuild_from_type_v2` state or (requires_grad, _, hooks): attributes, not data.
        default:
            throw corrupt("BUILD on \(target.kindName), which has no state to set")
        }
    }

    /// Symbols in the parts of a rebuild call that the tensor drops (backward hooks, Python
    /// metadata, subclass state) are recorded with where they sat, so that `inspect` shows them.
    private mutating func noteHidden(_ function: String, _ args: [PickleValue]) throws {
        let parts: [(Int, String)] = switch function {
        case "_rebuild_tensor_v2": [(5, "backward_hooks"), (6, "metadata")]
        case "_rebuild_tensor_v3": [(5, "backward_hooks"), (7, "metadata")]
        case "_rebuild_parameter": [(2, "backward_hooks")]
        case "_rebuild_parameter_with_state": [(2, "backward_hooks"), (3, "state")]
        case "_rebuild_from_type_v2": [(3, "state")]
        default: []
        }
        for (index, label) in parts where index < args.count {
            switch args[index] {
            case .none: continue
            case .dict(let d) where d.count == 0 && d.state == nil: continue
            case .tuple(let l) where l.items.isEmpty: continue
            default: break
            }
            try charge(arena.symbols.count)
            let names = Set(arena.symbols.map { $0.module + "." + $0.name })
            for (full, place) in SymbolVerdicts.locate(names, in: [("a tensor's " + label, args[index])])
            where arena.hiddenSymbols[full] == nil {
                arena.hiddenSymbols[full] = place
            }
        }
    }

    /// `torch.FloatTensor()` then BUILD `(storage, offset, size, stride)`: how torch < 0.4 pickled
    /// a tensor, and what torch's weights-only loader still accepts (`tensor.set_(*state)`). The
    /// storage must have the class's dtype (`torch.Tensor` is float32), as `set_` requires.
    private func bareTensor(_ className: String, _ state: PickleValue) throws -> TensorRecord {
        let dtype = className == "Tensor" ? DType.float32 : DType(storageClass: className.replacingOccurrences(of: "Tensor", with: "Storage"))!
        guard let items = state.elements, items.count == 4, case .storage(let storage) = items[0] else {
            throw unsupported("BUILD of torch.\(className) with a \(state.kindName) state, expected (storage, offset, size, stride)")
        }
        guard storage.dtype == dtype else {
            throw unsupported("torch.\(className) set to a \(storage.dtype.rawValue) storage (torch refuses this too)")
        }
        let value = try TensorRebuild.rebuild("_rebuild_tensor", items, corrupt: corrupt, unsupported: unsupported)
        return value.tensor!  // `_rebuild_tensor` makes a tensor or throws
    }

    /// Charges `count` copied values or bytes against the copy budget.
    private mutating func charge(_ count: Int) throws {
        copyBudget -= count
        guard copyBudget >= 0 else {
            throw corrupt("the pickle makes zoo copy more than \(Self.copiesPerByte) values (or hash more than as many bytes) per byte of its \(bytes.count) bytes (repeated constructor calls on one large list, or one long key set again and again?)")
        }
    }

    /// REDUCE, NEWOBJ, INST and OBJ: build a value for the allow-list, an inert object otherwise.
    private mutating func reduce(_ callable: PickleValue, _ args: [PickleValue]) throws -> PickleValue {
        guard case .global(let module, let name) = callable else {
            throw corrupt("call of a \(callable.kindName); only symbols can be called")
        }
        try charge(1 + args.count)
        switch args.first {
        case .tuple(let list)?, .list(let list)?, .set(let list)?: try charge(list.items.count)
        case .dict(let dict)?: try charge(dict.count)
        case .string(let text)?: try charge(text.utf8.count)
        case .bytes(let raw)?: try charge(raw.count)
        default: break
        }
        switch (module, name) {
        case ("collections", "OrderedDict"), ("builtins", "dict"), ("__builtin__", "dict"):
            let dict = arena.dict()
            if let pairs = args.first?.elements {
                for pair in pairs {
                    guard let kv = pair.elements, kv.count == 2 else { throw corrupt("\(name) item is not a (key, value) pair") }
                    try charge(Self.hashCost(kv[0]))
                    dict.set(kv[0], kv[1])
                }
            } else if case .dict(let source)? = args.first {
                for (k, v) in source.entries {
                    try charge(Self.hashCost(k))
                    dict.set(k, v)
                }
            }
            return .dict(dict)
        case ("torch", "Size"), ("builtins", "tuple"), ("__builtin__", "tuple"):
            return .tuple(arena.list(args.first?.elements ?? []))
        case ("builtins", "list"), ("__builtin__", "list"):
            return .list(arena.list(args.first?.elements ?? []))
        case ("builtins", "set"), ("builtins", "frozenset"), ("__builtin__", "set"), ("__builtin__", "frozenset"):
            return .set(arena.list(args.first?.elements ?? []))
        case ("builtins", "bytearray"), ("builtins", "bytes"), ("__builtin__", "bytearray"):
            switch args.first {
            case .bytes(let b)?: return .bytes(b)
            case nil: return .bytes([])
            case .list(let l)?: return .bytes(l.items.compactMap { $0.int.flatMap(UInt8.init(exactly:)) })
            default: break
            }
        case ("_codecs", "encode"):
            // Protocol 2 pickles bytes as _codecs.encode(text, 'latin1').
            if case .string(let text)? = args.first {
                let encoding = args.count > 1 ? args[1].string ?? "utf-8" : "utf-8"
                if encoding == "latin1" || encoding == "latin-1" {
                    return .bytes(text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
                }
                return .bytes(Array(text.utf8))
            }
        case ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"):
            // copyreg._reconstructor(cls, base, state): a plain object of class `cls`.
            if case .global(let m, let n)? = args.first {
                return .object(arena.object(module: m, name: n, arguments: Array(args.dropFirst())))
            }
        case ("torch._utils", _) where name.hasPrefix("_rebuild"), ("torch._tensor", "_rebuild_from_type_v2"):
            try noteHidden(name, args)
            return try TensorRebuild.rebuild(name, args, corrupt: corrupt, unsupported: unsupported)
        default:
            break
        }
        return .object(arena.object(module: module, name: name, arguments: args))
    }

    // MARK: Value decoding helpers

    /// A two's-complement little-endian integer; `.bigInt` when it does not fit `Int`.
    static func integer(littleEndian raw: UnsafeRawBufferPointer) -> PickleValue {
        guard !raw.isEmpty else { return .int(0) }
        if raw.count <= 8 {
            var value: UInt64 = 0
            for i in (0 ..< raw.count).reversed() { value = value << 8 | UInt64(raw[i]) }
            let shift = UInt64(64 - raw.count * 8)
            // Sign-extend from the top bit of the last byte.
            return .int(Int(Int64(bitPattern: value << shift) >> Int64(shift)))
        }
        return .bigInt(Array(raw))
    }

    /// Python 2 `str` in a checkpoint: torch loads with encoding='utf-8', bytes when that fails.
    static func legacyString(_ raw: [UInt8]) -> PickleValue {
        if let text = String(validating: raw, as: UTF8.self) { return .string(text) }
        return .bytes(raw)
    }

    /// The argument of protocol-0 STRING: a Python repr such as `'a\nb'`.
    static func unquote(_ text: String) -> [UInt8]? {
        let raw = Array(text.utf8)
        guard raw.count >= 2, let q = raw.first, q == raw.last, q == 0x27 || q == 0x22 else { return nil }
        var out: [UInt8] = []
        var i = 1
        while i < raw.count - 1 {
            let c = raw[i]
            i += 1
            guard c == 0x5C, i < raw.count - 1 else { out.append(c); continue }
            let e = raw[i]
            i += 1
            switch e {
            case 0x6E: out.append(0x0A)  // \n
            case 0x74: out.append(0x09)  // \t
            case 0x72: out.append(0x0D)  // \r
            case 0x78:                   // \xhh
                guard i + 1 < raw.count, let v = UInt8(String(decoding: raw[i ... i + 1], as: UTF8.self), radix: 16) else { return nil }
                out.append(v)
                i += 2
            case 0x30 ... 0x37:          // \ooo
                var v = Int(e - 0x30)
                var n = 1
                while n < 3, i < raw.count - 1, (0x30 ... 0x37).contains(raw[i]) {
                    v = v * 8 + Int(raw[i] - 0x30)
                    i += 1
                    n += 1
                }
                out.append(UInt8(truncatingIfNeeded: v))
            default: out.append(e)       // \\ \' \"
            }
        }
        return out
    }

    /// Python's raw-unicode-escape: text with `\uXXXX` / `\UXXXXXXXX` escapes.
    static func rawUnicodeEscape(_ text: String) -> String {
        guard text.contains("\\u") || text.contains("\\U") else { return text }
        var out = String.UnicodeScalarView()
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count {
            if scalars[i] == "\\", i + 1 < scalars.count, scalars[i + 1] == "u" || scalars[i + 1] == "U" {
                let width = scalars[i + 1] == "u" ? 4 : 8
                if i + 2 + width <= scalars.count,
                   let v = UInt32(String(String.UnicodeScalarView(scalars[(i + 2) ..< (i + 2 + width)])), radix: 16),
                   let s = Unicode.Scalar(v) {
                    out.append(s)
                    i += 2 + width
                    continue
                }
            }
            out.append(scalars[i])
            i += 1
        }
        return String(out)
    }
}
