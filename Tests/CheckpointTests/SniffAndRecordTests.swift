import Foundation
import Testing
@testable import Checkpoint

/// Format detection by whole structure, and tensor-record arithmetic that never traps.
@Suite struct SniffAndRecordTests {
    /// A safetensors file holding one uint8 tensor `t`, its header padded to `length` bytes.
    static func safetensors(headerLength length: Int, values: [UInt8] = [1, 2, 3]) -> [UInt8] {
        var header = #"{"t":{"dtype":"U8","shape":[\#(values.count)],"data_offsets":[0,\#(values.count)]}}"#
        precondition(header.utf8.count <= length)
        header += String(repeating: " ", count: length - header.utf8.count)
        return withUnsafeBytes(of: UInt64(length).littleEndian, Array.init) + Array(header.utf8) + values
    }

    static func sniff(_ bytes: [UInt8]) throws -> CheckpointFormat {
        try Array(bytes.prefix(512)).withUnsafeBytes { try CheckpointFormat.sniff($0, fileSize: bytes.count, path: "x") }
    }

    /// A header of 384 = 128 mod 256 bytes makes the file start with 0x80, pickle's first byte.
    @Test func headerLength128Mod256IsSafetensorsNotAPickle() throws {
        let bytes = Self.safetensors(headerLength: 384)
        #expect(bytes[0] == 0x80)
        let file = try TemporaryFile(bytes, name: "x.safetensors")
        #expect(try CheckpointFile.sniff(path: file.path) == .safetensors)
        let checkpoint = try CheckpointFile(path: file.path)
        #expect(try checkpoint.data(of: try #require(checkpoint.stateDict["t"])) == [1, 2, 3])
    }

    @Test func everyHeaderLengthModulo256() throws {
        for length in 256 ..< 512 {
            #expect(try Self.sniff(Self.safetensors(headerLength: length)) == .safetensors, "header length \(length)")
        }
    }

    /// Truncated, the same file still goes to the safetensors reader, which says what is wrong.
    @Test func truncatedSafetensorsStartingWith0x80() throws {
        let bytes = Array(Self.safetensors(headerLength: 384).prefix(300))
        let error = try #require(try refusal(bytes))
        #expect(error.message.contains("invalid header length"), "\(error)")
    }

    /// A failed read-back names the file being written, never the temporary one.
    @Test func readBackErrorsNameTheDestination() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-atomic-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/out.safetensors"
        do {
            try AtomicFile.write(to: path, { try $0.write(contentsOf: [1]) },
                                 verify: { throw CheckpointError(.corrupt, path: $0, at: "safetensors header", "bad") })
            Issue.record("verification failure was not reported")
        } catch let error as CheckpointError {
            #expect(error.path == path)
            #expect(error.description == "\(path): read back before renaming into place: safetensors header: bad")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }

    /// torch loads an empty tensor whatever its other sizes: 0 elements, nothing to read.
    @Test(arguments: [[0, 1 << 62, 1 << 62], [1 << 62, 1 << 62, 0], [Int.max, 0, Int.max]])
    func emptyTensorWithHugeDimensions(_ shape: [Int]) throws {
        let storage = StorageRef(key: "0", dtype: .float32, byteCount: 0, location: "cpu")
        var contiguous = [Int](repeating: 1, count: shape.count)
        for i in shape.indices.dropLast().reversed() { contiguous[i] = contiguous[i + 1] &* max(shape[i + 1], 1) }
        for strides in [contiguous, [1, 1, 1], [0, 0, 0], [Int.max, Int.max, Int.max]] {
            let record = try TensorRecord.validated(storage: storage, dtype: .float32, shape: shape, strides: strides, storageOffset: 0)
            #expect(record.elementCount == 0)
            #expect(record.isContiguous)
            #expect(record.gather(from: UnsafeRawBufferPointer(start: nil, count: 0), swapBytes: false).isEmpty)
        }
        #expect(TensorRecord.elementCount([1 << 62, 4]) == nil)
        #expect(throws: CheckpointError.self) {
            try TensorRecord.validated(storage: storage, dtype: .float32, shape: [1 << 62, 4], strides: [4, 1], storageOffset: 0)
        }
    }

    /// torch does not check an empty tensor's offset against its storage: it may lie past the
    /// end, up to Int.max; the record's bytes are then an empty run, never a slice past the end
    /// (a tar file found by fuzzing trapped in `floats(of:)`: Tests/Fixtures/fuzz/tar).
    @Test(arguments: [4, 1_000_000, Int.max / 4, Int.max])
    func emptyTensorWithOffsetPastItsStorage(_ offset: Int) throws {
        let storage = StorageRef(key: "0", dtype: .float32, byteCount: 16, location: "cpu")
        let record = try TensorRecord.validated(storage: storage, dtype: .float32, shape: [2051, 0], strides: [1, 1], storageOffset: offset)
        #expect(record.contiguousBytes == 0 ..< 0)
        #expect(throws: CheckpointError.self) {
            try TensorRecord.validated(storage: storage, dtype: .float32, shape: [1], strides: [1], storageOffset: offset)
        }
    }

    /// The whole convert path (plan, stream, write, read back) on an empty [0, 2^62, 2^62] tensor.
    @Test func emptyTensorWithHugeDimensionsConverts() throws {
        let header = raw(#"{"e":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]},"#
            + #""t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#)
        let file = try TemporaryFile(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + [7, 8], name: "e.safetensors")
        let source = try CheckpointFile(path: file.path)
        let output = (file.path as NSString).deletingLastPathComponent + "/out.safetensors"
        let report = try NativeWriter.write(source, to: output)
        #expect(report.tensors == 2)
        let native = try CheckpointFile(path: output)
        let empty = try #require(native.stateDict["e"])
        #expect(empty.shape == [0, 1 << 62, 1 << 62])
        #expect(try native.data(of: empty).isEmpty)
        #expect(try native.floats(of: empty).isEmpty)
        #expect(try native.data(of: try #require(native.stateDict["t"])) == [7, 8])
    }
}
