import Foundation
import Testing
@testable import Checkpoint

/// Item 5 of issue 12: every symbol a pickle names gets a verdict, and is listed with where it sits.
struct SymbolVerdictTests {
    @Test(arguments: [
        ("typing", "ForwardRef"), ("typing", "_eval_type"), ("typing", "get_type_hints"), ("sympy", "sympify"),
        ("sympy.core.sympify", "sympify"), ("sympy", "S"), ("uuid", "_get_command_stdout"), ("uuid", "_popen"),
        ("_osx_support", "_read_output"), ("torch.distributed.run", "main"), ("torch.fx.graph_module", "_exec_with_source"),
        ("torch.utils.model_zoo", "load_url"), ("numpy", "save"), ("numpy", "savez"), ("numpy", "savetxt"),
        ("torchvision.io", "write_png"), ("logging", "FileHandler"), ("logging.handlers", "RotatingFileHandler"),
        ("zipfile", "ZipFile"), ("_pyio", "FileIO"), ("pathlib", "Path.write_text"), ("pathlib", "Path.touch"),
        ("SimpleHTTPServer", "test"), ("SocketServer", "TCPServer"),
    ])
    func newlyHostile(_ symbol: (String, String)) {
        #expect(SymbolVerdicts.verdict(module: symbol.0, name: symbol.1) == .hostile, "\(symbol.0).\(symbol.1)")
    }

    @Test func torchsAllowListIsAllowed() {
        for (m, n) in [("torch._utils", "_rebuild_tensor_v2"), ("collections", "OrderedDict"), ("torch", "FloatStorage"),
                       ("torch", "Size"), ("torch.nn.parameter", "Parameter"), ("_codecs", "encode"), ("__builtin__", "set"),
                       ("torch", "float32"), ("torch._tensor", "_rebuild_from_type_v2")] {
            #expect(SymbolVerdicts.verdict(module: m, name: n) == .allowed, "\(m).\(n)")
        }
        for (m, n) in [("argparse", "Namespace"), ("numpy.core.multiarray", "_reconstruct"), ("pathlib", "PosixPath"),
                       ("uuid", "UUID"), ("torchvision.models.resnet", "ResNet"), ("builtins", "list")] {
            #expect(SymbolVerdicts.verdict(module: m, name: n) == .foreign, "\(m).\(n)")
        }
    }

    static func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
    static func text(_ s: String) -> [UInt8] { [0x8C, UInt8(s.utf8.count)] + Array(s.utf8) }

    @Test func symbolsAreListedWithWhereTheySit() throws {
        // {'args': argparse.Namespace(), 'w': tensor with backward hooks {0: mymod.hook}}
        var b: [UInt8] = [0x80, 0x02, 0x7D] + Self.text("args") + Self.global("argparse", "Namespace") + [0x29, 0x81, 0x73]
        b += Self.text("w") + Self.global("torch._utils", "_rebuild_tensor_v2") + [0x28]
        b += [0x28] + Self.text("storage") + Self.global("torch", "FloatStorage") + Self.text("0") + Self.text("cpu") + [0x4B, 1, 0x74, 0x51]
        b += [0x4B, 0, 0x28, 0x4B, 1, 0x74, 0x28, 0x4B, 1, 0x74, 0x89]
        b += Self.global("collections", "OrderedDict") + [0x29, 0x52, 0x71, 9, 0x4B, 0] + Self.global("mymod", "hook") + [0x73]
        b += [0x74, 0x52, 0x73, 0x2E]
        let arena = PickleArena()
        let root = try b.withUnsafeBytes { raw in
            var u = Unpickler(bytes: raw, record: "t.pkl", arena: arena) { pid in
                guard let f = pid.elements, f.count == 5 else { return .none }
                return .storage(try storageReference(f[1], key: f[2], location: f[3], numel: f[4]) { CheckpointError(.corrupt, path: "", $0) })
            }
            return try u.load()
        }
        let symbols = SymbolVerdicts.report(arena.symbols, roots: [("", root)], hidden: arena.hiddenSymbols)
        let byName = Dictionary(symbols.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byName["argparse.Namespace"]?.verdict == .foreign)
        #expect(byName["argparse.Namespace"]?.usedAt == "args")
        #expect(byName["mymod.hook"]?.verdict == .foreign)
        #expect(byName["mymod.hook"]?.usedAt.contains("backward_hooks") == true)
        #expect(byName["torch._utils._rebuild_tensor_v2"]?.verdict == .allowed)
        #expect(byName["argparse.Namespace"]?.offset == 9)
    }
}
