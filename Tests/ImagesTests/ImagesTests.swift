import Foundation
import Testing
@testable import Images

/// Tests/Fixtures/images, made by Tests/Fixtures/make_images.py with PIL and torchvision.
enum Fixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/images").path

    struct Pixels: Decodable {
        var width: Int
        var height: Int
        var rgb: [UInt8]
    }
    struct Expected: Decodable {
        var files: [String: Pixels]
        var pattern: Pixels
        var resizes: [Pixels]
        var resize8_crop6_chw_bytes: [Int]
    }

    static let expected: Expected = {
        let data = FileManager.default.contents(atPath: folder + "/expected.json")!
        return try! JSONDecoder().decode(Expected.self, from: data)
    }()

    static func path(_ name: String) -> String { folder + "/" + name }
    static func bytes(_ name: String) -> Data { FileManager.default.contents(atPath: path(name))! }
}

/// The largest difference between two byte arrays of the same length, and how many differ.
func difference(_ a: [UInt8], _ b: [UInt8]) -> (max: Int, count: Int) {
    precondition(a.count == b.count)
    var worst = 0, count = 0
    for (x, y) in zip(a, b) where x != y {
        worst = max(worst, abs(Int(x) - Int(y)))
        count += 1
    }
    return (worst, count)
}

struct DecodeTests {
    @Test(arguments: ["gray.png", "rgb.png", "palette.png", "rgba.png", "gray16.png", "small.jpg"])
    func decodesAsPILConvertRGB(_ name: String) throws {
        let image = try RGBImage(contentsOf: Fixtures.path(name))
        let pil = Fixtures.expected.files[name]!
        #expect(image.width == pil.width && image.height == pil.height)
        let diff = difference(image.pixels, pil.rgb)
        #expect(diff.count == 0, "\(name): \(diff.count) bytes differ, by up to \(diff.max)")
    }

    @Test(arguments: [100, 400])
    func truncatedJPEGNamesTheFile(cut: Int) throws {
        let data = Fixtures.bytes("small.jpg")                                // 752 bytes: cut in the scan, then in the header
        let error = #expect(throws: ImageError.self) { try RGBImage(data: data.dropLast(cut), name: "half.jpg") }
        guard case .truncated(let file, _) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(file == "half.jpg")
        #expect(error!.description.hasPrefix("half.jpg: truncated image"))
    }

    @Test func corruptPNGNamesTheFile() throws {
        var data = Fixtures.bytes("rgb.png")
        data[data.count / 2] ^= 0xFF                                         // inside IDAT: CRC or zlib error
        let error = #expect(throws: ImageError.self) { try RGBImage(data: data, name: "bad.png") }
        guard case .corrupt(let file, let format, _) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(file == "bad.png" && format == "PNG")
    }

    @Test func notAnImage() {
        #expect(throws: ImageError.notAnImage(file: "x.txt")) { try RGBImage(data: Data("hello".utf8), name: "x.txt") }
        #expect(throws: ImageError.notAnImage(file: "empty")) { try RGBImage(data: Data(), name: "empty") }
    }

    /// 8-byte signature and an IHDR chunk declaring 100,000 x 100,000 pixels (valid CRC), nothing
    /// else: refused from the header alone, without a 30 GB buffer.
    @Test func refusesAHugePNGHeader() {
        var ihdr = Array("IHDR".utf8)
        for v in [100_000, 100_000] { ihdr += [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        ihdr += [8, 2, 0, 0, 0]
        let crc = crc32(ihdr)
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + ihdr
            + [UInt8(crc >> 24), UInt8(crc >> 16 & 255), UInt8(crc >> 8 & 255), UInt8(crc & 255)]
        #expect(throws: ImageError.tooLarge(file: "bomb.png", width: 100_000, height: 100_000, limit: 178_956_970)) {
            try RGBImage(data: Data(png), name: "bomb.png")
        }
    }

    /// small.jpg with its SOF0 size patched to 65,000 x 65,000 (libjpeg-turbo reads up to
    /// 65,500): refused after libjpeg-turbo reads the header, before decoding.
    @Test func refusesAHugeJPEGHeader() throws {
        var data = [UInt8](Fixtures.bytes("small.jpg"))
        let sof = try #require((0 ..< data.count - 1).first { data[$0] == 0xFF && data[$0 + 1] == 0xC0 })
        for o in [5, 7] { data[sof + o] = 0xFD; data[sof + o + 1] = 0xE8 }     // height, width: 65,000
        #expect(throws: ImageError.tooLarge(file: "bomb.jpg", width: 65000, height: 65000, limit: 178_956_970)) {
            try RGBImage(data: Data(data), name: "bomb.jpg")
        }
        // A lower limit refuses the real file too.
        #expect(throws: ImageError.self) { try RGBImage(contentsOf: Fixtures.path("small.jpg"), options: .init(maxPixels: 100)) }
    }

