import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that a crash at any moment leaves either the old file or the complete new
/// one under `path`, never a partial one: data goes to a temporary name in the same folder, is
/// flushed to disk, checked by `verify`, and only then renamed into place (and the folder
/// flushed, so the rename itself survives a power cut).
///
/// Temporary names carry the writer's process id (`.name.<pid>.<random>.partial`): a writer that
/// was killed leaves one behind, and the next write to the same path removes it once that
/// process is gone.
public enum AtomicFile {
    /// Writes `path` atomically: `body` fills a temporary file, `verify` checks it, and only then is
    /// it renamed over `path`.
    ///
    /// - Parameters:
    ///   - path: The file to create or replace.
    ///   - body: Writes the contents to the handle of the temporary file.
    ///   - verify: Reads back the finished temporary file (its path is passed) and throws if it
    ///     is wrong; the default accepts anything.
    /// - Throws: What `body` or `verify` throw (the temporary file is removed first), or a
    ///   `CheckpointError` of kind `.io` when the temporary file cannot be created or renamed.
    public static func write(to path: String, _ body: (FileHandle) throws -> Void,
                             verify: (String) throws -> Void = { _ in }) throws {
        try write(to: path, { handle, _ in try body(handle) }, verify: verify)
    }

    /// As `write(to:_:verify:)`, with the temporary file's path passed to `body` as well.
    public static func write(to path: String, _ body: (FileHandle, String) throws -> Void,
                             verify: (String) throws -> Void = { _ in }) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        removeStale(for: path)
        let temporary = temporaryName(for: path)
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
              let handle = FileHandle(forWritingAtPath: temporary) else {
            throw CheckpointError(.io, path: path, "cannot create a temporary file in \(folder): \(String(cString: strerror(errno)))")
        }
        do {
            defer { try? handle.close() }
            try body(handle, temporary)
            try handle.synchronize()
        } catch {
            unlink(temporary)
            throw error
        }
        do {
            try verify(temporary)
        } catch var error as CheckpointError {
            unlink(temporary)
            // The temporary name means nothing to the user and is gone: name the file being written.
            if error.path == temporary {
                error.path = path
                error.message = "read back before renaming into place: " + (error.location.map { "\($0): " } ?? "") + error.message
                error.location = nil
            }
            throw error
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CheckpointError(.io, path: path, "cannot move the finished file into place: \(reason)")
        }
        syncFolder(folder)
    }

    /// A new temporary name beside `path`, owned by this process: `.name.<pid>.<random>.partial`.
    public static func temporaryName(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().path + "/." + url.lastPathComponent + ".\(getpid())." + UUID().uuidString.prefix(8) + ".partial"
    }

    /// Flushes a folder's entries to disk, so a rename into it survives a power cut.
    public static func syncFolder(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// The process that owns a temporary file `write(to:)` made for some path, or nil when
    /// `name` is not one.
    public static func temporaryOwner(_ name: String) -> pid_t? {
        guard name.hasPrefix("."), name.hasSuffix(".partial") else { return nil }
        let parts = name.dropLast(".partial".count).split(separator: ".")
        guard parts.count >= 3, let pid = pid_t(parts[parts.count - 2]), pid > 0 else { return nil }
        return pid
    }

    /// Whether process `pid` is gone (so its temporary files are garbage).
    public static func isDead(_ pid: pid_t) -> Bool {
        kill(pid, 0) != 0 && errno == ESRCH
    }

    /// Removes the temporary files that killed writers of `path` left behind.
    public static func removeStale(for path: String) {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let prefix = "." + url.lastPathComponent + "."
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasPrefix(prefix) {
            if let pid = temporaryOwner(name), isDead(pid) { unlink(folder + "/" + name) }
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
