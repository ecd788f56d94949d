#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory. The legacy, tar and safetensors readers parse it
/// in place, so only the pages a reader touches are ever read from disk.
final class MappedFile {
    let path: String
    let bytes: UnsafeRawBufferPointer
    /// Kept open for `copy(_:into:)`, which reads without faulting the mapping in.
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError(.io, path: path, "cannot open: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw CheckpointError(.io, path: path, "not a regular file")
        }
        descriptor = fd
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else {
            close(fd)
            throw CheckpointError(.io, path: path, "cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
        close(descriptor)
    }

    /// Copies the bytes of `region` (a slice of `bytes`) into `destination` with pread: one copy
    /// from the page cache, about three times faster than faulting the mapping in page by page.
    func copy(_ region: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws {
        guard let start = region.baseAddress, let base = bytes.baseAddress, let target = destination.baseAddress else { return }
        // Safe: `region` lies inside the mapping (so `offset` is a file offset) and pread writes
        // at most `region.count - done` bytes at `target + done`, inside `destination`.
        precondition(destination.count >= region.count && start >= base && start + region.count <= base + bytes.count)
        var done = 0
        let offset = start - base
        while done < region.count {
            let n = pread(descriptor, target + done, region.count - done, off_t(offset + done))
            guard n > 0 else {
                throw CheckpointError(.io, path: path, at: "byte \(offset + done)", "read failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    /// Calls `body` with the bytes of `region` (a slice of `bytes`), at most `chunkBytes` at a
    /// time, each read by pread into one reused buffer: no page faults on the mapping, flat memory.
    func stream(_ region: UnsafeRawBufferPointer, chunkBytes: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let step = max(chunkBytes, 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: step, alignment: 64)
        defer { buffer.deallocate() }
        var position = 0
        while position < region.count {
            // Safe: `count` fits both the buffer and what is left of `region`.
            let count = min(step, region.count - position)
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< count])
            try copy(UnsafeRawBufferPointer(rebasing: region[position ..< position + count]), into: chunk)
            try body(UnsafeRawBufferPointer(chunk))
            position += count
        }
    }

    /// `count` bytes at `offset`, or a corrupt-file error naming what was being read.
    func slice(_ offset: Int, _ count: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        guard offset >= 0, count >= 0, offset <= bytes.count, count <= bytes.count - offset else {
            throw CheckpointError(.corrupt, path: path, at: "byte \(offset)",
                "\(what) needs \(count) bytes but the file has \(max(0, bytes.count - max(offset, 0))) left")
        }
        return UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + count])
    }

    /// Asks for transparent huge pages on a large fresh buffer (this kernel gives them only on
    /// request): filling it then takes one fault per 2 MiB instead of one per 4 KiB.
    static func preferHugePages(_ region: UnsafeMutableRawBufferPointer) {
        // Safe: only advises the kernel, on whole huge pages inside `region`.
        let huge = 2 << 20
        guard let base = region.baseAddress, region.count >= 2 * huge else { return }
        let start = (Int(bitPattern: base) + huge - 1) / huge * huge
        let end = (Int(bitPattern: base) + region.count) / huge * huge
        guard end > start, let pointer = UnsafeMutableRawPointer(bitPattern: start) else { return }
        #if os(Linux)
        madvise(pointer, end - start, MADV_HUGEPAGE)
        #endif
    }

    /// Calls `body` with `bytes` (a slice of a mapping) typed as `T`, or returns nil when they
    /// are not aligned for `T`. Safe: the mapping outlives the call and the count is whole `T`s.
    static func withElements<T, R>(of bytes: UnsafeRawBufferPointer, as type: T.Type,
                                   _ body: (UnsafeBufferPointer<T>) throws -> R) throws -> R? {
        guard let base = bytes.baseAddress, Int(bitPattern: base) % MemoryLayout<T>.alignment == 0 else {
            return bytes.isEmpty ? try body(UnsafeBufferPointer(start: nil, count: 0)) : nil
        }
        return try body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: T.self), count: bytes.count / MemoryLayout<T>.stride))
    }

    func int64(at offset: Int, _ what: String) throws -> Int64 {
        let raw = try slice(offset, 8, what)
        return Int64(littleEndian: raw.loadUnaligned(as: Int64.self))
    }
}
