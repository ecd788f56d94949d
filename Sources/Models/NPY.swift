import Checkpoint
import Foundation

/// NumPy's `.npy` format: float32 arrays (the input and output files of `zoo run`) and int64
/// arrays (the demo's labels).
/// Format: `\x93NUMPY`, version, header length, a Python-literal dict header, raw data.
/// A file can never make the reader trap: every length it states is checked against its size.
public enum NPY {
    /// The float32 (`'<f4'`) array in the `.npy` file at `path`, with its shape.
    ///
    /// - Throws: `ModelError.badInput` naming the file when it cannot be read, is not a C-ordered
    ///   float32 `.npy` file, or states lengths its size does not hold.
    public static func read(path: String) throws -> Tensor {
        try decode(try contents(path), path: path)
    }

    /// A 1-d or n-d int64 (`'<i8'`) array, flattened in row-major order.
    public static func readInt64(path: String) throws -> [Int] {
        try decodeInt64(try contents(path), path: path)
    }

    /// The float32 array in `bytes`, the contents of a `.npy` file.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - path: The file's name for error messages; may be empty.
    /// - Throws: `ModelError.badInput` as `read(path:)` does.
    public static func decode(_ bytes: [UInt8], path: String = "") throws -> Tensor {
        let array = try parse(bytes, path: path, elementSize: 4, descr: "<f4", typeName: "float32")
        // Safe: the data is exactly count * 4 bytes (checked by parse), so every load is inside it.
        let values = bytes[array.dataStart...].withUnsafeBytes { raw in
            (0 ..< array.count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        }
        return Tensor(shape: array.shape, data: values)
    }

    /// The int64 (`'<i8'`) array in `bytes`, flattened in row-major order.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - path: The file's name for error messages; may be empty.
    /// - Throws: `ModelError.badInput` when `bytes` are not a C-ordered int64 `.npy` file.
    public static func decodeInt64(_ bytes: [UInt8], path: String = "") throws -> [Int] {
        let array = try parse(bytes, path: path, elementSize: 8, descr: "<i8", typeName: "int64")
        // Safe: the data is exactly count * 8 bytes (checked by parse).
        return bytes[array.dataStart...].withUnsafeBytes { raw in
            (0 ..< array.count).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) }
        }
    }

    private static func contents(_ path: String) throws -> [UInt8] {
        do { return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw ModelError.badInput("\(path): cannot read: \(error.localizedDescription)")
        }
    }

    /// Checks the magic, version, header and data length; returns where the data starts, the
    /// shape and the element count.
    private static func parse(_ bytes: [UInt8], path: String, elementSize: Int, descr wanted: String,
                              typeName: String) throws -> (dataStart: Int, shape: [Int], count: Int) {
        func fail(_ message: String) -> ModelError { ModelError.badInput("\(path): \(message)") }
        guard bytes.count >= 10, bytes.prefix(6).elementsEqual([0x93] + Array("NUMPY".utf8)) else {
            throw fail("not a NumPy .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let (lengthBytes, start): (Int, Int) = major == 1 ? (2, 8) : (4, 8)
        guard major >= 1 && major <= 3, bytes.count >= start + lengthBytes else { throw fail("unsupported .npy version \(major)") }
        let headerLength = (0 ..< lengthBytes).reduce(0) { $0 | Int(bytes[start + $1]) << (8 * $1) }
        let dataStart = start + lengthBytes + headerLength
        guard dataStart <= bytes.count else { throw fail("header of \(headerLength) bytes runs past the end of the file") }
        let header = String(decoding: bytes[(start + lengthBytes) ..< dataStart], as: UTF8.self)
        guard let descr = field(header, "descr") else { throw fail("header has no 'descr': \(header)") }
        let dtype = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
        guard dtype == wanted || dtype == "=" + wanted.dropFirst() else {
            throw fail("dtype \(dtype) is not \(typeName) ('\(wanted)'); convert with x.astype(numpy.\(typeName))")
        }
        guard field(header, "fortran_order")?.hasPrefix("False") == true else {
            throw fail("Fortran-ordered arrays are not supported; save numpy.ascontiguousarray(x)")
        }
        guard let shapeText = field(header, "shape") else { throw fail("header has no 'shape'") }
        let shape = try shapeText.split(whereSeparator: { "(), ".contains($0) }).map { part -> Int in
            guard let n = Int(part), n >= 0 else { throw fail("bad shape \(shapeText)") }
            return n
        }
        var count = 1
        for n in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else { throw fail("shape \(shape) overflows") }
            count = product
        }
        let (needed, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard !overflow, bytes.count - dataStart == needed else {
            throw fail("shape \(shape) needs \(overflow ? "more than Int.max" : String(needed)) bytes of data, the file has \(bytes.count - dataStart)")
        }
        return (dataStart, shape, count)
    }

    /// The value text of `key` in a header dict such as `{'descr': '<f4', 'shape': (1, 3), }`.
    private static func field(_ header: String, _ key: String) -> String? {
        guard let range = header.range(of: "'\(key)':") else { return nil }
        var rest = header[range.upperBound...].drop(while: { $0 == " " })
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        rest = rest.prefix { $0 != "," && $0 != "}" }
        return String(rest)
    }

    /// `tensor` as a version 1.0 `.npy` file of little-endian float32, header padded to 64 bytes as NumPy pads it.
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        let shape = tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        out += [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        out += Array(header.utf8)
        tensor.data.withUnsafeBytes { out += $0 }
        return out
    }

    /// Writes through a temporary file in the same folder, renamed into place.
    public static func write(_ tensor: Tensor, to path: String) throws {
        try AtomicFile.write(encode(tensor), to: path)
    }
}
