import Foundation
import Testing
@testable import Checkpoint

/// The parser differentials `Tests/Interop/check_differential.py` found: each fixture in
/// `Tests/Fixtures/differential` (made by `make_differential.py` with real torch) must list
/// torch's keys, or be refused with a message naming the ambiguity.
@Suite struct DifferentialFixtureTests {
    static let folder = Fixtures.folder.appendingPathComponent("differential")

    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasSuffix(".pth") || $0.hasSuffix(".pt") }.sorted()
    }

    struct Expected: Decodable {
        var keys: [String]?
        var refused: String?
    }

    @Test func everyClassHasAFixture() {
        #expect(Self.names.count >= 9)
    }

    @Test(arguments: names)
    func readsAsTorchOrRefuses(_ name: String) throws {
        let file = Self.folder.appendingPathComponent(name)
        let stem = file.deletingPathExtension().lastPathComponent
        let expected = try JSONDecoder().decode(Expected.self,
            from: Data(contentsOf: Self.folder.appendingPathComponent(stem + ".expected.json")))
        do {
            let checkpoint = try CheckpointFile(path: file.path)
            // Compared by UTF-8 bytes: the NFC and NFD spellings of a key are two keys.
            #expect(checkpoint.stateDict.keys.map { Array($0.utf8) } == expected.keys?.map { Array($0.utf8) },
                    "\(name) lists \(checkpoint.stateDict.keys)")
        } catch let error as CheckpointError {
            guard let refused = expected.refused else {
                Issue.record("\(name) refused: \(error)")
                return
            }
            #expect("\(error)".contains(refused), "\(name): \(error)")
        }
    }
}

@Suite struct DifferentialUnitTests {
    func load(_ pickle: [UInt8]) throws -> PickleValue {
        let arena = PickleArena()
        return try pickle.withUnsafeBytes { raw in
            var unpickler = Unpickler(bytes: raw, record: "test.pkl", arena: arena) { pid in
                guard let f = pid.elements, f.count == 5 else { return .none }
                return .storage(try storageReference(f[1], key: f[2], location: f[3], numel: f[4]) {
                    CheckpointError(.corrupt, path: "", $0)
                })
            }
            return try unpickler.load()
        }
    }

    /// ('storage', torch.FloatStorage, 'k', 'cpu', 4) as a persistent id.
    let storage = bytes("(X\u{07}\0\0\0storagectorch\nFloatStorage\nX\u{01}\0\0\0kX\u{03}\0\0\0cpuK\u{04}tQ")

    @Test func bareTensorWithBuildIsATensor() throws {
        // torch.FloatTensor() then BUILD (storage, 1, (2,), (1,)), as torch < 0.4 pickled tensors.
        let pickle = bytes("ctorch\nFloatTensor\n)R(") + storage + [0x4B, 1, 0x4B, 2, 0x85, 0x4B, 1, 0x85, 0x74, 0x62, 0x2E]
        let tensor = try #require(try load(pickle).tensor)
        #expect(tensor.shape == [2] && tensor.storageOffset == 1 && tensor.dtype == .float32)
    }

    @Test func buildRepointingATensorIsRefused() throws {
        let rebuilt = bytes("ctorch._utils\n_rebuild_tensor_v2\n(") + storage
            + [0x4B, 0, 0x4B, 4, 0x85, 0x4B, 1, 0x85, 0x89, 0x4E, 0x74, 0x52]
        let pickle = rebuilt + [0x28] + storage + [0x4B, 0, 0x4B, 1, 0x85, 0x4B, 1, 0x85, 0x74, 0x62, 0x2E]
        #expect(throws: CheckpointError.self) { try load(pickle) }
        #expect(try load(rebuilt + [0x2E]).tensor?.shape == [4])
    }

    @Test func scriptClassDeclarations() throws {
        var classes = ScriptClasses()
        try classes.parse("""
            class Inner(Module):
              __parameters__ = ["p", ]
              __buffers__ = ["buf", "it\\"s", ]
              p : Tensor
              def forward(self: __torch__.___torch_mangle_1.Inner) -> Tensor:
                return self.p
            class Point(object):
              x : Tensor
            """, module: "__torch__.___torch_mangle_1")
        #expect(classes["__torch__.___torch_mangle_1.Inner"] == .init(isModule: true, parameters: ["p"], buffers: ["buf", "it\"s"]))
        #expect(classes["__torch__.___torch_mangle_1.Point"]?.isModule == false)
    }
}
