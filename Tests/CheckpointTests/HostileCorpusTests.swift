import Foundation
import Testing
@testable import Checkpoint

/// The hostile-pickle corpus of `Tests/Fixtures/hostile` (`make_hostile.py`): every file is a
/// real attack under `pickle.load` / `torch.load(weights_only=False)`, and every one must be
/// refused as a security error that names the symbol its manifest lists.
enum HostileCorpus {
    static let folder = Fixtures.folder.appendingPathComponent("hostile")

    struct Payload: Decodable, CustomTestStringConvertible, Sendable {
        var name: String
        var wrapper: String
        var symbol: String
        var what: String
        var testDescription: String { name }
    }

    struct Manifest: Decodable {
        var payloads: [Payload]
    }

    static var payloads: [Payload] {
        let data = (try? Data(contentsOf: folder.appendingPathComponent("manifest.json"))) ?? Data()
        return (try? JSONDecoder().decode(Manifest.self, from: data))?.payloads ?? []
    }
}

@Suite struct HostileCorpusTests {
    @Test func manifestCoversTheFolder() throws {
        let payloads = HostileCorpus.payloads
        #expect(payloads.count >= 20)
        let listed = Set(payloads.map(\.name))
        #expect(listed.count == payloads.count, "a file is listed twice")
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: HostileCorpus.folder.path))
            .subtracting(["manifest.json"])
        #expect(files.subtracting(listed).isEmpty, "files not in the manifest: \(files.subtracting(listed).sorted())")
        #expect(listed.subtracting(files).isEmpty, "listed but missing: \(listed.subtracting(files).sorted())")
        #expect(Set(payloads.map(\.wrapper)).isSuperset(of: ["zip", "legacy", "tar"]))
    }

    @Test(arguments: HostileCorpus.payloads)
    func refusedNamingTheSymbol(_ payload: HostileCorpus.Payload) {
        let path = HostileCorpus.folder.appendingPathComponent(payload.name).path
        do {
            let checkpoint = try CheckpointFile(path: path)
            Issue.record("\(payload.name) was read (\(checkpoint.stateDict.keys.count) tensors): \(payload.what)")
        } catch let error as CheckpointError {
            #expect(error.kind == .security, "\(payload.name): \(error)")
            #expect(error.description.contains(payload.symbol), "\(payload.name) must name \(payload.symbol): \(error)")
            #expect(error.description.contains("nothing was executed"), "\(payload.name): \(error)")
            #expect(error.path == path)
        } catch {
            Issue.record("\(payload.name): not a CheckpointError: \(error)")
        }
    }

    @Test func corpusExecutesNothing() throws {
        // Each payload would create or remove /tmp/zoo-pwned-hostile-<stem>.
        for payload in HostileCorpus.payloads {
            _ = try? CheckpointFile(path: HostileCorpus.folder.appendingPathComponent(payload.name).path)
        }
        let pwned = try FileManager.default.contentsOfDirectory(atPath: "/tmp").filter { $0.hasPrefix("zoo-pwned-hostile") }
        #expect(pwned.isEmpty)
    }

    /// What honest checkpoints name (module, qualified name, as pickle writes them) must stay readable.
    @Test(arguments: [
        "copyreg _reconstructor", "copy_reg _reconstructor", "copyreg __newobj__", "collections OrderedDict",
        "collections defaultdict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
        "torch._tensor _rebuild_from_type_v2", "torch Size", "torch FloatStorage", "torch device", "torch float32",
        "torch.jit._pickle build_intlist", "numpy.core.multiarray scalar", "numpy._core.multiarray scalar",
        "numpy.core.multiarray _reconstruct", "numpy dtype", "numpy ndarray", "_codecs encode", "argparse Namespace",
        "torch.nn.modules.conv Conv2d", "__main__ Net", "__main__ Outer.Inner", "__torch__ Head", "datetime datetime",
        "pathlib PosixPath", "types SimpleNamespace", "enum Enum", "builtins set", "__builtin__ set", "builtins object",
        "builtins slice",
    ])
    func honestSymbolsPass(_ symbol: String) {
        let parts = symbol.split(separator: " ").map(String.init)
        #expect(!SymbolPolicy.isHostile(module: parts[0], name: parts[1]))
    }

    @Test(arguments: [
        ("torch", "nn.Linear", false),
        ("exceptions", "eval", true), ("builtins", "dict.get", true), ("builtins", "type", true),
        ("io", "open", true), ("codecs", "open", true), ("numpy.lib.npyio", "load", true), ("numpy", "memmap", true),
        ("argparse", "_sys.modules", true), ("torch", "hub.load", true), ("collections", "OrderedDict.__init__", true),
        ("torch._utils", "__builtins__", true), ("torch.fx.graph_module", "reduce_graph_module", true),
    ])
    func pathsAreJudgedWhole(_ module: String, _ name: String, _ hostile: Bool) {
        #expect(SymbolPolicy.isHostile(module: module, name: name) == hostile, "\(module).\(name)")
    }
}
