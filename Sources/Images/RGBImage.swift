import Foundation

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `R G B R G B ...`: what PIL's
/// `Image.open(f).convert("RGB")` holds.
///
/// ```swift
/// let image = try RGBImage(contentsOf: "cat.jpg")
/// let mine = try RGBImage(width: 2, height: 1, pixels: [255, 0, 0, 0, 0, 255])
/// let batch = try Preprocessing.imagenet.tensor([image, mine])   // [2, 3, 224, 224]
/// ```
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes.
    public let pixels: [UInt8]

    /// - Parameters:
    ///   - width, height: at least 1 each.
    ///   - pixels: `width * height * 3` bytes, interleaved RGB, rows top to bottom.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0 else {
            throw ImageError.invalidPixels(detail: "size \(width) x \(height): both must be at least 1")
        }
        let (count, overflow) = width.multipliedReportingOverflow(by: height * 3)
        guard !overflow, pixels.count == count else {
            throw ImageError.invalidPixels(detail: "\(pixels.count) bytes for \(width) x \(height) RGB, expected \(width * height) x 3")
        }
        self.init(unchecked: width, height, pixels)
    }

    init(unchecked width: Int, _ height: Int, _ pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Decodes a JPEG or PNG file.
    public init(contentsOf path: String, options: DecodeOptions = .init()) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw ImageError.unreadable(file: path, detail: (error as NSError).localizedDescription)
        }
        try self.init(data: data, name: path, options: options)
    }

    /// Decodes JPEG or PNG bytes; `name` is what errors call the data.
    public init(data: Data, name: String = "<memory>", options: DecodeOptions = .init()) throws {
        let bytes = [UInt8](data.prefix(8))
        var image: RGBImage
        var orientation = 1
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            image = try JPEG.decode(data, name: name, maxPixels: options.maxPixels)
            if options.applyEXIFOrientation { orientation = EXIF.jpegOrientation(data) }
        } else if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            let decoded = try PNG.decode(data, name: name, maxPixels: options.maxPixels)
            image = decoded.image
            if options.applyEXIFOrientation, let exif = decoded.exif { orientation = EXIF.orientation(tiff: exif) }
        } else {
            throw ImageError.notAnImage(file: name)
        }
        if orientation != 1 { image = image.transposed(orientation: orientation) }
        self = image
    }
}

/// How files are decoded.
public struct DecodeOptions: Sendable, Equatable {
    /// PIL's `Image.MAX_IMAGE_PIXELS`: PIL warns above it and refuses above twice it.
    public static let pilMaxImagePixels = 89_478_485
    /// Images whose header declares more pixels than this are refused before any pixel buffer is
    /// allocated, as PIL's decompression-bomb check refuses them (2 x 89,478,485 = 178,956,970).
    public var maxPixels: Int
    /// Rotate and flip as the EXIF orientation tag says (`ImageOps.exif_transpose`). Off by
    /// default, as torchvision with PIL ignores the tag.
    public var applyEXIFOrientation: Bool

    public init(maxPixels: Int = 2 * DecodeOptions.pilMaxImagePixels, applyEXIFOrientation: Bool = false) {
        self.maxPixels = maxPixels
        self.applyEXIFOrientation = applyEXIFOrientation
    }

    static func check(width: Int, height: Int, limit: Int, name: String) throws {
        guard width > 0, height > 0 else {
            throw ImageError.corrupt(file: name, format: "image", detail: "size \(width) x \(height)")
        }
        if width * height > limit {
            throw ImageError.tooLarge(file: name, width: width, height: height, limit: limit)
        }
    }
}
