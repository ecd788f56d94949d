import CTurboJPEG
import Foundation

/// The TurboJPEG boundary: every libjpeg-turbo call zoo makes is in this file.
///
/// Decoding matches PIL's (which also uses libjpeg): the accurate integer IDCT and fancy
/// (smooth) chroma upsampling, libjpeg's defaults; grayscale replicated into R, G and B; CMYK and
/// YCCK decoded to CMYK, inverted as PIL assumes Adobe files are ("CMYK;I"), then turned into RGB
/// with PIL's `cmyk2rgb`.
enum JPEG {
    /// One decompressor handle, destroyed with the value.
    private final class Decompressor {
        let handle: tjhandle

        init(name: String) throws {
            guard let handle = tjInitDecompress() else {
                throw ImageError.unsupported(file: name, detail: "cannot start libjpeg-turbo")
            }
            self.handle = handle
        }

        deinit { tjDestroy(handle) }

        /// libjpeg-turbo's message for the last call on this handle.
        var message: String { String(cString: tjGetErrorStr2(handle)) }
        var isWarning: Bool { tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) }
    }

    static func decode(_ data: Data, name: String, maxPixels: Int) throws -> RGBImage {
        let decompressor = try Decompressor(name: name)
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> RGBImage in
            // Safe: `raw` stays valid for the whole closure and libjpeg-turbo only reads
            // `raw.count` bytes from it.
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                throw ImageError.truncated(file: name, detail: "empty file")
            }
            let size = UInt(raw.count)
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            if tjDecompressHeader3(decompressor.handle, base, size, &width, &height, &subsampling, &colorspace) != 0 {
                throw headerError(decompressor.message, name: name)
            }
            // The bomb check happens here, before any pixel buffer exists.
            try DecodeOptions.check(width: Int(width), height: Int(height), limit: maxPixels, name: name)
            let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
            let channels = isCMYK ? 4 : 3
            let format = isCMYK ? TJPF_CMYK : TJPF_RGB
            var out = [UInt8](repeating: 0, count: Int(width) * Int(height) * channels)
            let status = out.withUnsafeMutableBufferPointer { buffer in
                // Safe: `buffer` holds exactly width * height * channels bytes, the pitch given.
                tjDecompress2(decompressor.handle, base, size, buffer.baseAddress, width,
                              width * Int32(channels), height, Int32(format.rawValue), TJFLAG_ACCURATEDCT)
            }
            if status != 0 {
                let message = decompressor.message
                // PIL refuses a JPEG that ends early ("image file is truncated"); other libjpeg
                // warnings (extraneous bytes, ...) it ignores, and so does zoo.
                if !decompressor.isWarning {
                    throw ImageError.corrupt(file: name, format: "JPEG", detail: message)
                }
                if message.contains("Premature end") {
                    throw ImageError.truncated(file: name, detail: message)
                }
            }
            if isCMYK { out = cmykToRGB(out) }
            return RGBImage(unchecked: Int(width), Int(height), out)
        }
    }

    private static func headerError(_ message: String, name: String) -> ImageError {
        // A header cut short reads as libjpeg's fake end of image: no scan follows.
        message.contains("Premature end") || message.contains("missing SOS marker")
            ? .truncated(file: name, detail: message)
            : .corrupt(file: name, format: "JPEG", detail: message)
    }

    /// PIL's "CMYK;I" unpacker (255 - v for every ink) followed by its `cmyk2rgb`:
    /// `nk = 255 - k; channel = nk - muldiv255(c, nk)`.
    static func cmykToRGB(_ cmyk: [UInt8]) -> [UInt8] {
        let count = cmyk.count / 4
        var rgb = [UInt8](repeating: 0, count: count * 3)
        for i in 0..<count {
            let k = 255 - Int(cmyk[4 * i + 3])
            let nk = 255 - k
            for c in 0..<3 {
                let ink = 255 - Int(cmyk[4 * i + c])
                let t = ink * nk + 128
                let value = nk - (((t >> 8) + t) >> 8)
                rgb[3 * i + c] = UInt8(clamping: value)
            }
        }
        return rgb
    }
}