    @Test func ownPixelsAreChecked() throws {
        #expect(throws: ImageError.self) { try RGBImage(width: 2, height: 2, pixels: [0, 0, 0]) }
        #expect(throws: ImageError.self) { try RGBImage(width: 0, height: 1, pixels: []) }
        #expect(try RGBImage(width: 1, height: 1, pixels: [1, 2, 3]).pixels == [1, 2, 3])
    }

    @Test func exifOrientationTransposes() throws {
        // 3 x 2: pixel values 0...5 in the red channel.
        let image = try RGBImage(width: 3, height: 2, pixels: (0 ..< 6).flatMap { [UInt8($0), 0, 0] })
        let red = { (i: RGBImage) in stride(from: 0, to: i.pixels.count, by: 3).map { i.pixels[$0] } }
        #expect(red(image.transposed(orientation: 6)) == [3, 0, 4, 1, 5, 2])  // 90 clockwise: 2 x 3
        #expect(red(image.transposed(orientation: 8)) == [2, 5, 1, 4, 0, 3])
        #expect(red(image.transposed(orientation: 3)) == [5, 4, 3, 2, 1, 0])
        #expect(image.transposed(orientation: 6).width == 2)
    }
}

struct ResizeTests {
    static var pattern: RGBImage {
        let p = Fixtures.expected.pattern
        return try! RGBImage(width: p.width, height: p.height, pixels: p.rgb)
    }

    @Test func bilinearEqualsPIL() throws {
        var worst = 0
        for pil in Fixtures.expected.resizes {
            let ours = Self.pattern.resized(width: pil.width, height: pil.height)
            let diff = difference(ours.pixels, pil.rgb)
            worst = max(worst, diff.max)
            #expect(diff.count == 0, "\(pil.width) x \(pil.height): \(diff.count) bytes differ, by up to \(diff.max)")
        }
        print("PIL BILINEAR resizes of a 13 x 9 pattern: max difference \(worst) levels")
    }

    @Test func torchvisionResizeCropToTensor() throws {
        let preprocessing = Preprocessing(resize: 8, crop: 6, mean: [0, 0, 0], std: [1, 1, 1])
        let tensor = try preprocessing.tensor([Self.pattern], normalize: false)
        #expect(tensor.shape == [1, 3, 6, 6])
        let ours = tensor.data.map { Int(($0 * 255).rounded()) }
        #expect(ours == Fixtures.expected.resize8_crop6_chw_bytes)
    }

    @Test func sizesAndCropOrigins() {
        let p = Preprocessing.imagenet
        #expect(p.resizedSize(width: 640, height: 427) == (383, 256))      // int(256 * 640 / 427) = 383
        #expect(p.resizedSize(width: 97, height: 1601) == (256, 4225))
        #expect(Preprocessing.cropOrigin(size: 383, crop: 224) == 80)       // round(79.5) = 80 (half to even)
        #expect(Preprocessing.cropOrigin(size: 381, crop: 224) == 78)       // round(78.5) = 78
        #expect(Preprocessing.cropOrigin(size: 200, crop: 224) == -12)      // padded with zeros
    }

    @Test func normalizeIsTorchvisions() throws {
        let image = try RGBImage(width: 1, height: 1, pixels: [0, 128, 255])
        let t = try Preprocessing(resize: 1, crop: 1, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]).tensor([image])
        #expect(t.data == [(0 / 255 - 0.485) / 0.229, (Float(128) / 255 - 0.456) / 0.224, (Float(255) / 255 - 0.406) / 0.225])
    }
}

/// The PNG CRC (ISO 3309), for crafting chunks.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0 ..< 8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
    }
    return ~crc
}

struct ImageFilesTests {
    @Test func foldersAreWalkedInSortedOrder() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-images-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        for name in ["b.PNG", "a.jpg", "notes.txt", "sub/c.jpeg"] {
            FileManager.default.createFile(atPath: root + "/" + name, contents: Data())
        }
        let files = try ImageFiles.expand([root, "missing.jpg"])
        #expect(files == [root + "/a.jpg", root + "/b.PNG", root + "/sub/c.jpeg", "missing.jpg"])
        #expect(throws: ImageError.self) { try RGBImage(contentsOf: "missing.jpg") }
    }
}
