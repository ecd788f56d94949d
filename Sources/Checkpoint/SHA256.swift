import COpenSSL
import Foundation

/// SHA-256 through OpenSSL's libcrypto (the one file that calls it), which uses the CPU's SHA
/// extensions: about 1.5 GB/s here, where a portable Swift implementation manages a fifth.
public final class SHA256 {
    private let context: OpaquePointer

    public init() {
        // EVP_MD_CTX_new fails only when memory is exhausted, which Swift treats as fatal anyway.
        context = EVP_MD_CTX_new()!
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes(update) }

    /// The digest as 64 lowercase hex digits; the hasher cannot be used afterwards.
    public func finalize() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return digest.map { String(format2: $0) }.joined()
    }

    /// The SHA-256 of a whole file, read in 8 MiB blocks (memory stays flat for any size).
    public static func file(_ path: String, progress: ((Int) -> Void)? = nil) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CheckpointError(.io, path: path, "cannot open to hash: \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        let hasher = SHA256()
        var done = 0
        while true {
            let block: Data
            do { block = try handle.read(upToCount: 8 << 20) ?? Data() } catch {
                throw CheckpointError(.io, path: path, at: "byte \(done)", "read failed: \(error.localizedDescription)")
            }
            if block.isEmpty { break }
            block.withUnsafeBytes(hasher.update)
            done += block.count
            progress?(done)
        }
        return hasher.finalize()
    }
}
