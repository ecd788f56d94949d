import Foundation

/// Every way decoding or preprocessing an image can fail. Each case names the file (or `<memory>`).
public enum ImageError: Error, LocalizedError, CustomStringConvertible, Sendable, Equatable {
    /// Neither a JPEG nor a PNG by its first bytes.
    case notAnImage(file: String)
    /// The data ends before the image does.
    case truncated(file: String, detail: String)
    /// The decoder rejected the data; `detail` is the C library's own message.
    case corrupt(file: String, format: String, detail: String)
    /// The header declares more pixels than `limit` (a decompression bomb, as PIL calls it).
    case tooLarge(file: String, width: Int, height: Int, limit: Int)
    /// A format variant zoo does not decode (for example a 12-bit JPEG).
    case unsupported(file: String, detail: String)
    /// The file could not be read.
    case unreadable(file: String, detail: String)
    /// Pixels handed to `RGBImage(width:height:pixels:)` that do not fit its size, or a bad size.
    case invalidPixels(detail: String)
    /// A preprocessing setting that cannot work (a zero size, a std of zero, ...).
    case invalidPreprocessing(detail: String)

    public var description: String {
        switch self {
        case .notAnImage(let file):
            return "\(file): not an image zoo can read (JPEG and PNG are supported)"
        case .truncated(let file, let detail):
            return "\(file): truncated image (\(detail))"
        case .corrupt(let file, let format, let detail):
            return "\(file): corrupt \(format) (\(detail))"
        case .tooLarge(let file, let width, let height, let limit):
            return "\(file): \(width) x \(height) = \(width * height) pixels is over the limit of \(limit) "
                + "(a possible decompression bomb); raise DecodeOptions.maxPixels if the file is trusted"
        case .unsupported(let file, let detail):
            return "\(file): unsupported image (\(detail))"
        case .unreadable(let file, let detail):
            return "\(file): cannot read (\(detail))"
        case .invalidPixels(let detail):
            return "invalid pixels: \(detail)"
        case .invalidPreprocessing(let detail):
            return "invalid preprocessing: \(detail)"
        }
    }

    public var errorDescription: String? { description }
}
