import Testing
@testable import Models

/// `.npy` files are user input: every malformed one is refused with a message, none traps.
@Suite struct NPYTests {
    /// A version-1.0 `.npy` of int64 values, as `numpy.save` writes it.
    static func int64File(_ values: [Int64], shape: String) -> [UInt8] {
        var header = "{'descr': '<i8', 'fortran_order': False, 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        out += Array(header.utf8)
        for v in values { out += withUnsafeBytes(of: v.littleEndian, Array.init) }
        return out
    }

    @Test func int64RoundTrip() throws {
        #expect(try NPY.decodeInt64(Self.int64File([3, -1, 9, 0], shape: "(4,)")) == [3, -1, 9, 0])
        #expect(try NPY.decodeInt64(Self.int64File([1, 2, 3, 4, 5, 6], shape: "(2, 3)")) == [1, 2, 3, 4, 5, 6])
        #expect(try NPY.decodeInt64(Self.int64File([], shape: "(0,)")) == [])
    }

    @Test func shortOrGarbledHeadersAreRefused() throws {
        let good = Self.int64File([3, 1, 4], shape: "(3,)")
        var longer = good
        longer[8] = 0xFF  // header length beyond the file
        var garbled = good
        garbled.replaceSubrange(10 ..< 20, with: [UInt8](repeating: 0xFE, count: 10))  // no 'descr'
        var float32 = good
        float32.replaceSubrange(try #require(good.firstRange(of: Array("<i8".utf8))), with: Array("<f4".utf8))
        let cases: [(String, [UInt8], String)] = [
            ("empty", [], "not a NumPy"),
            ("magic only", Array(good.prefix(6)), "not a NumPy"),
            ("cut inside the length", Array(good.prefix(9)), "not a NumPy"),
            ("cut inside the header", Array(good.prefix(20)), "runs past the end"),
            ("header length past the end", longer, "runs past the end"),
            ("garbled header", garbled, "no 'descr'"),
            ("missing data", Array(good.dropLast(3)), "needs 24 bytes of data"),
            ("float32, not int64", float32, "dtype <f4 is not int64"),
            ("version 9", Array(good.prefix(6)) + [9, 0] + Array(good.dropFirst(8)), "unsupported .npy version 9"),
        ]
        for (name, bytes, said) in cases {
            let error = #expect(throws: ModelError.self, "\(name)") { try NPY.decodeInt64(bytes, path: "labels.npy") }
            #expect(error?.description.contains(said) == true, "\(name): \(String(describing: error))")
            #expect(error?.description.contains("labels.npy") == true, "\(name): names the file")
        }
        // Every prefix of a good file is refused, none traps.
        for n in 0 ..< good.count { #expect(throws: ModelError.self) { try NPY.decodeInt64(Array(good.prefix(n))) } }
    }
}
