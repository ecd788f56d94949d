import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that a crash at any moment leaves either the old file or the complete new
/// one under `path`, never a partial one: data goes to a temporary name in the same folder, is
/// flushed to disk, checked by `verify`, and only then renamed into place.
public enum AtomicFile {
    public static func write(to path: String, _ body: (FileHandle) throws -> Void,
                             verify: (String) throws -> Void = { _ in }) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let temporary = folder + "/." + url.lastPathComponent + "." + UUID().uuidString.prefix(8) + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
              let handle = FileHandle(forWritingAtPath: temporary) else {
            throw CheckpointError(.io, path: path, "cannot create a temporary file in \(folder): \(String(cString: strerror(errno)))")
        }
        do {
            defer { try? handle.close() }
            try body(handle)
            try handle.synchronize()
        } catch {
            unlink(temporary)
            throw error
        }
        do {
            try verify(temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CheckpointError(.io, path: path, "cannot move the finished file into place: \(reason)")
        }
    }

    /// Whether `a` and `b` name the same file, through `..`, symbolic links or hard links.
    public static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
        return false
    }

    /// Writes `bytes` atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { try $0.write(contentsOf: bytes) }
    }
}
