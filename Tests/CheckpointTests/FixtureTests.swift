import Foundation
import Testing
@testable import Checkpoint

/// The committed fixtures of `Tests/Fixtures`, made by real PyTorch (`make_fixtures.py`), each
/// with the values `torch.load` returned for it: every one must read identically or be refused
/// exactly as its expectation says.
enum Fixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    struct Expected: Decodable {
        struct Tensor: Decodable {
            var key: String
            var dtype: String
            var shape: [Int]
            var hex: String
        }
        var file: String
        var format: String?
        var state_dict_path: String?
        var stripped_prefix: String?
        var tensors: [Tensor]?
        var metadata_keys: [String]?
        var refused: Bool?
        var kind: String?
        var symbol: String?
    }

    static var names: [String] {
        let data = (try? Data(contentsOf: folder.appendingPathComponent("index.json"))) ?? Data()
        return (try? JSONDecoder().decode([String].self, from: data)) ?? []
    }

    static func expected(_ name: String) throws -> Expected {
        let stem = (name as NSString).deletingPathExtension
        let data = try Data(contentsOf: folder.appendingPathComponent(stem + ".expected.json"))
        return try JSONDecoder().decode(Expected.self, from: data)
    }
}

extension Array where Element == UInt8 {
    var hex: String { map { String(format2: $0) }.joined() }
}

@Suite struct FixtureTests {
    @Test func indexListsFixtures() {
        #expect(Fixtures.names.count >= 20)
    }

    @Test(arguments: Fixtures.names)
    func fixtureReadsAsTorchDoes(_ name: String) throws {
        let expected = try Fixtures.expected(name)
        let path = Fixtures.path(name)
        if expected.refused == true {
            let error = #expect(throws: CheckpointError.self) { try CheckpointFile(path: path) }
            #expect(error?.kind.rawValue == expected.kind, "\(name): \(String(describing: error))")
            if let symbol = expected.symbol {
                #expect(error?.description.contains(symbol) == true, "\(name): \(String(describing: error))")
            }
            #expect(error?.description.contains(path) == true)
            return
        }
        let checkpoint = try CheckpointFile(path: path)
        #expect(checkpoint.format.rawValue == expected.format)
        #expect(checkpoint.stateDict.path == expected.state_dict_path ?? "")
        #expect(checkpoint.stateDict.strippedPrefix == expected.stripped_prefix ?? "")
        let tensors = expected.tensors ?? []
        #expect(checkpoint.stateDict.keys == tensors.map(\.key))
        if let keys = expected.metadata_keys, checkpoint.format != .safetensors {  // safetensors metadata is the header's __metadata__
            #expect(checkpoint.stateDict.metadata.map(\.key).sorted() == keys.sorted())
        }
        for (entry, want) in zip(checkpoint.stateDict.entries, tensors) {
            #expect(entry.tensor.dtype.rawValue == want.dtype, "\(name) \(want.key)")
            #expect(entry.tensor.shape == want.shape, "\(name) \(want.key)")
            let bytes = try checkpoint.data(of: entry.tensor)
            #expect(bytes.hex == want.hex, "\(name) \(want.key): values differ from torch.load")
        }
    }

    @Test func hostileFilesExecuteNothing() throws {
        // Payloads would `touch /tmp/zoo-pwned-<name>`; reading every fixture must create none.
        for name in Fixtures.names { _ = try? CheckpointFile(path: Fixtures.path(name)) }
        let pwned = try FileManager.default.contentsOfDirectory(atPath: "/tmp").filter { $0.hasPrefix("zoo-pwned") }
        #expect(pwned.isEmpty)
    }

    @Test func sharedStorageIsOneStorage() throws {
        let checkpoint = try CheckpointFile(path: Fixtures.path("views.pth"))
        let dict = checkpoint.stateDict
        let a = try #require(dict["a"]), view = try #require(dict["a_view"]), again = try #require(dict["a_again"])
        #expect(a.storage == view.storage && a.storage == again.storage)
        #expect(view.storageOffset == 2)
    }

    @Test func floatsConvertEveryDtype() throws {
        let checkpoint = try CheckpointFile(path: Fixtures.path("dtypes.pth"))
        for (key, tensor) in checkpoint.stateDict.entries {
            let floats = try checkpoint.floats(of: tensor)
            #expect(floats.count == tensor.elementCount, "\(key)")
        }
    }

    @Test func wrappedCheckpointKeepsMetadata() throws {
        let checkpoint = try CheckpointFile(path: Fixtures.path("wrapped.pth"))
        let metadata = MetadataValue.object(checkpoint.stateDict.metadata)
        #expect(metadata["epoch"] == .int(7))
        #expect(metadata["args"]?["__class__"] == .string("argparse.Namespace"))
        #expect(metadata["args"]?["arch"] == .string("tiny"))
        #expect(metadata["best_acc1"] == .tensor(dtype: .float32, shape: []))
    }
}
