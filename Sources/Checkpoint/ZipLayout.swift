/// The byte ranges a zip archive's entries occupy, read from its central directory and local
/// headers, checked as Info-ZIP's `unzip` (6.0 and later) does against non-recursive zip bombs:
/// every entry lies inside the file, before the central directory, and no two entries share a
/// byte. Without this, a hundred kilobytes of central-directory entries pointing at one
/// compressed body make zoo read (and `convert` write) that body thousands of times.
///
/// libzip has already parsed the archive when this runs; only the layout is checked here.
enum ZipLayout {
    struct Entry {
        var name: String
        /// Offset of the local header, and one past the entry's last compressed byte.
        var start: UInt64
        var end: UInt64
    }

    /// Refuses the archive at `path` if its entries overlap or leave the file.
    static func check(path: String) throws {
        let file = try MappedFile(path: path)
        try check(file.bytes, path: path)
    }

    static func check(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        func fail(_ message: String) -> CheckpointError { CheckpointError(.corrupt, path: path, message) }
        func u16(_ at: Int) -> UInt64 { UInt64(bytes[at]) | UInt64(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt64 { u16(at) | u16(at + 2) << 16 }
        func u64(_ at: Int) -> UInt64 { u32(at) | u32(at + 4) << 32 }
        let size = bytes.count

        // End of central directory: the last signature within 64 KiB + 22 bytes of the end.
        guard size >= 22 else { throw fail("too short for a zip archive") }
        var eocd = size - 22
        let lowest = max(0, size - 22 - 0xFFFF)
        while eocd >= lowest, u32(eocd) != 0x0605_4B50 { eocd -= 1 }
        guard eocd >= lowest else { throw fail("no end of central directory record") }
        var count = u16(eocd + 10)
        var directorySize = u32(eocd + 12)
        var directoryOffset = u32(eocd + 16)
        // Zip64: the locator sits just before the end record and points at the zip64 end record.
        if eocd >= 20, u32(eocd - 20) == 0x0706_4B50 {
            let record = u64(eocd - 20 + 8)
            guard size >= 56, record <= UInt64(size - 56), u32(Int(record)) == 0x0606_4B50 else {
                throw fail("the zip64 locator points outside the file")
            }
            count = u64(Int(record) + 32)
            directorySize = u64(Int(record) + 40)
            directoryOffset = u64(Int(record) + 48)
        }
        let (directoryEnd, overflow) = directoryOffset.addingReportingOverflow(directorySize)
        guard !overflow, directoryEnd <= UInt64(size) else {
            throw fail("the central directory (\(directorySize) bytes at \(directoryOffset)) runs past the end of the file (\(size) bytes)")
        }
        // Each central-directory record takes at least 46 bytes.
        guard count <= directorySize / 46 else {
            throw fail("the central directory claims \(count) entries in \(directorySize) bytes")
        }

        var entries: [Entry] = []
        entries.reserveCapacity(Int(count))
        var at = Int(directoryOffset)
        let end = Int(directoryEnd)
        for _ in 0 ..< count {
            guard at + 46 <= end, u32(at) == 0x0201_4B50 else { throw fail("central directory record at \(at) is malformed") }
            var compressed = u32(at + 20)
            var uncompressed = u32(at + 24)
            let nameLength = Int(u16(at + 28)), extraLength = Int(u16(at + 30)), commentLength = Int(u16(at + 32))
            var local = u32(at + 42)
            let next = at + 46 + nameLength + extraLength + commentLength
            guard next <= end else { throw fail("central directory record at \(at) runs past the directory") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(at + 46) ..< (at + 46 + nameLength)]), as: UTF8.self)
            // Zip64 extra field: the 64-bit values of the fields that hold 0xFFFFFFFF, in order.
            var extra = at + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = u16(extra), length = Int(u16(extra + 2))
                guard extra + 4 + length <= extraEnd else { break }
                if id == 0x0001 {
                    var field = extra + 4
                    func wide(_ value: inout UInt64) {
                        if value == 0xFFFF_FFFF, field + 8 <= extra + 4 + length { value = u64(field); field += 8 }
                    }
                    wide(&uncompressed)
                    wide(&compressed)
                    wide(&local)
                }
                extra += 4 + length
            }
            guard local < UInt64(size), UInt64(size) - local >= 30, u32(Int(local)) == 0x0403_4B50 else {
                throw fail("zip entry \(name): its local header at \(local) is not inside the file")
            }
            let header = Int(local)
            let dataStart = local + 30 + u16(header + 26) + u16(header + 28)
            let (dataEnd, over) = dataStart.addingReportingOverflow(compressed)
            guard !over, dataEnd <= directoryOffset else {
                throw fail("zip entry \(name): its \(compressed) compressed bytes at \(dataStart) run past the start of the central directory (\(directoryOffset))")
            }
            entries.append(Entry(name: name, start: local, end: dataEnd))
            at = next
        }
        entries.sort { $0.start < $1.start }
        for (a, b) in zip(entries, entries.dropFirst()) where b.start < a.end {
            throw fail("zip entries \(a.name) and \(b.name) overlap (bytes \(b.start)..<\(min(a.end, b.end))): a zip bomb or a forged archive; unzip refuses it too")
        }
    }
}
