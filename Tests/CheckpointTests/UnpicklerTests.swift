import Foundation
import Testing
@testable import Checkpoint

/// Runs the restricted unpickler on hand-assembled bytes. Persistent ids of the form
/// `('storage', torch.<X>Storage, key, location, numel)` become storages, as in a zip archive.
func unpickle(_ bytes: [UInt8]) throws -> String {
    let arena = PickleArena()
    return try bytes.withUnsafeBytes { raw in
        var unpickler = Unpickler(bytes: raw, record: "test.pkl", arena: arena) { pid in
            if let f = pid.elements, f.count == 5 {
                return .storage(try storageReference(f[1], key: f[2], location: f[3], numel: f[4]) {
                    CheckpointError(.corrupt, path: "", $0)
                })
            }
            return .string("pid:" + repr(pid))
        }
        return repr(try unpickler.load())
    }
}

/// A Python-like rendering of a value, so tests read as `pickle.loads` results.
func repr(_ value: PickleValue, depth: Int = 0) -> String {
    guard depth < 20 else { return "..." }
    func list(_ items: [PickleValue]) -> String { items.map { repr($0, depth: depth + 1) }.joined(separator: ", ") }
    switch value {
    case .none: return "None"
    case .bool(let b): return b ? "True" : "False"
    case .int(let i): return String(i)
    case .bigInt(let raw): return "0x" + raw.reversed().map { String(format2: $0) }.joined()
    case .float(let d): return String(d)
    case .string(let s): return "'\(s)'"
    case .bytes(let b): return "b'\(b.hex)'"
    case .tuple(let t): return t.items.count == 1 ? "(\(list(t.items)),)" : "(\(list(t.items)))"
    case .list(let l): return "[\(list(l.items))]"
    case .set(let s): return "set(\(list(s.items)))"
    case .dict(let d):
        let body = d.entries.map { "\(repr($0.key, depth: depth + 1)): \(repr($0.value, depth: depth + 1))" }.joined(separator: ", ")
        return "{\(body)}" + (d.state.map { "+" + repr($0, depth: depth + 1) } ?? "")
    case .global(let m, let n): return "\(m).\(n)"
    case .object(let o):
        return "\(o.qualifiedName)(\(list(o.arguments)))" + (o.state.map { "+" + repr($0, depth: depth + 1) } ?? "")
    case .tensor(let t): return "tensor(\(t.dtype.rawValue), \(t.shape), \(t.strides), \(t.storageOffset), \(t.storage.key))"
    case .storage(let s): return "storage(\(s.key), \(s.dtype.rawValue), \(s.byteCount))"
    }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Every opcode of protocols 0-5, each against the value CPython's `pickle.loads` gives.
@Suite struct UnpicklerOpcodeTests {
    static let cases: [(String, [UInt8], String)] = [
        ("PROTO NONE STOP", [0x80, 2, 0x4E, 0x2E], "None"),
        ("NEWTRUE", [0x80, 2, 0x88, 0x2E], "True"),
        ("NEWFALSE", [0x80, 2, 0x89, 0x2E], "False"),
        ("BININT negative", [0x4A, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E], "-1"),
        ("BININT1 is unsigned", [0x4B, 0xFF, 0x2E], "255"),
        ("BININT2 is unsigned", [0x4D, 0xFF, 0xFF, 0x2E], "65535"),
        ("LONG1 negative", [0x8A, 1, 0xFF, 0x2E], "-1"),
        ("LONG1 zero length", [0x8A, 0, 0x2E], "0"),
        ("LONG1 8 bytes", [0x8A, 8, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x2E], String(Int.min)),
        ("LONG1 magic number", [0x8A, 10] + CheckpointFormat.legacyMagic + [0x2E], "0x1950a86a20f9469cfc6c"),
        ("LONG4", [0x8B, 2, 0, 0, 0, 0x00, 0x01, 0x2E], "256"),
        ("INT", bytes("I42\n."), "42"),
        ("INT true", bytes("I01\n."), "True"),
        ("INT false", bytes("I00\n."), "False"),
        ("LONG", bytes("L-123L\n."), "-123"),
        ("FLOAT", bytes("F1.5\n."), "1.5"),
        ("BINFLOAT is big-endian", [0x47, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0, 0x2E], "1.5"),
        ("BINUNICODE", [0x58, 3, 0, 0, 0] + bytes("abc."), "'abc'"),
        ("SHORT_BINUNICODE", [0x8C, 2] + bytes("é."), "'é'"),
        ("BINUNICODE8", [0x8D, 1, 0, 0, 0, 0, 0, 0, 0] + bytes("z."), "'z'"),
        ("UNICODE raw-unicode-escape", bytes("Vcaf\\u00e9\n."), "'café'"),
        ("SHORT_BINSTRING", [0x55, 2] + bytes("hi."), "'hi'"),
        ("BINSTRING", [0x54, 2, 0, 0, 0] + bytes("hi."), "'hi'"),
        ("BINSTRING not UTF-8 stays bytes", [0x54, 1, 0, 0, 0, 0xFF, 0x2E], "b'ff'"),
        ("STRING", bytes("S'a\\nb\\x41'\n."), "'a\nbA'"),
        ("SHORT_BINBYTES", [0x43, 2, 0xDE, 0xAD, 0x2E], "b'dead'"),
        ("BINBYTES", [0x42, 1, 0, 0, 0, 0x7F, 0x2E], "b'7f'"),
        ("BINBYTES8", [0x8E, 1, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x2E], "b'01'"),
        ("BYTEARRAY8", [0x96, 1, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x2E], "b'02'"),
        ("EMPTY_TUPLE", [0x29, 0x2E], "()"),
        ("TUPLE1", [0x4B, 1, 0x85, 0x2E], "(1,)"),
        ("TUPLE2", [0x4B, 1, 0x4B, 2, 0x86, 0x2E], "(1, 2)"),
        ("TUPLE3", [0x4B, 1, 0x4B, 2, 0x4B, 3, 0x87, 0x2E], "(1, 2, 3)"),
        ("MARK TUPLE", [0x28, 0x4B, 1, 0x4B, 2, 0x4B, 3, 0x4B, 4, 0x74, 0x2E], "(1, 2, 3, 4)"),
        ("EMPTY_LIST APPEND", [0x5D, 0x4B, 7, 0x61, 0x2E], "[7]"),
        ("APPENDS", [0x5D, 0x28, 0x4B, 1, 0x4B, 2, 0x65, 0x2E], "[1, 2]"),
        ("LIST", [0x28, 0x4B, 1, 0x4B, 2, 0x6C, 0x2E], "[1, 2]"),
        ("EMPTY_DICT SETITEM", [0x7D, 0x4B, 1, 0x4B, 2, 0x73, 0x2E], "{1: 2}"),
        ("SETITEMS", [0x7D, 0x28, 0x4B, 1, 0x4B, 2, 0x4B, 3, 0x4B, 4, 0x75, 0x2E], "{1: 2, 3: 4}"),
        ("SETITEM replaces", [0x7D, 0x4B, 1, 0x4B, 2, 0x73, 0x4B, 1, 0x4B, 3, 0x73, 0x2E], "{1: 3}"),
        ("DICT (not EMPTY_DICT)", [0x28, 0x4B, 1, 0x4B, 2, 0x64, 0x2E], "{1: 2}"),
        ("EMPTY_SET ADDITEMS", [0x8F, 0x28, 0x4B, 1, 0x90, 0x2E], "set(1)"),
        ("FROZENSET", [0x28, 0x4B, 1, 0x4B, 2, 0x91, 0x2E], "set(1, 2)"),
        ("PUT GET", bytes("K\u{05}p0\n0g0\n."), "5"),
        ("BINPUT BINGET", [0x4B, 5, 0x71, 9, 0x30, 0x68, 9, 0x2E], "5"),
        ("LONG_BINPUT LONG_BINGET", [0x4B, 5, 0x72, 0, 1, 0, 0, 0x30, 0x6A, 0, 1, 0, 0, 0x2E], "5"),
        ("MEMOIZE", [0x4B, 5, 0x94, 0x30, 0x68, 0, 0x2E], "5"),
        ("memo shares a dict filled later", [0x7D, 0x71, 0, 0x4B, 1, 0x4B, 2, 0x73, 0x30, 0x68, 0, 0x2E], "{1: 2}"),
        ("POP", [0x4B, 1, 0x4B, 2, 0x30, 0x2E], "1"),
        ("POP of an empty frame pops the mark", [0x4B, 1, 0x28, 0x30, 0x2E], "1"),
        ("POP_MARK", [0x4B, 1, 0x28, 0x4B, 2, 0x4B, 3, 0x31, 0x2E], "1"),
        ("DUP", [0x4B, 1, 0x32, 0x86, 0x2E], "(1, 1)"),
        ("FRAME", [0x80, 4, 0x95, 2, 0, 0, 0, 0, 0, 0, 0, 0x4E, 0x2E], "None"),
        ("GLOBAL is a symbol", bytes("cargparse\nNamespace\n."), "argparse.Namespace"),
        ("STACK_GLOBAL", [0x8C, 1] + bytes("m") + [0x8C, 1] + bytes("n") + [0x93, 0x2E], "m.n"),
        ("REDUCE OrderedDict", bytes("ccollections\nOrderedDict\n)R."), "{}"),
        ("REDUCE OrderedDict of pairs", bytes("ccollections\nOrderedDict\n") + [0x5D, 0x4B, 1, 0x4B, 2, 0x86, 0x61, 0x85, 0x52, 0x2E], "{1: 2}"),
        ("REDUCE unknown class is inert", bytes("cmy.mod\nThing\n") + [0x4B, 1, 0x85, 0x52, 0x2E], "my.mod.Thing(1)"),
        ("NEWOBJ BUILD", bytes("cargparse\nNamespace\n)") + [0x81, 0x7D, 0x4B, 1, 0x4B, 2, 0x73, 0x62, 0x2E], "argparse.Namespace()+{1: 2}"),
        ("NEWOBJ_EX", bytes("cm\nC\n)}") + [0x92, 0x2E], "m.C({})"),
        ("INST", [0x28, 0x4B, 1] + bytes("im\nC\n."), "m.C(1)"),
        ("OBJ", [0x28] + bytes("cm\nC\n") + [0x4B, 1, 0x6F, 0x2E], "m.C(1)"),
        ("BUILD on an OrderedDict keeps _metadata", bytes("ccollections\nOrderedDict\n)R}b."), "{}+{}"),
        ("torch.Size", bytes("ctorch\nSize\n") + [0x4B, 2, 0x4B, 3, 0x86, 0x85, 0x52, 0x2E], "(2, 3)"),
        ("builtins.set", bytes("c__builtin__\nset\n") + [0x5D, 0x4B, 1, 0x61, 0x85, 0x52, 0x2E], "set(1)"),
        ("_codecs.encode latin1", bytes("c_codecs\nencode\n") + [0x8C, 2, 0xC3, 0xBF, 0x8C, 6] + bytes("latin1") + [0x86, 0x52, 0x2E], "b'ff'"),
        ("PERSID", bytes("Pabc\n."), "'pid:'abc''"),
        ("BINPERSID", [0x4B, 3, 0x51, 0x2E], "'pid:3'"),
        ("READONLY_BUFFER", [0x43, 1, 0x01, 0x98, 0x2E], "b'01'"),
        ("_rebuild_tensor_v2 on a storage",
         bytes("ctorch._utils\n_rebuild_tensor_v2\n(") + [0x28] + bytes("X\u{07}\0\0\0storagectorch\nFloatStorage\nX\u{01}\0\0\0kX\u{03}\0\0\0cpuK\u{06}tQ")
            + [0x4B, 1, 0x4B, 2, 0x4B, 2, 0x86, 0x4B, 2, 0x4B, 1, 0x86, 0x89, 0x4E, 0x74, 0x52, 0x2E],
         "tensor(float32, [2, 2], [2, 1], 1, k)"),
        ("_rebuild_parameter unwraps its tensor",
         bytes("ctorch._utils\n_rebuild_parameter\n(ctorch._utils\n_rebuild_tensor\n(") + [0x28]
            + bytes("X\u{07}\0\0\0storagectorch\nLongStorage\nX\u{01}\0\0\0kX\u{03}\0\0\0cpuK\u{01}tQ")
            + [0x4B, 0, 0x29, 0x29, 0x74, 0x52, 0x88, 0x4E, 0x74, 0x52, 0x2E],
         "tensor(int64, [], [], 0, k)"),
    ]

    @Test(arguments: cases)
    func opcode(_ name: String, _ pickle: [UInt8], _ expected: String) throws {
        #expect(try unpickle(pickle) == expected, "\(name)")
    }
}

/// Malformed and hostile pickles: each is refused with the byte offset and what was wrong.
@Suite struct UnpicklerRefusalTests {
    func refusal(_ pickle: [UInt8]) -> CheckpointError? {
        do {
            _ = try unpickle(pickle)
            return nil
        } catch {
            return error as? CheckpointError
        }
    }

    @Test func truncatedPickle() {
        let error = refusal([0x80, 2, 0x5D, 0x4B])
        #expect(error?.kind == .corrupt)
        #expect(error?.location == "test.pkl byte 3")
    }

    @Test func unknownOpcode() {
        #expect(refusal([0xFF])?.message.contains("unknown opcode 0xff") == true)
    }

    @Test func lengthBeyondTheData() {
        let error = refusal([0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x61])
        #expect(error?.message.contains("length 2147483647 exceeds") == true)
        #expect(refusal([0x8E] + [UInt8](repeating: 0xFF, count: 8))?.kind == .corrupt)
        #expect(refusal([0x8B, 0xFF, 0xFF, 0xFF, 0xFF])?.message.contains("negative length") == true)
    }

    @Test func stackAndMarkMisuse() {
        #expect(refusal([0x2E])?.message.contains("empty stack") == true)
        #expect(refusal([0x74])?.message.contains("no MARK") == true)
        #expect(refusal([0x4B, 1, 0x28, 0x61])?.kind == .corrupt)  // APPEND would reach below the MARK
        #expect(refusal([0x4B, 1, 0x4B, 2, 0x61, 0x2E])?.message.contains("APPEND to int") == true)
        #expect(refusal([0x68, 4])?.message.contains("memo index 4") == true)
        #expect(refusal([0x7D, 0x28, 0x4B, 1, 0x75])?.message.contains("odd number") == true)
    }

    @Test func refusedOpcodes() {
        #expect(refusal([0x82, 1])?.kind == .unsupported)
        #expect(refusal([0x83, 1, 0])?.kind == .unsupported)
        #expect(refusal([0x84, 1, 0, 0, 0])?.kind == .unsupported)
        #expect(refusal([0x97])?.kind == .unsupported)
        #expect(refusal([0x80, 6])?.message.contains("protocol 6") == true)
    }

    @Test(arguments: [
        ("cos\nsystem\n", "os.system"),
        ("cposix\nsystem\n", "posix.system"),
        ("cnt\nsystem\n", "nt.system"),
        ("csubprocess\nPopen\n", "subprocess.Popen"),
        ("c__builtin__\neval\n", "__builtin__.eval"),
        ("cbuiltins\nexec\n", "builtins.exec"),
        ("cbuiltins\ngetattr\n", "builtins.getattr"),
        ("cbuiltins\n__import__\n", "builtins.__import__"),
        ("cimportlib.machinery\nSourceFileLoader\n", "importlib.machinery.SourceFileLoader"),
        ("cshutil\nrmtree\n", "shutil.rmtree"),
        ("csocket\nsocket\n", "socket.socket"),
        ("crunpy\n_run_code\n", "runpy._run_code"),
        ("cpickle\nloads\n", "pickle.loads"),
        ("csys\nmodules\n", "sys.modules"),
        ("ccommands\ngetoutput\n", "commands.getoutput"),
    ])
    func hostileGlobal(_ global: String, _ symbol: String) {
        let error = refusal([0x80, 2] + bytes(global) + [0x29, 0x52, 0x2E])
        #expect(error?.kind == .security)
        #expect(error?.message.contains(symbol) == true)
        #expect(error?.location == "test.pkl byte 2")
    }

    @Test func hostileStackGlobalFromTheMemo() {
        // 'posix' and 'system' memoised, popped, fetched back: no GLOBAL opcode appears.
        let pickle: [UInt8] = [0x80, 4, 0x8C, 5] + bytes("posix") + [0x94, 0x30, 0x8C, 6] + bytes("system")
            + [0x94, 0x30, 0x68, 0, 0x68, 1, 0x93, 0x29, 0x52, 0x2E]
        let error = refusal(pickle)
        #expect(error?.kind == .security)
        #expect(error?.message.contains("posix.system") == true)
        #expect(error?.location == "test.pkl byte 25")  // the STACK_GLOBAL opcode
    }

    @Test func tensorOutsideItsStorage() {
        // A 2x2 view at offset 1 needs 5 floats; the storage has 4.
        let pickle = bytes("ctorch._utils\n_rebuild_tensor_v2\n(") + [0x28]
            + bytes("X\u{07}\0\0\0storagectorch\nFloatStorage\nX\u{01}\0\0\0kX\u{03}\0\0\0cpuK\u{04}tQ")
            + [0x4B, 1, 0x4B, 2, 0x4B, 2, 0x86, 0x4B, 2, 0x4B, 1, 0x86, 0x89, 0x4E, 0x74, 0x52, 0x2E]
        let error = refusal(pickle)
        #expect(error?.kind == .corrupt)
        #expect(error?.message.contains("needs 20 bytes but the storage has 16") == true)
    }

    @Test func storageCountOverflow() {
        let pickle = bytes("(X\u{07}\0\0\0storagectorch\nDoubleStorage\nX\u{01}\0\0\0kX\u{03}\0\0\0cpu")
            + [0x8A, 8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x74, 0x51, 0x2E]
        #expect(refusal(pickle)?.message.contains("overflows") == true)
    }

    @Test func complexAndQuantizedStoragesAreNamed() {
        let pickle = bytes("(X\u{07}\0\0\0storagectorch\nComplexFloatStorage\nX\u{01}\0\0\0kX\u{03}\0\0\0cpuK\u{01}tQ.")
        let error = refusal(pickle)
        #expect(error?.kind == .unsupported)
        #expect(error?.message.contains("ComplexFloatStorage") == true)
    }

    @Test func deepNestingIsNotACrash() throws {
        // A million nested lists and a million nested tuples: built, summarised and freed
        // without recursion (the arena tears them down flat).
        let depth = 1_000_000
        let lists = [UInt8](repeating: 0x5D, count: depth) + [UInt8](repeating: 0x61, count: depth - 1) + [0x2E]
        #expect(try unpickle(lists).hasPrefix("[[[["))
        let tuples = [0x4E] + [UInt8](repeating: 0x85, count: depth) + [0x2E]
        #expect(try unpickle(tuples).hasPrefix("(((("))
        let arena = PickleArena()
        let value = try tuples.withUnsafeBytes { raw in
            var u = Unpickler(bytes: raw, record: "deep", arena: arena) { _ in .none }
            return try u.load()
        }
        if case .array? = MetadataValue.summarise([(key: .string("deep"), value: value)]).first?.value {} else {
            Issue.record("expected an array summary")
        }
    }

    @Test func sharedValuesDoNotMakeSummariesExplode() throws {
        // 20 levels of lists that each hold the level below 64 times: a few kilobytes of pickle,
        // 64^20 paths. The summary stops at its budget.
        var bytes: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0]           // [] memo 0
        for level in 1 ... 20 {
            bytes += [0x5D, 0x28] + Array(repeating: [0x68, UInt8(level - 1)], count: 64).flatMap { $0 }
            bytes += [0x65, 0x71, UInt8(level)]                    // APPENDS, BINPUT level
        }
        bytes += [0x2E]
        let arena = PickleArena()
        let value = try bytes.withUnsafeBytes { raw in
            var u = Unpickler(bytes: raw, record: "shared", arena: arena) { _ in .none }
            return try u.load()
        }
        let start = Date()
        let summary = MetadataValue.summarise([(key: .string("shared"), value: value)])
        #expect(Date().timeIntervalSince(start) < 5)
        let text = String(decoding: try JSONEncoder().encode(summary.map(\.value)), as: UTF8.self)
        #expect(text.contains("<summary truncated>"))
    }

    @Test func sharedSubmodulesDoNotMakeTheWalkExplode() throws {
        // torch.save(model) where each level's `a` and `b` are the same module: 2^40 paths to the
        // innermost one. state_dict() would list each path; zoo stops at its visit budget.
        let arena = PickleArena()
        func module(_ children: [(String, PickleValue)]) -> PickleValue {
            let state = arena.dict(), modules = arena.dict()
            for (name, child) in children { modules.set(.string(name), child) }
            state.set(.string("_parameters"), .dict(arena.dict()))
            state.set(.string("_modules"), .dict(modules))
            let object = arena.object(module: "torch.nn.modules.container", name: "Sequential", arguments: [])
            object.state = .dict(state)
            return .object(object)
        }
        var level = module([])
        for _ in 0 ..< 40 { level = module([("a", level), ("b", level)]) }
        #expect {
            try StateDictExtractor.extract(level, format: .zip, path: "shared.pth")
        } throws: { error in
            (error as? CheckpointError)?.kind == .corrupt && "\(error)".contains("shared modules reached by too many paths")
        }
    }

    @Test func repeatedCopiesOfOneListAreBounded() throws {
        // One list of 100,000 ints, then list(thatList) a thousand times: 10^8 copies from a
        // 240 KB pickle. The copy budget refuses it instead of allocating gigabytes.
        var bytes: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0, 0x28]
        bytes += Array(repeating: [0x4B, 7], count: 100_000).flatMap { $0 }
        bytes += [0x65]
        let call: [UInt8] = Array("c__builtin__\nlist\n".utf8) + [0x68, 0, 0x85, 0x52, 0x30]
        for _ in 0 ..< 1000 { bytes += call }
        bytes += [0x2E]
        #expect {
            try bytes.withUnsafeBytes { raw in
                var u = Unpickler(bytes: raw, record: "copies", arena: PickleArena()) { _ in .none }
                return try u.load()
            }
        } throws: { error in
            (error as? CheckpointError)?.kind == .corrupt && "\(error)".contains("copy more than")
        }
    }

    @Test func selfReferenceTerminates() throws {
        // l = []; l.append(l)
        let pickle: [UInt8] = [0x5D, 0x71, 0, 0x68, 0, 0x61, 0x2E]
        #expect(try unpickle(pickle).hasPrefix("[[[["))
    }
}
