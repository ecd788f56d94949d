import CPNG
import Foundation

/// The libpng boundary: every libpng call zoo makes is in this file (the setjmp trampolines that
/// turn libpng's longjmp errors into return codes are in Sources/CPNG/shim.h).
///
/// Conversions follow PIL's PNG plugin and `convert("RGB")`: palette entries looked up, alpha
/// dropped (not composited), 1/2/4-bit gray scaled to 8 bits, 16-bit RGB(A) and gray+alpha cut to
/// their high byte (PIL's "RGB;16B"-style unpackers), and 16-bit gray, which PIL opens as mode
/// "I;16", clipped to 255 (`I;16 -> RGB` saturates: 256..65535 all become 255). Gamma and colour
/// profiles are ignored, as PIL ignores them.
enum PNG {
    struct Decoded {
        var image: RGBImage
        /// The eXIf chunk (a TIFF structure), when it comes before the image data.
        var exif: [UInt8]?
    }

    /// Owns the libpng read structs for one decode.
    private final class Reader {
        var state = zoo_png_reader()
        deinit { zoo_png_close(&state) }
        var message: String {
            withUnsafeBytes(of: state.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
    }

    static func decode(_ data: Data, name: String, maxPixels: Int) throws -> Decoded {
        // The bomb check first, from IHDR (always the first chunk, at byte 8): libpng's header
        // read goes on to the first IDAT, which a bomb need not even have.
        let head = [UInt8](data.prefix(24))
        if head.count == 24, head[12 ..< 16].elementsEqual("IHDR".utf8) {
            let be = { (o: Int) in head[o ..< o + 4].reduce(0) { $0 << 8 | Int($1) } }
            try DecodeOptions.check(width: be(16), height: be(20), limit: maxPixels, name: name)
        }
        let reader = Reader()
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Decoded in
            // Safe: libpng reads only through the C read callback, which bounds-checks against
            // `size`, and every libpng call on `reader` happens inside this closure, while `raw` is valid.
            reader.state.data = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            reader.state.size = raw.count
            if zoo_png_open(&reader.state) != 0 { throw error(reader.message, name: name) }
            let png = reader.state.png, info = reader.state.info
            let width = Int(png_get_image_width(png, info)), height = Int(png_get_image_height(png, info))
            // Again from libpng's reading, before any pixel buffer exists.
            try DecodeOptions.check(width: width, height: height, limit: maxPixels, name: name)
            let depth = Int32(png_get_bit_depth(png, info))
            let type = Int32(png_get_color_type(png, info))

            var exif: [UInt8]?
            var exifCount: png_uint_32 = 0
            var exifBytes: png_bytep?
            if png_get_eXIf_1(png, info, &exifCount, &exifBytes) != 0, let exifBytes {
                exif = Array(UnsafeBufferPointer(start: exifBytes, count: Int(exifCount)))
            }

            if type == PNG_COLOR_TYPE_GRAY && depth == 16 {
                // PIL: mode "I;16", then I;16 -> RGB clips each value to 255.
                var gray = [UInt8](repeating: 0, count: width * height * 2)
                try read(reader, into: &gray, stride: width * 2, height: height, name: name)
                var rgb = [UInt8](repeating: 0, count: width * height * 3)
                for i in 0..<(width * height) {
                    let v: UInt8 = gray[2 * i] != 0 ? 255 : gray[2 * i + 1]
                    rgb[3 * i] = v; rgb[3 * i + 1] = v; rgb[3 * i + 2] = v
                }
                return Decoded(image: RGBImage(unchecked: width, height, rgb), exif: exif)
            }
            if depth == 16 { png_set_strip_16(png) }                  // keep the high byte
            if type == PNG_COLOR_TYPE_PALETTE { png_set_palette_to_rgb(png) }
            if type == PNG_COLOR_TYPE_GRAY && depth < 8 { png_set_expand_gray_1_2_4_to_8(png) }
            if type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA { png_set_gray_to_rgb(png) }
            // Alpha from the file, or from a palette's tRNS (palette_to_rgb expands it): dropped.
            let paletteAlpha = type == PNG_COLOR_TYPE_PALETTE && png_get_valid(png, info, PNG_INFO_tRNS) != 0
            if type & PNG_COLOR_MASK_ALPHA != 0 || paletteAlpha { png_set_strip_alpha(png) }
            var rgb = [UInt8](repeating: 0, count: width * height * 3)
            try read(reader, into: &rgb, stride: width * 3, height: height, name: name)
            return Decoded(image: RGBImage(unchecked: width, height, rgb), exif: exif)
        }
    }

    private static func read(_ reader: Reader, into buffer: inout [UInt8], stride: Int, height: Int, name: String) throws {
        let status = buffer.withUnsafeMutableBufferPointer { out in
            // Safe: `out` holds `stride * height` bytes and the C side checks that libpng's row
            // size after the transformations equals `stride` before writing any row.
            zoo_png_read_rows(&reader.state, out.baseAddress, stride, UInt32(height))
        }
        if status != 0 { throw error(reader.message, name: name) }
    }

    private static func error(_ message: String, name: String) -> ImageError {
        message.contains("truncated") || message.contains("Not enough image data") || message.contains("end of")
            ? .truncated(file: name, detail: message)
            : .corrupt(file: name, format: "PNG", detail: message)
    }
}
