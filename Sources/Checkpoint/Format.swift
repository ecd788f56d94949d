/// The on-disk formats zoo tells apart, decided from the bytes and never from the extension.
public enum CheckpointFormat: String, Sendable, Codable {
    /// torch >= 1.6: a zip archive of `data.pkl` and one record per storage.
    case zip
    /// torch 0.1.10 - 1.5: stacked pickles after the magic number (the official VGG files).
    case legacy
    /// torch < 0.1.10: a tar archive (torchvision's first ResNet files).
    case tar
    /// `torch.jit.save`: a zip archive with `constants.pkl` and `code/`.
    case torchscript
    /// The safetensors layout, zoo's native format.
    case safetensors

    /// `0x1950a86a20f9469cfc6c`, the first pickle of a legacy file, as LONG1 stores it.
    static let legacyMagic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]

    /// Decides the format from the first bytes of a file, or explains what the bytes look like.
    ///
    /// The safetensors layout is tested first and by its whole structure: a little-endian
    /// length `N <= fileSize - 8` followed by `{`. No zip, tar or torch pickle can look like that
    /// (their byte 8 is a compression method, a NUL of a short name, or inside the legacy magic),
    /// while a safetensors file whose `N` is 128 mod 256 starts with the pickle byte `0x80`.
    /// - Parameters:
    ///   - head: at least the first 512 bytes of the file, or all of it when shorter.
    ///   - fileSize: the size of the whole file.
    static func sniff(_ head: UnsafeRawBufferPointer, fileSize: Int, path: String) throws -> CheckpointFormat {
        func starts(with prefix: [UInt8]) -> Bool { head.count >= prefix.count && head.prefix(prefix.count).elementsEqual(prefix) }
        func refuse(_ what: String) -> CheckpointError {
            CheckpointError(.unsupported, path: path, "not a PyTorch checkpoint: \(what)")
        }
        let headerLength: UInt64? = head.count >= 8 ? UInt64(littleEndian: head.loadUnaligned(as: UInt64.self)) : nil
        if let n = headerLength, fileSize >= 8, n <= UInt64(fileSize - 8), head.count > 8, head[8] == UInt8(ascii: "{") {
            return .safetensors
        }
        if starts(with: [0x50, 0x4B, 0x03, 0x04]) || starts(with: [0x50, 0x4B, 0x05, 0x06]) { return .zip }
        if head.count >= 262, head[257 ..< 262].elementsEqual(Array("ustar".utf8)) { return .tar }
        if starts(with: Array("PYTORCH1".utf8)) {
            throw CheckpointError(.unsupported, path: path,
                "a 'PYTORCH1' file from the pre-release serialization of torch 1.0 previews; load it with that torch version and re-save it with torch.save")
        }
        if head.first == 0x80, let at = head.firstRange(of: [0x8A, 0x0A]), at.lowerBound <= 16,
           head.count >= at.upperBound + 10, head[at.upperBound ..< at.upperBound + 10].elementsEqual(legacyMagic) {
            return .legacy  // a pickle whose first value is torch.save's magic number
        }
        if head.first != 0x80, let known = signature(head) { throw refuse(known) }
        // A truncated or damaged safetensors file (a plausible header length followed by '{', or
        // by nothing): the safetensors reader then says precisely what is wrong.
        if let n = headerLength, n <= UInt64(SafetensorsHeader.maxHeaderBytes), head.count == 8 || head[8] == UInt8(ascii: "{") {
            return .safetensors
        }
        if head.first == 0x80 {
            throw refuse("a plain Python pickle (not written by torch.save); zoo does not run arbitrary pickles")
        }
        throw refuse(describe(head))
    }

    /// What a file with a well-known signature is.
    static func signature(_ head: UnsafeRawBufferPointer) -> String? {
        let signatures: [([UInt8], String)] = [
            ([0x1F, 0x8B], "a gzip stream (decompress it first)"),
            ([0x89, 0x50, 0x4E, 0x47], "a PNG image"),
            ([0xFF, 0xD8, 0xFF], "a JPEG image"),
            ([0x7F, 0x45, 0x4C, 0x46], "an ELF executable"),
            ([0x89, 0x48, 0x44, 0x46], "an HDF5 file (Keras weights?)"),
            ([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59], "a NumPy .npy array"),
            ([0x42, 0x5A, 0x68], "a bzip2 stream"),
            ([0xFD, 0x37, 0x7A, 0x58, 0x5A], "an xz stream"),
            ([0x28, 0xB5, 0x2F, 0xFD], "a zstd stream"),
            (Array("<!DOCTYPE".utf8), "an HTML page (a failed download?)"),
            (Array("<html".utf8), "an HTML page (a failed download?)"),
            (Array("version https://git-lfs".utf8), "a Git LFS pointer, not the file itself (run git lfs pull)"),
        ]
        return signatures.first { head.count >= $0.0.count && head.prefix($0.0.count).elementsEqual($0.0) }?.1
    }

    /// A few words on what unknown bytes look like, for an error message.
    static func describe(_ head: UnsafeRawBufferPointer) -> String {
        if let known = signature(head) { return known }
        if head.isEmpty { return "the file is empty" }
        let printable = head.prefix(256).allSatisfy { $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || (0x20 ..< 0x7F).contains($0) }
        if printable { return "text starting \"\(String(decoding: head.prefix(40), as: UTF8.self))\"" }
        let hex = head.prefix(8).map { String(format2: $0) }.joined(separator: " ")
        return "unknown bytes \(hex) ..."
    }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
