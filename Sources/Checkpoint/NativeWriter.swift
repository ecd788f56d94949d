import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes any checkpoint zoo reads as a safetensors file (zoo's native format), storage by
/// storage in fixed-size chunks, so memory stays flat whatever the checkpoint's size.
///
/// The file is written under a temporary name beside `output`, flushed to disk, then checked:
/// it is read back through the strict reader and every tensor is compared with the source
/// again (bit-exact for the same dtype, exact rounding for compaction). Only then is it renamed.
public enum NativeWriter {
    public struct Options: Sendable {
        /// Store floating-point weights in this type (`.float16` or `.bfloat16`); nil keeps each dtype.
        public var dtype: DType?
        /// Architecture name for the metadata (`resnet50`), when known.
        public var architecture: String?
        /// zoo's version for the metadata.
        public var version: String
        /// Extra `__metadata__` entries.
        public var extra: [String: String]
        /// The source's SHA-256 when the caller has just computed it; otherwise it is computed.
        public var sourceSHA256: String?

        public init(dtype: DType? = nil, architecture: String? = nil, version: String = "", extra: [String: String] = [:],
                    sourceSHA256: String? = nil) {
            self.sourceSHA256 = sourceSHA256
            self.dtype = dtype
            self.architecture = architecture
            self.version = version
            self.extra = extra
        }
    }

    public struct Report: Sendable, Codable {
        public var source: String
        public var output: String
        public var sourceSHA256: String
        public var tensors: Int
        /// Alias -> stored key, for tensors that were the same view of one storage.
        public var aliases: [String: String]
        public var dataBytes: Int
        public var fileBytes: Int
        /// Tensors stored in a different dtype than the source's.
        public var converted: Int
        public var metadata: [String: String]

        enum CodingKeys: String, CodingKey {
            case source, output, tensors, aliases, converted, metadata
            case sourceSHA256 = "source_sha256"
            case dataBytes = "data_bytes"
            case fileBytes = "file_bytes"
        }
    }

    /// Bytes converted and written at a time.
    static let chunkBytes = 4 << 20

    /// One tensor to store: where it comes from, how it is stored, where it goes.
    struct Job {
        var key: String
        var tensor: TensorRecord
        var dtype: DType
        var begin: Int
        var bytes: Int { tensor.elementCount * dtype.size }
    }

    /// Converts `checkpoint` into a safetensors file at `output`.
    public static func write(_ checkpoint: Checkpoint, to output: String, options: Options = Options()) throws -> Report {
        if let target = options.dtype, target != .float16 && target != .bfloat16 {
            throw CheckpointError(.unsupported, path: output, "compaction to \(target.rawValue); choose float16 or bfloat16")
        }
        if AtomicFile.sameFile(output, checkpoint.path) {
            throw CheckpointError(.io, path: output, "refusing to overwrite the checkpoint being converted; choose another output")
        }
        let (jobs, aliases) = plan(checkpoint.stateDict, dtype: options.dtype)

        // The source hash runs on the second core while the first converts.
        let hash = options.sourceSHA256 == nil ? BackgroundHash(path: checkpoint.path) : nil

        var metadata = options.extra
        metadata["format"] = "pt"
        metadata["source_file"] = URL(fileURLWithPath: checkpoint.path).lastPathComponent
        metadata["source_format"] = checkpoint.format.rawValue
        metadata["source_sha256"] = String(repeating: "0", count: 64)  // patched in once known
        if let arch = options.architecture { metadata["architecture"] = arch }
        if !options.version.isEmpty { metadata["zoo_version"] = options.version }
        if !aliases.isEmpty {
            metadata[SafetensorsHeader.aliasesKey] = "{" + aliases.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\"\(JSON.escape($0.key))\":\"\(JSON.escape($0.original))\"" }.joined(separator: ",") + "}"
        }
        var header = Array(headerText(jobs, metadata: metadata).utf8)
        let placeholder = Array("\"source_sha256\":\"\(String(repeating: "0", count: 64))\"".utf8)
        guard let hashRange = header.firstRange(of: placeholder) else {
            throw CheckpointError(.io, path: output, "internal: no hash placeholder in the header")
        }
        let dataBytes = jobs.last.map { $0.begin + $0.bytes } ?? 0
        var sha = ""

        try AtomicFile.write(to: output, { handle in
            let fd = handle.fileDescriptor
            try writeAll(fd, withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init), at: 0, path: output)
            try writeAll(fd, header, at: 8, path: output)
            var position = 8 + header.count
            try forEachChunk(jobs, of: checkpoint) { chunk in
                try writeAll(fd, chunk, at: position, path: output)
                position += chunk.count
            }
            sha = try options.sourceSHA256 ?? hash?.wait() ?? ""  // one of the two is always set
            let digest = Array("\"source_sha256\":\"\(sha)\"".utf8)
            header.replaceSubrange(hashRange, with: digest)
            try writeAll(fd, digest, at: 8 + hashRange.lowerBound, path: output)
        }, verify: { temporary in
            try verify(temporary, against: checkpoint, jobs: jobs, aliases: aliases)
        })
        metadata["source_sha256"] = sha
        return Report(source: checkpoint.path, output: output, sourceSHA256: sha, tensors: jobs.count + aliases.count,
                      aliases: Dictionary(aliases.map { ($0.key, $0.original) }, uniquingKeysWith: { a, _ in a }), dataBytes: dataBytes, fileBytes: 8 + header.count + dataBytes,
                      converted: jobs.filter { $0.dtype != $0.tensor.dtype }.count, metadata: metadata)
    }

    /// Which tensors to store and where: identical views of one storage are stored once and
    /// recorded as aliases; the data of one storage is kept together, in first-use order.
    /// Aliases are a list, not a dictionary: keys that differ only in Unicode normal form are
    /// two keys (as in Python), and a Swift `String`-keyed dictionary would merge them.
    static func plan(_ dict: StateDict, dtype target: DType?) -> (jobs: [Job], aliases: [(key: String, original: String)]) {
        struct View: Hashable {
            var storage: String, byteOffset: Int, dtype: DType, shape: [Int], strides: [Int], offset: Int
        }
        var firstKey: [View: String] = [:]
        var aliases: [(key: String, original: String)] = []
        var groups: [String: [Job]] = [:]
        var order: [String] = []
        for (key, tensor) in dict.entries {
            let view = View(storage: tensor.storage.key, byteOffset: tensor.storage.byteOffset, dtype: tensor.dtype,
                            shape: tensor.shape, strides: tensor.strides, offset: tensor.storageOffset)
            if let original = firstKey[view] {
                aliases.append((key, original))
                continue
            }
            firstKey[view] = key
            if groups[tensor.storage.key] == nil { order.append(tensor.storage.key) }
            groups[tensor.storage.key, default: []].append(Job(key: key, tensor: tensor, dtype: storedType(key, tensor.dtype, target), begin: 0))
        }
        var jobs: [Job] = []
        var position = 0
        for storage in order {
            for var job in groups[storage] ?? [] {
                job.begin = position
                position += job.bytes
                jobs.append(job)
            }
        }
        return (jobs, aliases)
    }

    /// Floating-point weights take the compact type; BatchNorm statistics stay float32 (a
    /// variance near zero loses too much in 16 bits) and integers keep their type.
    static func storedType(_ key: String, _ dtype: DType, _ target: DType?) -> DType {
        guard let target, dtype.isFloatingPoint else { return dtype }
        if key.hasSuffix("running_mean") || key.hasSuffix("running_var") { return dtype == .float64 ? .float32 : dtype }
        return target
    }

    /// The JSON header: `__metadata__` (sorted), then tensors in data order, padded with spaces
    /// to a multiple of 8 bytes so that the data section starts aligned.
    static func headerText(_ jobs: [Job], metadata: [String: String]) -> String {
        var parts: [String] = []
        if !metadata.isEmpty {
            parts.append("\"__metadata__\":{" + metadata.sorted { $0.key < $1.key }
                .map { "\"\(JSON.escape($0.key))\":\"\(JSON.escape($0.value))\"" }.joined(separator: ",") + "}")
        }
        for job in jobs {
            let shape = job.tensor.shape.map(String.init).joined(separator: ",")
            parts.append("\"\(JSON.escape(job.key))\":{\"dtype\":\"\(job.dtype.safetensorsCode)\",\"shape\":[\(shape)],\"data_offsets\":[\(job.begin),\(job.begin + job.bytes)]}")
        }
        let text = "{" + parts.joined(separator: ",") + "}"
        return text + String(repeating: " ", count: (8 - text.utf8.count % 8) % 8)
    }

    /// Calls `body` with each job's stored bytes, in order, a chunk at a time.
    static func forEachChunk(_ jobs: [Job], of checkpoint: Checkpoint, _ body: ([UInt8]) throws -> Void) throws {
        var out: [UInt8] = []
        for job in jobs {
            try checkpoint.streamElements(of: job.tensor, chunkBytes: chunkBytes) { raw in
                Conversion.convert(raw, from: job.tensor.dtype, to: job.dtype, into: &out)
                try body(out)
            }
        }
    }

    /// Reads the finished file back through the strict reader and compares every tensor with
    /// the source, re-read and re-converted.
    static func verify(_ path: String, against source: Checkpoint, jobs: [Job], aliases: [(key: String, original: String)]) throws {
        let written = try Checkpoint(path: path)
        func fail(_ message: String) -> CheckpointError { CheckpointError(.corrupt, path: path, "verification failed: \(message)") }
        guard written.stateDict.entries.count == jobs.count + aliases.count else {
            throw fail("\(written.stateDict.entries.count) tensors written, \(jobs.count + aliases.count) expected")
        }
        var expected: [UInt8] = []
        let actual = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * chunkBytes, alignment: 64)  // a chunk, at most 4x converted
        defer { actual.deallocate() }
        for job in jobs {
            guard let stored = written.stateDict[job.key], stored.dtype == job.dtype, stored.shape == job.tensor.shape else {
                throw fail("tensor \(job.key) is missing or has the wrong dtype or shape")
            }
            // The written bytes stream through the same chunking, in step with the source's.
            var offset = 0
            try source.streamElements(of: job.tensor, chunkBytes: chunkBytes) { raw in
                Conversion.convert(raw, from: job.tensor.dtype, to: job.dtype, into: &expected)
                try written.readBytes(of: stored.storage, at: offset, into: UnsafeMutableRawBufferPointer(rebasing: actual[0 ..< expected.count]))
                guard expected.withUnsafeBytes({ equal($0, UnsafeRawBufferPointer(rebasing: actual[0 ..< expected.count])) }) else {
                    throw fail("tensor \(job.key) differs from the source near byte \(offset)")
                }
                offset += expected.count
            }
        }
    }

    /// memcmp of two byte ranges (Sequence.elementsEqual compares byte by byte, 20x slower).
    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let x = a.baseAddress, let y = b.baseAddress else { return true }  // both empty
        return memcmp(x, y, a.count) == 0
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws {
        var done = 0
        try bytes.withUnsafeBytes { raw in
            while done < raw.count {
                let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
                guard n > 0 else {
                    throw CheckpointError(.io, path: path, at: "byte \(offset + done)", "write failed: \(String(cString: strerror(errno)))")
                }
                done += n
            }
        }
    }
}

