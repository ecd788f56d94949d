import CZip
#if canImport(Glibc)
import Glibc
#endif

/// The one place zoo calls libzip. A `ZipArchive` owns its `zip_t` handle and closes it in
/// `deinit`; every libzip error becomes a `CheckpointError` carrying libzip's own message.
final class ZipArchive {
    let path: String
    private let handle: OpaquePointer
    /// Entry names in central-directory order.
    let names: [String]
    /// Size of the archive file, the bound for every entry's compressed size.
    private let fileSize: UInt64

    init(path: String) throws {
        self.path = path
        var code: Int32 = 0
        guard let handle = zip_open(path, ZIP_RDONLY, &code) else {
            var error = zip_error_t()
            zip_error_init_with_code(&error, code)
            defer { zip_error_fini(&error) }
            throw CheckpointError(.corrupt, path: path, "not a readable zip archive: \(String(cString: zip_error_strerror(&error)))")
        }
        self.handle = handle
        var info = stat()
        fileSize = stat(path, &info) == 0 ? UInt64(max(info.st_size, 0)) : 0
        let count = zip_get_num_entries(handle, 0)
        var names: [String] = []
        names.reserveCapacity(Int(max(count, 0)))
        for i in 0 ..< max(count, 0) {
            guard let name = zip_get_name(handle, zip_uint64_t(i), ZIP_FL_ENC_RAW) else {
                zip_discard(handle)
                throw CheckpointError(.corrupt, path: path, at: "zip entry \(i)", "unreadable name")
            }
            names.append(String(cString: name))
        }
        self.names = names
        try ZipLayout.check(path: path)  // after full initialisation, so deinit closes the handle
    }

    deinit { zip_discard(handle) }

    private func failure(_ entry: String, _ what: String) -> CheckpointError {
        CheckpointError(.corrupt, path: path, at: "zip entry \(entry)",
                        "\(what): \(String(cString: zip_strerror(handle)))")
    }

    private func index(_ name: String) throws -> zip_uint64_t {
        let i = zip_name_locate(handle, name, ZIP_FL_ENC_RAW)
        guard i >= 0 else { throw CheckpointError(.corrupt, path: path, "the archive has no record \(name)") }
        return zip_uint64_t(i)
    }

    func contains(_ name: String) -> Bool { zip_name_locate(handle, name, ZIP_FL_ENC_RAW) >= 0 }

    /// Deflate cannot expand data more than 1032-fold; an entry claiming more is a bomb or a lie.
    static let maxDeflateRatio: UInt64 = 1032

    /// Uncompressed size of an entry, from the central directory, checked against what its
    /// compressed bytes can hold: a stored entry is its compressed size, a deflated one at most
    /// 1032 times it, and no entry's compressed bytes exceed the file. So no entry can make zoo
    /// allocate more than about a thousand times the file's size, and a stored one (all torch
    /// writes) no more than the file.
    func size(of name: String) throws -> Int {
        var info = zip_stat_t()
        zip_stat_init(&info)
        guard zip_stat_index(handle, try index(name), 0, &info) == 0 else { throw failure(name, "cannot stat") }
        let needed = zip_uint64_t(ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD)
        guard info.valid & needed == needed, info.size <= UInt64(Int.max) else {
            throw CheckpointError(.corrupt, path: path, at: "zip entry \(name)", "no valid sizes in the central directory")
        }
        func fail(_ message: String) -> CheckpointError { CheckpointError(.corrupt, path: path, at: "zip entry \(name)", message) }
        guard info.comp_size <= fileSize else {
            throw fail("claims \(info.comp_size) compressed bytes but the file has \(fileSize)")
        }
        switch Int32(info.comp_method) {
        case ZIP_CM_STORE:
            guard info.size == info.comp_size else {
                throw fail("is stored uncompressed yet claims \(info.size) bytes from \(info.comp_size)")
            }
        case ZIP_CM_DEFLATE:
            guard info.size <= info.comp_size * Self.maxDeflateRatio + 1024 else {
                throw fail("claims \(info.size) bytes from \(info.comp_size) deflated bytes, more than deflate can expand (a decompression bomb)")
            }
        default:
            throw CheckpointError(.unsupported, path: path, at: "zip entry \(name)",
                "compression method \(info.comp_method); torch writes entries stored (0), zoo also reads deflate (8)")
        }
        return Int(info.size)
    }

    /// Bytes an entry occupies in the file (its compressed size), as the central directory says.
    func compressedSize(of name: String) throws -> Int {
        _ = try size(of: name)  // checks the sizes against the file
        var info = zip_stat_t()
        zip_stat_init(&info)
        guard zip_stat_index(handle, try index(name), 0, &info) == 0 else { throw failure(name, "cannot stat") }
        return Int(info.comp_size)  // at most the file's size (checked by size(of:))
    }

    /// The whole entry, decompressed and CRC-checked by libzip. `limit` bounds what a file may
    /// make zoo allocate for it.
    func read(_ name: String, limit: Int = Int.max) throws -> [UInt8] {
        let size = try self.size(of: name)
        guard size <= limit else {
            throw CheckpointError(.corrupt, path: path, at: "zip entry \(name)", "is \(size) bytes, more than the \(limit) expected")
        }
        return try [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            try read(name, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = size
        }
    }

    /// Streams an entry of exactly `size` bytes through a reused buffer of `chunkBytes`.
    func stream(_ name: String, size: Int, chunkBytes: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let file = zip_fopen_index(handle, try index(name), 0) else { throw failure(name, "cannot open") }
        defer { zip_fclose(file) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkBytes, 1), alignment: 64)
        defer { buffer.deallocate() }
        var done = 0
        while done < size {
            let want = min(chunkBytes, size - done)
            var filled = 0
            while filled < want {
                // baseAddress is non-nil: the buffer holds at least one byte.
                let n = zip_fread(file, buffer.baseAddress! + filled, zip_uint64_t(want - filled))
                guard n > 0 else {
                    throw CheckpointError(.corrupt, path: path, at: "zip entry \(name) byte \(done + filled)",
                                          n < 0 ? "read failed: \(String(cString: zip_file_strerror(file)))" : "ends early")
                }
                filled += Int(n)
            }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0 ..< want]))
            done += want
        }
    }

    /// Reads an entry of exactly `buffer.count` bytes into caller-owned memory.
    func read(_ name: String, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard let file = zip_fopen_index(handle, try index(name), 0) else { throw failure(name, "cannot open") }
        defer { zip_fclose(file) }
        var done = 0
        while done < buffer.count {
            // baseAddress is non-nil: the loop runs only for a non-empty buffer.
            let n = zip_fread(file, buffer.baseAddress! + done, zip_uint64_t(buffer.count - done))
            guard n >= 0 else {
                throw CheckpointError(.corrupt, path: path, at: "zip entry \(name) byte \(done)",
                                      "read failed: \(String(cString: zip_file_strerror(file)))")
            }
            guard n > 0 else {
                throw CheckpointError(.corrupt, path: path, at: "zip entry \(name)",
                                      "ends after \(done) of its \(buffer.count) bytes")
            }
            done += Int(n)
        }
        var probe: UInt8 = 0
        guard zip_fread(file, &probe, 1) == 0 else {
            throw CheckpointError(.corrupt, path: path, at: "zip entry \(name)", "is longer than its \(buffer.count) bytes")
        }
    }
}
