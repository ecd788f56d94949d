/// What the classes of a TorchScript archive declare, read from its `code/` sources: which
/// attributes are parameters and buffers, and which classes are modules. `torch.jit.load(f)
/// .state_dict()` holds exactly those: a plain tensor attribute (`self._state = torch.zeros(3)`)
/// is in the pickled module but in no state dict.
///
/// The sources are Python as TorchScript prints them, one file per module path
/// (`code/__torch__/torch/nn/modules/conv.py` holds `__torch__.torch.nn.modules.conv.Conv2d`):
///
/// ```
/// class Conv2d(Module):
///   __parameters__ = ["weight", "bias", ]
///   __buffers__ = []
/// ```
/// zoo reads those lines as text; it runs nothing.
struct ScriptClasses {
    struct Declaration: Equatable {
        var isModule: Bool
        var parameters: [String] = []
        var buffers: [String] = []
    }

    /// By qualified name (`__torch__.___torch_mangle_1.Inner`).
    private(set) var classes: [String: Declaration] = [:]

    subscript(qualifiedName: String) -> Declaration? { classes[qualifiedName] }

    /// All source files under `code/` of the archive, at most `maxSourceBytes` in all.
    static let maxSourceBytes = 1 << 28

    static func read(_ archive: ZipArchive, prefix: String) throws -> ScriptClasses {
        var found = ScriptClasses()
        var budget = maxSourceBytes
        let root = prefix + "code/"
        for name in archive.names where name.utf8.starts(with: root.utf8) && name.hasSuffix(".py") {
            let bytes = try archive.read(name, limit: budget)
            budget -= bytes.count
            // code/__torch__/a/b.py -> module __torch__.a.b
            let module = String(decoding: name.utf8.dropFirst(root.utf8.count).dropLast(3), as: UTF8.self)
                .split(separator: "/", omittingEmptySubsequences: false).joined(separator: ".")
            try found.parse(String(decoding: bytes, as: UTF8.self), module: module, path: archive.path, record: name)
        }
        return found
    }

    /// Reads the `class Name(Base):` headers and the `__parameters__` / `__buffers__` lines
    /// that follow each.
    mutating func parse(_ source: String, module: String, path: String = "", record: String = "") throws {
        var current: String?
        for line in source.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("class "), let open = line.firstIndex(of: "("), let close = line.lastIndex(of: ")"), open < close {
                let name = line[line.index(line.startIndex, offsetBy: 6) ..< open].trimmingCharacters(in: .whitespaces)
                let qualified = module + "." + name
                guard classes[qualified] == nil else {
                    throw CheckpointError(.corrupt, path: path, at: record, "class \(qualified) is defined twice")
                }
                classes[qualified] = Declaration(isModule: line[line.index(after: open) ..< close] == "Module")
                current = qualified
                continue
            }
            guard let name = current, line.first == " " else {
                if line.first != " " { current = nil }
                continue
            }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("__parameters__ = [") {
                classes[name]!.parameters = try Self.names(text, path: path, record: record)
            } else if text.hasPrefix("__buffers__ = [") {
                classes[name]!.buffers = try Self.names(text, path: path, record: record)
            }
        }
    }

    /// The string literals of `__parameters__ = ["weight", "bias", ]`.
    static func names(_ text: String, path: String, record: String) throws -> [String] {
        var names: [String] = []
        var scalars = Substring(text).unicodeScalars.drop { $0 != "[" }.dropFirst()
        while let first = scalars.first {
            switch first {
            case " ", ",": scalars.removeFirst()
            case "]": return names
            case "\"", "'":
                scalars.removeFirst()
                var name = String.UnicodeScalarView()
                while let c = scalars.first, c != first {
                    scalars.removeFirst()
                    if c == "\\", let escaped = scalars.first {
                        scalars.removeFirst()
                        name.append(escaped)
                    } else {
                        name.append(c)
                    }
                }
                guard !scalars.isEmpty else { break }
                scalars.removeFirst()
                names.append(String(name))
            default:
                throw CheckpointError(.unsupported, path: path, at: record, "cannot read the attribute list '\(text.prefix(80))'")
            }
        }
        throw CheckpointError(.corrupt, path: path, at: record, "unterminated attribute list '\(text.prefix(80))'")
    }
}
