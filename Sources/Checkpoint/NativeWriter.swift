import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes any checkpoint zoo reads as a safetensors file (zoo's native format), storage by
/// storage in fixed-size chunks, so memory stays flat whatever the checkpoint's size.
///
/// The file is written under a temporary name beside `output` and checked before it is renamed
/// into place: each chunk is read back from the file right after it is written and compared with
/// the converted source bytes still in memory (bit-exact for the same dtype, exact rounding for
/// compaction); once flushed to disk, the file is opened through the strict reader, which must
/// list exactly the planned tensors (dtype, shape, offset), and its header is read back.
///
/// The steps overlap, so that converting costs little more than copying: the source is hashed
/// on a second thread while the first converts and writes, and the written data is flushed to
/// disk in the background as it is written, so that the final flush waits for the tail only.
public enum NativeWriter {
    /// How to write: the stored dtype, the metadata, and which checks may be relaxed.
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
        /// When it is given, the header is final from the start, and the written file is hashed
        /// as it is written (`Report.sha256`).
        public var sourceSHA256: String?
        /// Write more than `maxExpansion` times the source's size (plus `expansionFloor`): views
        /// that repeat data, a storage read by many tensors. Off, such a file is refused.
        public var allowExpansion: Bool
        /// Store identical views of one storage once, recording the other keys as `aliases` in the
        /// metadata (zoo's reader restores them; other readers see only the stored keys). By
        /// default every key is stored, so that every safetensors reader returns the whole state dict.
        public var dedup: Bool

        /// Options with every setting given or left at its default: each dtype kept, no architecture,
        /// no extra metadata, the source hashed here, expansion refused, every key stored.
        ///
        /// - Parameters:
        ///   - dtype: The floating-point type to store weights in, or nil to keep each tensor's.
        ///   - architecture: The architecture name recorded in the metadata, when known.
        ///   - version: zoo's version recorded in the metadata; empty records none.
        ///   - extra: More `__metadata__` entries.
        ///   - sourceSHA256: The source's SHA-256 in hex, when already computed.
        ///   - allowExpansion: Whether a file larger than `maxExpansion` times the source may be written.
        ///   - dedup: Whether identical views of one storage are stored once, as aliases.
        public init(dtype: DType? = nil, architecture: String? = nil, version: String = "", extra: [String: String] = [:],
                    sourceSHA256: String? = nil, allowExpansion: Bool = false, dedup: Bool = false) {
            self.sourceSHA256 = sourceSHA256
            self.allowExpansion = allowExpansion
            self.dedup = dedup
            self.dtype = dtype
            self.architecture = architecture
            self.version = version
            self.extra = extra
        }
    }

    /// What a conversion wrote; encoded with snake_case keys (`source_sha256`, `data_bytes`, ...).
    public struct Report: Sendable, Codable {
        /// The checkpoint that was converted.
        public var source: String
        /// The safetensors file written.
        public var output: String
        /// The source file's SHA-256, 64 lowercase hex digits.
        public var sourceSHA256: String
        /// State-dict keys written, aliases included.
        public var tensors: Int
        /// Alias -> stored key, for tensors that were the same view of one storage.
        public var aliases: [String: String]
        /// Bytes of tensor data in the output (after the header).
        public var dataBytes: Int
        /// Size of the output file in bytes: header plus data.
        public var fileBytes: Int
        /// Tensors stored in a different dtype than the source's.
        public var converted: Int
        /// The `__metadata__` written to the header (format, source file and hash, architecture, version, extras).
        public var metadata: [String: String]
        /// The SHA-256 of the written file, when `Options.sourceSHA256` was given (nil otherwise).
        public var sha256: String?

        enum CodingKeys: String, CodingKey {
            case source, output, tensors, aliases, converted, metadata, sha256
            case sourceSHA256 = "source_sha256"
            case dataBytes = "data_bytes"
            case fileBytes = "file_bytes"
        }
    }

    /// Tensor data a conversion may write without `allowExpansion`: this many times the
    /// source file, plus `expansionFloor`. Each storage is written once per distinct view of it,
    /// so only repeated or stride-0 views (and deflated archives) can get near it.
    public static let maxExpansion = 4
    /// Bytes of tensor data (64 MiB) always allowed on top of `maxExpansion` times the source, so
    /// that small sources with repeated views still convert.
    public static let expansionFloor = 64 << 20

    /// Bytes converted, written and read back at a time: small enough to stay in the CPU's cache
    /// between these steps (4 MiB costs twice the system time here).
    static let chunkBytes = 1 << 20

    /// One tensor to store: where it comes from, how it is stored, where it goes.
    struct Job {
        var key: String
        var tensor: TensorRecord
        var dtype: DType
        var begin: Int
        var bytes: Int { tensor.elementCount * dtype.size }
    }

    /// Converts `checkpoint` into a safetensors file at `output`.
    public static func write(_ checkpoint: CheckpointFile, to output: String, options: Options = Options()) throws -> Report {
        if let target = options.dtype, target != .float16 && target != .bfloat16 {
            throw CheckpointError(.unsupported, path: output, "compaction to \(target.rawValue); choose float16 or bfloat16")
        }
        if AtomicFile.sameFile(output, checkpoint.path) {
            throw CheckpointError(.io, path: output, "refusing to overwrite the checkpoint being converted; choose another output")
        }
        let (jobs, aliases) = plan(checkpoint.stateDict, dtype: options.dtype, dedup: options.dedup)
        if !options.allowExpansion {
            let sourceBytes = (try? FileManager.default.attributesOfItem(atPath: checkpoint.path)[.size] as? Int) ?? 0
            let written = jobs.reduce(0) { total, job in
                let (sum, overflow) = total.addingReportingOverflow(job.bytes)
                return overflow ? Int.max : sum
            }
            let limit = expansionFloor + maxExpansion * sourceBytes
            guard written <= limit else {
                throw CheckpointError(.unsupported, path: checkpoint.path,
                    "converting would write \(written) bytes of tensors from a file of \(sourceBytes) bytes, more than \(maxExpansion)x it plus \(expansionFloor >> 20) MiB "
                    + "(views that repeat data, or a storage read by many tensors); pass --allow-expansion if you expect that")
            }
        }

        // The source hash runs on the second core while the first converts.
        let source = checkpoint.path
        let hash = options.sourceSHA256 == nil ? BackgroundTask { try SHA256Hasher.file(source) } : nil

        var metadata = options.extra
        metadata["format"] = "pt"
        metadata["source_file"] = URL(fileURLWithPath: checkpoint.path).lastPathComponent
        metadata["source_format"] = checkpoint.format.rawValue
        metadata["source_sha256"] = options.sourceSHA256 ?? String(repeating: "0", count: 64)  // patched in once known
        if let arch = options.architecture { metadata["architecture"] = arch }
        if !options.version.isEmpty { metadata["zoo_version"] = options.version }
        if !aliases.isEmpty {
            metadata[SafetensorsHeader.aliasesKey] = "{" + aliases.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\"\(JSON.escape($0.key))\":\"\(JSON.escape($0.original))\"" }.joined(separator: ",") + "}"
        }
        let header = Array(headerText(jobs, metadata: metadata).utf8)
        let prefix = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
        let placeholder = Array("\"source_sha256\":\"\(metadata["source_sha256"]!)\"".utf8)
        guard let hashRange = prefix.firstRange(of: placeholder) else {
            throw CheckpointError(.io, path: output, "internal: no hash placeholder in the header")
        }
        let dataBytes = jobs.last.map { $0.begin + $0.bytes } ?? 0
        var final = prefix
        var outputHash: String?

        try AtomicFile.write(to: output, { handle, temporary in
            let fd = handle.fileDescriptor
            let reader = open(temporary, O_RDONLY | O_CLOEXEC)  // the handle is write-only
            guard reader >= 0 else {
                throw CheckpointError(.io, path: temporary, "cannot open to read back: \(String(cString: strerror(errno)))")
            }
            defer { close(reader) }
            let writeBack = WriteBack(fd)
            defer { writeBack.finish() }
            // With the source's hash known, the header is final: the file is hashed as it is written.
            let hasher = options.sourceSHA256 == nil ? nil : PipelinedHash()
            try writeAll(fd, prefix, at: 0, path: temporary)
            hasher?.update(prefix)
            var position = prefix.count
            let actual = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * chunkBytes, alignment: 64)  // a chunk, at most 4x converted
            defer { actual.deallocate() }
            try forEachChunk(jobs, of: checkpoint) { job, chunk in
                try writeAll(fd, chunk, at: position, path: temporary)
                hasher?.update([UInt8](chunk))
                // Read back at once, while the chunk is in memory and the written pages are hot.
                let back = UnsafeMutableRawBufferPointer(rebasing: actual[0 ..< chunk.count])
                try readAll(reader, into: back, at: position, path: temporary)
                guard equal(chunk, UnsafeRawBufferPointer(back)) else {
                    throw CheckpointError(.corrupt, path: temporary, "verification failed: tensor \(job.key) differs from the source near byte \(position)")
                }
                position += chunk.count
                writeBack.wrote(upTo: position)
            }
            if options.sourceSHA256 == nil {
                let sha = try hash?.wait() ?? ""
                final.replaceSubrange(hashRange, with: Array("\"source_sha256\":\"\(sha)\"".utf8))
                metadata["source_sha256"] = sha
                try writeAll(fd, Array(final[hashRange]), at: hashRange.lowerBound, path: temporary)
            }
            outputHash = hasher?.finalize()
        }, verify: { temporary in
            try verify(temporary, prefix: final, jobs: jobs, aliases: aliases)
        })
        return Report(source: checkpoint.path, output: output, sourceSHA256: metadata["source_sha256"]!, tensors: jobs.count + aliases.count,
                      aliases: Dictionary(aliases.map { ($0.key, $0.original) }, uniquingKeysWith: { a, _ in a }), dataBytes: dataBytes,
                      fileBytes: final.count + dataBytes, converted: jobs.filter { $0.dtype != $0.tensor.dtype }.count,
                      metadata: metadata, sha256: outputHash)
    }

    /// Which tensors to store and where: with `dedup`, identical views of one storage are stored
    /// once and recorded as aliases; the data of one storage is kept together, in first-use order.
    /// Aliases are a list, not a dictionary: keys that differ only in Unicode normal form are
    /// two keys (as in Python), and a Swift `String`-keyed dictionary would merge them.
    static func plan(_ dict: StateDict, dtype target: DType?, dedup: Bool = false) -> (jobs: [Job], aliases: [(key: String, original: String)]) {
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
            if dedup, let original = firstKey[view] {
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

    /// Calls `body` with each job's stored bytes, in order, a chunk at a time (as read when the
    /// dtype stays, so without a copy).
    static func forEachChunk(_ jobs: [Job], of checkpoint: CheckpointFile, _ body: (Job, UnsafeRawBufferPointer) throws -> Void) throws {
        var out: [UInt8] = []
        for job in jobs {
            try checkpoint.streamElements(of: job.tensor, chunkBytes: chunkBytes) { raw in
                guard job.dtype != job.tensor.dtype else { return try body(job, raw) }
                Conversion.convert(raw, from: job.tensor.dtype, to: job.dtype, into: &out)
                try out.withUnsafeBytes { try body(job, $0) }
            }
        }
    }

    /// Opens the flushed file through the strict reader: it must list exactly the planned
    /// tensors, each with its dtype, shape and offset, and its header must read back as written.
    /// (The data was compared with the source chunk by chunk as it was written.)
    static func verify(_ path: String, prefix: [UInt8], jobs: [Job], aliases: [(key: String, original: String)]) throws {
        let written = try CheckpointFile(path: path)
        func fail(_ message: String) -> CheckpointError { CheckpointError(.corrupt, path: path, "verification failed: \(message)") }
        guard written.stateDict.entries.count == jobs.count + aliases.count else {
            throw fail("\(written.stateDict.entries.count) tensors written, \(jobs.count + aliases.count) expected")
        }
        for job in jobs {
            guard let stored = written.stateDict[job.key], stored.dtype == job.dtype, stored.shape == job.tensor.shape,
                  written.fileOffset(of: stored.storage) == prefix.count + job.begin else {
                throw fail("tensor \(job.key) is missing or has the wrong dtype, shape or offset")
            }
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("cannot reopen: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let back = UnsafeMutableRawBufferPointer.allocate(byteCount: prefix.count, alignment: 8)
        defer { back.deallocate() }
        try readAll(fd, into: back, at: 0, path: path)
        guard prefix.withUnsafeBytes({ equal($0, UnsafeRawBufferPointer(back)) }) else { throw fail("the header differs from the one written") }
    }

    /// memcmp of two byte ranges (Sequence.elementsEqual compares byte by byte, 20x slower).
    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let x = a.baseAddress, let y = b.baseAddress else { return true }  // both empty
        return memcmp(x, y, a.count) == 0
    }

    static func readAll(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws {
        var done = 0
        while done < buffer.count {
            // baseAddress is non-nil: the loop runs only for a non-empty buffer.
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            guard n > 0 else {
                if n < 0 && errno == EINTR { continue }
                throw CheckpointError(.io, path: path, at: "byte \(offset + done)", "read back failed: \(n == 0 ? "end of file" : String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, at: offset, path: path) }
    }

    static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer, at offset: Int, path: String) throws {
        var done = 0
        while done < raw.count {
            // baseAddress is non-nil: the loop runs only for a non-empty buffer.
            let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
            guard n > 0 else {
                if n < 0 && errno == EINTR { continue }
                throw CheckpointError(.io, path: path, at: "byte \(offset + done)", "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}

/// Work on another thread (the second core), joined with `wait()`.
public final class BackgroundTask<Value: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<Value, Error>?  // written before `done` signals, read after

    /// Starts `work` at once on a new thread; `wait()` returns its value.
    public init(_ work: @escaping @Sendable () throws -> Value) {
        Thread.detachNewThread { [self] in
            result = Result { try work() }
            done.signal()
        }
    }

    /// The work's value, or its error, once it has finished.
    public func wait() throws -> Value {
        done.wait()
        done.signal()  // so that a later wait returns at once
        return try result!.get()
    }
}

/// SHA-256 of a stream of chunks, computed on another thread; at most `depth` chunks wait.
final class PipelinedHash: @unchecked Sendable {
    private let hasher = SHA256Hasher()  // used on `queue` only
    private let queue = DispatchQueue(label: "zoo.hash")
    private let slots: DispatchSemaphore

    init(depth: Int = 4) { slots = DispatchSemaphore(value: depth) }

    func update(_ bytes: [UInt8]) {
        slots.wait()
        queue.async { [self] in
            hasher.update(bytes)
            slots.signal()
        }
    }

    func finalize() -> String { queue.sync { hasher.finalize() } }
}

/// Asks the kernel to write a file's data to disk while more is being written (fdatasync on
/// another thread, every `step` bytes), so that the final flush waits only for the tail.
final class WriteBack: @unchecked Sendable {
    private let fd: Int32
    private let step: Int
    private let queue = DispatchQueue(label: "zoo.writeback")
    private let idle = DispatchSemaphore(value: 1)  // one flush at a time; a busy flusher is skipped
    private var flushed = 0  // used on the writing thread only

    init(_ fd: Int32, step: Int = 32 << 20) {
        self.fd = fd
        self.step = step
    }

    func wrote(upTo position: Int) {
        guard position - flushed >= step, idle.wait(timeout: .now()) == .success else { return }
        flushed = position
        queue.async { [self] in
            #if os(Linux)
            fdatasync(fd)
            #else
            fsync(fd)  // Darwin has no fdatasync
            #endif
            idle.signal()
        }
    }

    /// Waits for the flush in flight; call before closing the file.
    func finish() { queue.sync {} }
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