/// SHA-256 of a file on another thread.
final class BackgroundHash: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<String, Error> = .success("")

    init(path: String) {
        Thread.detachNewThread { [self] in
            result = Result { try SHA256.file(path) }
            done.signal()
        }
    }

    func wait() throws -> String {
        done.wait()
        return try result.get()
    }
}

/// Element conversions for storing and reading compact types, rounding to nearest even as
/// PyTorch does (`tensor.half()`, `tensor.bfloat16()`). float64 goes through float32 first, as
/// PyTorch's conversions do.
public enum Conversion {
    /// float32 -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN.
    public static func bfloat16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// Converts little-endian elements of `from` into `to`, replacing `out`'s contents.
    static func convert(_ raw: UnsafeRawBufferPointer, from: DType, to: DType, into out: inout [UInt8]) {
        let n = raw.count / from.size
        guard from != to, to.isFloatingPoint, from.isFloatingPoint else {
            out.removeAll(keepingCapacity: true)
            out.append(contentsOf: raw)  // plan() converts floating types only
            return
        }
        let floats = from == .float32 ? nil : from.floats(from: raw)
        out = [UInt8](unsafeUninitializedCapacity: n * to.size) { buffer, count in
            let target = UnsafeMutableRawBufferPointer(buffer)
            func value(_ i: Int) -> Float { floats?[i] ?? raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
            switch to {
            case .float16: for i in 0 ..< n { target.storeBytes(of: Float16(value(i)).bitPattern.littleEndian, toByteOffset: i * 2, as: UInt16.self) }
            case .bfloat16: for i in 0 ..< n { target.storeBytes(of: bfloat16(value(i)).littleEndian, toByteOffset: i * 2, as: UInt16.self) }
            default: for i in 0 ..< n { target.storeBytes(of: value(i).bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
            }
            count = n * to.size
        }
    }
}
