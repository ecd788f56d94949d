/// The EXIF orientation tag, and the eight transposes it names (PIL's `ImageOps.exif_transpose`).
enum EXIF {
    /// The orientation (1...8) in a JPEG's APP1 "Exif" segment, or 1.
    static func jpegOrientation(_ data: some Collection<UInt8>) -> Int {
        let bytes = Array(data.prefix(1 << 20))
        var i = 2
        while i + 4 <= bytes.count, bytes[i] == 0xFF {
            let marker = bytes[i + 1]
            if marker == 0xDA || marker == 0xD9 { break }                 // start of scan: no more headers
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length >= 2, i + 2 + length <= bytes.count else { break }
            let segment = bytes[(i + 4)..<(i + 2 + length)]
            if marker == 0xE1, segment.starts(with: Array("Exif\0\0".utf8)) {
                return orientation(tiff: Array(segment.dropFirst(6)))
            }
            i += 2 + length
        }
        return 1
    }

    /// The orientation tag (0x0112) of IFD0 in a TIFF structure, or 1.
    static func orientation(tiff: [UInt8]) -> Int {
        guard tiff.count >= 8 else { return 1 }
        let little: Bool
        switch (tiff[0], tiff[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return 1
        }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= tiff.count else { return nil }
            return little ? Int(tiff[o]) | Int(tiff[o + 1]) << 8 : Int(tiff[o]) << 8 | Int(tiff[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let a = u16(o), let b = u16(o + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard let ifd = u32(4), let count = u16(ifd) else { return 1 }
        for entry in 0..<count {
            let o = ifd + 2 + 12 * entry
            guard let tag = u16(o) else { return 1 }
            if tag == 0x0112, let type = u16(o + 2), type == 3, let value = u16(o + 8), (1...8).contains(value) {
                return value
            }
        }
        return 1
    }
}

extension RGBImage {
    /// The image as EXIF orientation `orientation` says to display it.
    func transposed(orientation: Int) -> RGBImage {
        let swaps = orientation >= 5                                      // 5...8 exchange width and height
        let (w, h) = swaps ? (height, width) : (width, height)
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<h {
            for x in 0..<w {
                // The source pixel shown at (x, y).
                let (sx, sy): (Int, Int)
                switch orientation {
                case 2: (sx, sy) = (width - 1 - x, y)                      // mirror left-right
                case 3: (sx, sy) = (width - 1 - x, height - 1 - y)         // rotate 180
                case 4: (sx, sy) = (x, height - 1 - y)                     // mirror top-bottom
                case 5: (sx, sy) = (y, x)                                  // transpose
                case 6: (sx, sy) = (y, height - 1 - x)                     // rotate 90 clockwise
                case 7: (sx, sy) = (width - 1 - y, height - 1 - x)         // transverse
                case 8: (sx, sy) = (width - 1 - y, x)                      // rotate 90 counter-clockwise
                default: (sx, sy) = (x, y)
                }
                let d = 3 * (y * w + x), s = 3 * (sy * width + sx)
                out[d] = pixels[s]; out[d + 1] = pixels[s + 1]; out[d + 2] = pixels[s + 2]
            }
        }
        return RGBImage(unchecked: w, h, out)
    }
}
