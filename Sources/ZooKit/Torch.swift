import Checkpoint
import Foundation
import Models

/// `zoo verify --against-torch`: the same probe through PyTorch, in a Python subprocess
/// (`$ZOO_PYTHON`, else `python3`) running `Resources/torch_check.py`, which builds the
/// architecture with torchvision. Python runs isolated (`-I`: neither the working directory nor
/// the user's site-packages nor `PYTHON*` variables reach its import path), in a fresh private
/// folder, with only `PATH` and the locale kept from the environment (`HOME` and `TMPDIR` point
/// at that folder): a `json.py` or `torch.py` beside a model or in the working directory never
/// runs. File paths reach the script as arguments, never inside its text.
extension Zoo {
    var python: String { environment["ZOO_PYTHON"] ?? "python3" }

    func torchCheck(_ model: Model, architecture: Architecture, original: String, native: String?, input: Tensor) throws -> Verification.Check {
        let folder = try Self.privateFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (status, probeOutput) = try runPython(["-c", "import torch, torchvision; print(torch.__version__)"], in: folder)
        guard status == 0 else {
            throw ZooError(.usage, "--against-torch needs PyTorch: `\(python) -I -c \"import torch, torchvision\"` failed: \(probeOutput.suffix(300))",
                           fix: "pip install torch torchvision, or set ZOO_PYTHON to a Python that has them")
        }
        let version = probeOutput.split(separator: "\n").last.map(String.init) ?? ""
        guard Self.loadsSafely(torchVersion: version) else {
            throw ZooError(.usage, "--against-torch needs torch 2.6 or later, \(python) has \(version): older torch.load(weights_only=True) "
                + "can run code from a crafted file (CVE-2025-32434)", fix: "pip install --upgrade torch torchvision")
        }
        try NPY.write(input, to: folder + "/input.npy")
        let spec = String(decoding: try JSONEncoder().encode(TorchSpec(architecture)), as: UTF8.self)
        // Absolute paths: Python runs in `folder`, not in the caller's working directory.
        let files = [original, native ?? ""].map { $0.isEmpty ? $0 : URL(fileURLWithPath: $0).standardizedFileURL.path }
        let (code, output) = try runPython(["-c", Self.torchScript] + files + [spec, folder + "/input.npy", folder + "/output.npy"], in: folder)
        guard code == 0 else {
            return .init(name: "torch", ok: false, detail: "PyTorch could not run the model: \(output.suffix(500))")
        }
        return forwardCheck(model, input: input, expected: try? NPY.read(path: folder + "/output.npy"),
                            against: "PyTorch \(output.trimmingCharacters(in: .whitespacesAndNewlines))", name: "torch")
    }

    /// Whether a torch version (`2.6.0`, `2.15.0+cpu`) has the weights-only loader without
    /// CVE-2025-32434, the only loader zoo lets PyTorch use on a file.
    static func loadsSafely(torchVersion version: String) -> Bool {
        let parts = version.split(separator: "+").first?.split(separator: ".").prefix(2).map { Int($0.prefix { $0.isNumber }) } ?? []
        guard parts.count == 2, let major = parts[0], let minor = parts[1] else { return false }
        return (major, minor) >= (2, 6)
    }

    /// A new folder only this user can enter (`mkdtemp`, mode 0700) in the temporary directory.
    static func privateFolder() throws -> String {
        var template = Array((FileManager.default.temporaryDirectory.path + "/zoo-torch-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ZooError(.io, "cannot create a temporary folder in \(FileManager.default.temporaryDirectory.path): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }

    /// `python -I ARGUMENTS` in `folder`, with `environment` reduced to `PATH` and the locale.
    func runPython(_ arguments: [String], in folder: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try pythonExecutable())
        process.arguments = ["-I"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        process.environment = Self.pythonEnvironment(environment, home: folder)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch {
            throw ZooError(.usage, "cannot run \(python): \(error.localizedDescription)", fix: "set ZOO_PYTHON to a Python with torch")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// What Python sees of `environment`: `PATH` and the locale; `HOME` and `TMPDIR` are `home`.
    static func pythonEnvironment(_ environment: [String: String], home: String) -> [String: String] {
        var kept = environment.filter { ["PATH", "LANG", "LC_ALL", "LC_CTYPE"].contains($0.key) }
        kept["HOME"] = home
        kept["TMPDIR"] = home
        return kept
    }

    /// `$ZOO_PYTHON` (a path, taken from the working directory when relative) or the first
    /// `python3` (or the name `ZOO_PYTHON` gives) in an absolute folder of `PATH`: never a
    /// relative `PATH` entry, which would look in the folder Python runs in.
    func pythonExecutable() throws -> String {
        if python.contains("/") { return URL(fileURLWithPath: python).standardizedFileURL.path }
        let folders = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").filter { $0.hasPrefix("/") }
        guard let found = folders.map({ $0 + "/" + python }).first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw ZooError(.usage, "--against-torch: no \(python) in the absolute folders of PATH", fix: "set ZOO_PYTHON to a Python with torch")
        }
        return found
    }

    /// What the Python side needs to build the network.
    struct TorchSpec: Encodable {
        var family: String
        var name: String?
        var numClasses: Int
        var resnet: ResNetConfig?
        var blocks: [Int]?
        /// What zoo's own reader unwraps and strips, so that PyTorch reads the same state dict.
        var wrapperKeys = StateDict.wrapperKeys
        var prefixes = StateDict.strippablePrefixes

        init(_ architecture: Architecture) {
            numClasses = architecture.numClasses
            let named = Architecture.names.contains(architecture.name)
            name = named ? architecture.name : nil
            switch architecture {
            case .resnet(let c): family = "resnet"; resnet = c
            case .vgg: family = "vgg"
            case .tutorialVGG(let c): family = "tutorial"; blocks = c.blocks
            }
        }
    }

    /// The script, `Resources/torch_check.py`, built into the library by Plugins/Embed.
    static let torchScript = Embedded.torchCheckPY
}
