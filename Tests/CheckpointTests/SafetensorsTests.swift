import Foundation
import Testing
@testable import Checkpoint

/// Bytes of a Swift string literal, where `\u{..}` spells raw bytes below 0x80.
func raw(_ text: String) -> [UInt8] { Array(text.utf8) }

func parseHeader(_ bytes: [UInt8]) -> Result<SafetensorsHeader, CheckpointError> {
    bytes.withUnsafeBytes { buffer in
        Result { try SafetensorsHeader.parse(buffer, path: "t.safetensors") }.mapError { $0 as! CheckpointError }
    }
}

/// The malformed and edge-case files of the reference implementation's own tests
/// (huggingface/safetensors, `safetensors/src/tensor.rs`), each with the verdict it expects.
@Suite struct SafetensorsReaderTests {
    static let test2x2 = raw(#"{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}"#)
    static let zeros16 = [UInt8](repeating: 0, count: 16)

    static func le(_ n: UInt64) -> [UInt8] { withUnsafeBytes(of: n.littleEndian, Array.init) }

    @Test(arguments: [
        ("header too small", [UInt8](), "header too small"),
        ("invalid header length", le(60), "invalid header length"),
        ("header too large", [0x3C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF] + test2x2 + zeros16, "header too large"),
        ("non-UTF-8 header", le(1) + [0xFF], "not valid UTF-8"),
        ("not JSON", le(1) + raw("{"), "invalid JSON"),
        ("invalid info", le(UInt64(raw(#"{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0, 4]}}"#).count))
            + raw(#"{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0, 4]}}"#) + [0, 0, 0, 0], "needs 16 bytes, its offsets span 4"),
        ("shape overflow", le(79) + raw(#"{"test":{"dtype":"I32","shape":[2,18446744073709551614],"data_offsets":[0,16]}}"#) + zeros16,
         "validation overflow"),
        ("byte count overflow", le(78) + raw(#"{"test":{"dtype":"I32","shape":[2,9223372036854775807],"data_offsets":[0,16]}}"#) + zeros16,
         "validation overflow"),
        ("trailing bytes (polyglot file)", le(60) + test2x2 + zeros16 + raw("extra_bogus_data_for_polyglot_file"), "trailing bytes"),
        ("missing data", le(60) + test2x2 + Array(zeros16.dropLast(2)), "truncated"),
        ("duplicate keys", le(UInt64(raw(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#).count))
            + raw(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#) + [0, 0],
         "duplicate key \"a\""),
        ("unknown dtype", le(UInt64(raw(#"{"t":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#).count))
            + raw(#"{"t":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#) + [0], "unknown dtype Q7"),
        ("metadata not strings", le(UInt64(raw(#"{"__metadata__":{"epoch":3}}"#).count)) + raw(#"{"__metadata__":{"epoch":3}}"#),
         "not a string"),
    ])
    func refused(_ name: String, _ file: [UInt8], _ message: String) {
        switch parseHeader(file) {
        case .success: Issue.record("\(name): accepted")
        case .failure(let error):
            #expect(error.message.contains(message), "\(name): \(error)")
            #expect(error.path == "t.safetensors")
        }
    }

    @Test func jsonAttackOfOverlappingOffsets() {
        // Ten tensors all claiming bytes [0, 16): the reference refuses with InvalidOffset.
        let members = (0 ..< 10).map { #""weight_\#($0)":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}"# }
        let header = raw("{" + members.joined(separator: ",") + "}")
        guard case .failure(let error) = parseHeader(Self.le(UInt64(header.count)) + header + Self.zeros16) else {
            Issue.record("accepted")
            return
        }
        #expect(error.message.contains("invalid offset for tensor weight_"))
    }

    @Test func acceptedEdgeCases() throws {
        // Deserialization, whitespace padding (\r \t \n), a zero-sized tensor, a 0-d tensor.
        let plain = try parseHeader(Self.le(60) + Self.test2x2 + Self.zeros16).get()
        #expect(plain.entries.map(\.key) == ["test"] && plain.entries[0].shape == [2, 2])
        #expect(try parseHeader(Self.le(6) + raw("{}\r \t\n")).get().entries.isEmpty)
        let zero = raw(#"{"test":{"dtype":"I32","shape":[2,0],"data_offsets":[0, 0]}}"#)
        #expect(try parseHeader(Self.le(UInt64(zero.count)) + zero).get().entries[0].shape == [2, 0])
        let scalar = raw(#"{"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}"#)
        #expect(try parseHeader(Self.le(UInt64(scalar.count)) + scalar + [0, 0, 0, 0]).get().entries[0].shape == [])
    }

    @Test func jsonParser() throws {
        func parse(_ text: String) throws -> JSON { try raw(text).withUnsafeBytes { try JSON.parse($0) } }
        #expect(try parse(#"{"a":[1,-2,3.5,"x\n\u00e9\ud83d\ude00",true,null]}"#)
            == .object([(key: "a", value: .array([.int(1), .int(-2), .number("3.5"), .string("x\né😀"), .bool(true), .null]))]))
        for bad in ["{", "[1,]", "01", "{\"a\" 1}", "\"\u{01}\"", "[1] 2", "\"\\ud800\"", String(repeating: "[", count: 100)] {
            #expect(throws: JSON.ParseError.self, "\(bad)") { try parse(bad) }
        }
        #expect(JSON.escape("a\"b\\c\n\u{01}") == #"a\"b\\c\n\u0001"#)
    }
}

@Suite struct NativeWriterTests {
    func temporaryFolder() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-native-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test func sha256KnownVectors() {
        let empty = SHA256Hasher()
        #expect(empty.finalize() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let abc = SHA256Hasher()
        abc.update(raw("abc"))
        #expect(abc.finalize() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// The whole file, byte for byte, built independently from the values torch.load gave
    /// (`tiny_net.expected.json`): header by hand, data from the expected hex.
    @Test func byteExactOnAFixture() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/tiny_net.safetensors"
        let source = try CheckpointFile(path: Fixtures.path("tiny_net.pth"))
        _ = try NativeWriter.write(source, to: output, options: .init(architecture: "tiny", version: "test"))

        let expected = try Fixtures.expected("tiny_net.pth")
        var tensors: [String] = []
        var data: [UInt8] = []
        for t in expected.tensors ?? [] {
            let bytes = stride(from: 0, to: t.hex.count, by: 2).map { i -> UInt8 in
                let start = t.hex.index(t.hex.startIndex, offsetBy: i)
                return UInt8(t.hex[start ..< t.hex.index(start, offsetBy: 2)], radix: 16) ?? 0
            }
            let code = ["float32": "F32", "int64": "I64"][t.dtype] ?? "?"
            tensors.append(#""\#(t.key)":{"dtype":"\#(code)","shape":[\#(t.shape.map(String.init).joined(separator: ","))],"data_offsets":[\#(data.count),\#(data.count + bytes.count)]}"#)
            data += bytes
        }
        let sha = try SHA256Hasher.file(Fixtures.path("tiny_net.pth"))
        let metadata = #""__metadata__":{"architecture":"tiny","format":"pt","source_file":"tiny_net.pth","source_format":"zip","source_sha256":"\#(sha)","zoo_version":"test"}"#
        var header = "{" + ([metadata] + tensors).joined(separator: ",") + "}"
        header += String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        let want = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init) + raw(header) + data
        let got = [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
        #expect(got == want)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["tiny_net.safetensors"])  // no temporary left
    }

    @Test(arguments: [false, true])
    func sharedViewsReadBackWithOrWithoutDedup(_ dedup: Bool) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = try CheckpointFile(path: Fixtures.path("views.pth"))
        let report = try NativeWriter.write(source, to: folder + "/v.safetensors", options: .init(dedup: dedup))
        // By default every key is stored, as every safetensors reader expects; --dedup stores a view once.
        #expect(report.aliases == (dedup ? ["a_again": "a"] : [:]))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/v.safetensors"))
        let length = Int(bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try #require(try JSONSerialization.jsonObject(with: bytes.subdata(in: 8 ..< 8 + length)) as? [String: Any])
        #expect(header.keys.filter { $0 != "__metadata__" }.count == source.stateDict.entries.count - (dedup ? 1 : 0))
        let native = try CheckpointFile(path: folder + "/v.safetensors")
        #expect(Set(native.stateDict.keys) == Set(source.stateDict.keys))
        for (key, tensor) in source.stateDict.entries {
            let stored = try #require(native.stateDict[key])
            #expect(try native.data(of: stored) == source.data(of: tensor), "\(key)")
        }
    }

    @Test func compactionRoundsToNearestEven() throws {
        #expect(Float16(Float(1) / 3).bitPattern == 0x3555)
        #expect(Float16(Float(65520)).isInfinite)
        #expect(Conversion.bfloat16(1 / 3) == 0x3EAB)
        #expect(Conversion.bfloat16(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie: to even
        #expect(Conversion.bfloat16(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie: to even, upward
        #expect(Conversion.bfloat16(.nan) & 0x7FC0 == 0x7FC0)

        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = try CheckpointFile(path: Fixtures.path("tiny_net.pth"))
        for target in [DType.float16, .bfloat16] {
            let path = folder + "/\(target).safetensors"
            let report = try NativeWriter.write(source, to: path, options: .init(dtype: target))
            let native = try CheckpointFile(path: path)
            #expect(native.stateDict["0.weight"]?.dtype == target)
            #expect(native.stateDict["1.running_var"]?.dtype == .float32)
            #expect(native.stateDict["1.num_batches_tracked"]?.dtype == .int64)
            #expect(report.converted == 6)
            let original = try source.floats(of: try #require(source.stateDict["5.fc.weight"]))
            let compact = try native.floats(of: try #require(native.stateDict["5.fc.weight"]))
            #expect(zip(original, compact).allSatisfy { abs($0 - $1) <= abs($0) / 128 })
        }
    }

    @Test func failedConversionLeavesNothing() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = try CheckpointFile(path: Fixtures.path("tiny_net.pth"))
        #expect(throws: CheckpointError.self) { try NativeWriter.write(source, to: folder + "/x.safetensors", options: .init(dtype: .int8)) }
        #expect(throws: CheckpointError.self) { try NativeWriter.write(source, to: folder + "/missing/x.safetensors") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }

    @Test func aKnownSourceHashIsRecordedNotRecomputed() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = try CheckpointFile(path: Fixtures.path("tiny_net.pth"))
        let sha = try SHA256Hasher.file(source.path)
        let report = try NativeWriter.write(source, to: folder + "/t.safetensors", options: .init(sourceSHA256: sha))
        #expect(report.sourceSHA256 == sha)
        let written = try CheckpointFile(path: folder + "/t.safetensors")
        #expect(MetadataValue.object(written.stateDict.metadata)["source_sha256"] == .string(sha))
    }

    @Test func neverOverwritesItsSource() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/a", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("tiny_net.pth"), toPath: folder + "/a/t.pth")
        try FileManager.default.createSymbolicLink(atPath: folder + "/link", withDestinationPath: folder + "/a")
        let source = try CheckpointFile(path: folder + "/a/t.pth")
        for output in [folder + "/a/../a/t.pth", folder + "/link/t.pth"] {
            #expect(throws: CheckpointError.self) { try NativeWriter.write(source, to: output) }
        }
        #expect(try CheckpointFile.sniff(path: folder + "/a/t.pth") == .zip)
    }

    @Test func everyFixtureConvertsAndReadsBackIdentically() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for name in Fixtures.names where (try? Fixtures.expected(name))?.refused != true {
            let source = try CheckpointFile(path: Fixtures.path(name))
            let output = folder + "/\(name).safetensors"
            _ = try NativeWriter.write(source, to: output)
            let native = try CheckpointFile(path: output)
            for (key, tensor) in source.stateDict.entries {
                let stored = try #require(native.stateDict[key], "\(name) \(key)")
                #expect(stored.shape == tensor.shape && stored.dtype == tensor.dtype)
                #expect(try native.data(of: stored) == source.data(of: tensor), "\(name) \(key)")
            }
        }
    }
}
