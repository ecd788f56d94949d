// The tool behind Plugins/Embed: `EmbedTool OUTPUT ROOT FILE...` writes OUTPUT, a Swift file with
// `enum Embedded` holding each FILE's text as a string constant named after the file
// (`catalog.json` -> `catalogJSON`), and ROOT, the package folder it was built from.
import Foundation

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("EmbedTool: \(message)\n".utf8))
    exit(1)
}

/// A Swift string literal that reads back as exactly `text`.
func literal(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += "\\u{\(String(scalar.value, radix: 16))}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// `catalog.json` -> `catalogJSON`, `torch_check.py` -> `torchCheckPY`: the stem in lower camel
/// case, the extension in capitals.
func constantName(_ file: String) -> String {
    let base = (file as NSString).lastPathComponent
    let ext = (base as NSString).pathExtension
    let words = (base as NSString).deletingPathExtension.split { !$0.isLetter && !$0.isNumber }.map(String.init)
    guard let first = words.first, first.first?.isLetter == true else { fail("cannot name a constant after \(file)") }
    return first.lowercased() + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() + ext.uppercased()
}

let arguments = CommandLine.arguments.dropFirst()
guard arguments.count >= 2 else { fail("usage: EmbedTool OUTPUT ROOT FILE...") }
let output = arguments.first!, root = arguments.dropFirst().first!
var swift = """
    // Generated at build time by Plugins/Embed from the files named below: edit those, not this.

    enum Embedded {
        /// The package folder this build was made from (for files zoo ships in its checkout, such as demo/).
        static let packageRoot = \(literal(root))

    """
for file in arguments.dropFirst(2) {
    guard let data = FileManager.default.contents(atPath: file) else { fail("cannot read \(file)") }
    let text = String(decoding: data, as: UTF8.self)
    guard text.utf8.elementsEqual(data) else { fail("\(file) is not UTF-8") }
    let relative = file.hasPrefix(root + "/") ? String(file.dropFirst(root.count + 1)) : file
    swift += "\n    /// \(relative)\n    static let \(constantName(file)) = \(literal(text))\n"
}
swift += "}\n"
// Rewrite only on change, so that an unchanged input does not recompile ZooKit.
if FileManager.default.contents(atPath: output) != Data(swift.utf8) {
    do { try Data(swift.utf8).write(to: URL(fileURLWithPath: output), options: .atomic) } catch { fail("cannot write \(output): \(error)") }
}
