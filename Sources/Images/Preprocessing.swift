import Models

/// torchvision's classification transforms for a PIL image:
/// `Resize(resize)` (shorter side, PIL bilinear with antialiasing), `CenterCrop(crop)`,
/// `ToTensor()` (bytes / 255) and `Normalize(mean, std)`, giving NCHW float32 tensors.
public struct Preprocessing: Sendable, Equatable, Codable {
    /// The shorter side after resizing (torchvision `Resize(int)`).
    public var resize: Int
    /// The side of the square center crop.
    public var crop: Int
    /// Per channel (R, G, B), subtracted after scaling to [0, 1].
    public var mean: [Float]
    /// Per channel (R, G, B), divided by after subtracting the mean.
    public var std: [Float]

    /// ImageNet classification as torchvision's V1 weights do it: 256, 224, and the usual mean and std.
    public static let imagenet = Preprocessing(resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    public init(resize: Int, crop: Int, mean: [Float], std: [Float]) {
        self.resize = resize
        self.crop = crop
        self.mean = mean
        self.std = std
    }

    func validate() throws {
        guard resize > 0, crop > 0 else {
            throw ImageError.invalidPreprocessing(detail: "resize \(resize) and crop \(crop) must be at least 1")
        }
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 != 0 }) else {
            throw ImageError.invalidPreprocessing(detail: "mean and std need 3 values each, std non-zero (got \(mean), \(std))")
        }
    }

    /// The size torchvision's `Resize(resize)` gives an image of `width` x `height`
    /// (`_compute_resized_output_size`): the shorter side becomes `resize`, the longer
    /// `int(resize * long / short)`, truncated.
    public func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let short = min(width, height), long = max(width, height)
        let newLong = Int(Double(resize * long) / Double(short))
        return width <= height ? (resize, newLong) : (newLong, resize)
    }

    /// Where torchvision's `CenterCrop` starts along a side of `size`: `int(round((size - crop) / 2.0))`
    /// (Python rounds half to even), or, when the crop is larger, minus the left/top padding
    /// `(crop - size) // 2` it adds with zeros.
    static func cropOrigin(size: Int, crop: Int) -> Int {
        crop > size ? -((crop - size) / 2) : Int((Double(size - crop) / 2.0).rounded(.toNearestOrEven))
    }

    /// The 8-bit image after Resize and CenterCrop: `crop` x `crop` pixels.
    public func cropped(_ image: RGBImage) throws -> RGBImage {
        try validate()
        let size = resizedSize(width: image.width, height: image.height)
        let left = Self.cropOrigin(size: size.width, crop: crop), top = Self.cropOrigin(size: size.height, crop: crop)
        return image.resizedWindow(width: size.width, height: size.height, x: left..<(left + crop), y: top..<(top + crop))
    }

    /// The batch `[N, 3, crop, crop]`: every image resized, cropped, scaled to [0, 1] and, when
    /// `normalize` is true, normalised by `mean` and `std`.
    public func tensor(_ images: [RGBImage], normalize: Bool = true) throws -> Tensor {
        try tensor(cropped: images.map(cropped), normalize: normalize)
    }

    /// The batch `[N, 3, crop, crop]` of images `cropped(_:)` already made (ToTensor, Normalize).
    public func tensor(cropped images: [RGBImage], normalize: Bool = true) throws -> Tensor {
        try validate()
        let plane = crop * crop
        var data = [Float](repeating: 0, count: images.count * 3 * plane)
        for (n, image) in images.enumerated() {
            guard image.width == crop, image.height == crop else {
                throw ImageError.invalidPreprocessing(detail: "a \(image.width) x \(image.height) image where a \(crop) x \(crop) crop was expected")
            }
            let pixels = image.pixels
            for c in 0..<3 {
                let base = (n * 3 + c) * plane
                let m = normalize ? mean[c] : 0, s = normalize ? std[c] : 1
                for i in 0..<plane {
                    // ToTensor then Normalize, in float32, in torchvision's order.
                    let x = Float(pixels[3 * i + c]) / 255
                    data[base + i] = normalize ? (x - m) / s : x
                }
            }
        }
        return try Tensor(shape: [images.count, 3, crop, crop], scalars: data)
    }

    /// Decodes, resizes, crops and normalises one file: `[1, 3, crop, crop]`.
    public func tensor(contentsOf path: String, options: DecodeOptions = .init()) throws -> Tensor {
        try tensor([RGBImage(contentsOf: path, options: options)])
    }
}
