/// A strict JSON parser for safetensors headers. Foundation's parser silently keeps the last of
/// duplicate keys, forgets key order and turns large integers into doubles; a header reader
/// must refuse the first, keep the second and check the third exactly.
enum JSON: Equatable {
    case null
    case bool(Bool)
    /// An integer that fits `Int`.
    case int(Int)
    /// Any other number, kept as written (too large, negative zero, fraction, exponent).
    case number(String)
    case string(String)
    case array([JSON])
    /// Members in file order; keys are unique (the parser refuses duplicates).
    case object([(key: String, value: JSON)])

    static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.int(let x), .int(let y)): x == y
        case (.number(let x), .number(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }

    struct ParseError: Error {
        var offset: Int
        var message: String
    }

    static let maxDepth = 64

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSON {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw ParseError(offset: parser.position, message: "text after the JSON value") }
        return value
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        func fail(_ message: String) -> ParseError { ParseError(offset: position, message: message) }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { position += 1 }
        }

        mutating func expect(_ literal: String, _ value: JSON) throws -> JSON {
            for byte in literal.utf8 {
                guard current == byte else { throw fail("invalid literal, expected \(literal)") }
                position += 1
            }
            return value
        }

        mutating func value(depth: Int) throws -> JSON {
            guard depth < JSON.maxDepth else { throw fail("nested deeper than \(JSON.maxDepth) levels") }
            switch current {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try expect("true", .bool(true))
            case UInt8(ascii: "f"): return try expect("false", .bool(false))
            case UInt8(ascii: "n"): return try expect("null", .null)
            case .some(let c) where c == UInt8(ascii: "-") || (0x30 ... 0x39).contains(c): return try number()
            case .some: throw fail("unexpected character")
            case .none: throw fail("unexpected end of text")
            }
        }

        mutating func object(depth: Int) throws -> JSON {
            position += 1
            var members: [(key: String, value: JSON)] = []
            var seen = Set<[UInt8]>()  // by UTF-8 bytes: NFC and NFD spellings are two keys, as in Python
            skipWhitespace()
            if current == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let keyOffset = position
                let key = try string()
                guard seen.insert(Array(key.utf8)).inserted else { throw ParseError(offset: keyOffset, message: "duplicate key \"\(key)\"") }
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw fail("expected ':'") }
                position += 1
                skipWhitespace()
                members.append((key, try value(depth: depth + 1)))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"): position += 1; return .object(members)
                default: throw fail("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws -> JSON {
            position += 1
            var items: [JSON] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") {
                position += 1
                return .array(items)
            }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "]"): position += 1; return .array(items)
                default: throw fail("expected ',' or ']'")
                }
            }
        }

        mutating func number() throws -> JSON {
            let start = position
            if current == UInt8(ascii: "-") { position += 1 }
            while let c = current, (0x30 ... 0x39).contains(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "e")
                || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") { position += 1 }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start ..< position]), as: UTF8.self)
            let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
            guard let first = digits.first, first.isNumber, !(first == "0" && digits.count > 1 && digits.dropFirst().first?.isNumber == true),
                  Double(text) != nil else { throw ParseError(offset: start, message: "invalid number \(text)") }
            if let integer = Int(text) { return .int(integer) }
            return .number(text)
        }

        mutating func string() throws -> String {
            position += 1
            var out: [UInt8] = []
            while true {
                guard let c = current else { throw fail("unterminated string") }
                position += 1
                switch c {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
                    return text
                case UInt8(ascii: "\\"):
                    guard let e = current else { throw fail("unterminated escape") }
                    position += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800 ..< 0xDC00).contains(scalar) {
                            guard current == UInt8(ascii: "\\") else { throw fail("unpaired surrogate") }
                            position += 1
                            guard current == UInt8(ascii: "u") else { throw fail("unpaired surrogate") }
                            position += 1
                            let low = try hex4()
                            guard (0xDC00 ..< 0xE000).contains(low) else { throw fail("unpaired surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let s = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                        out.append(contentsOf: Array(String(Character(s)).utf8))
                    default: throw fail("invalid escape")
                    }
                case 0 ..< 0x20:
                    throw fail("control character in string")
                default:
                    out.append(c)
                }
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard position + 4 <= bytes.count,
                  let v = UInt32(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position ..< position + 4]), as: UTF8.self), radix: 16)
            else { throw fail("invalid \\u escape") }
            position += 4
            return v
        }
    }

    /// Text for a string inside JSON quotes.
    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format4: scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension String {
    /// `\u00XX` for a control character.
    init(format4 value: UInt32) {
        let digits = Array("0123456789abcdef")
        self = "\\u00" + String([digits[Int(value >> 4 & 15)], digits[Int(value & 15)]])
    }
}
