import Checkpoint
import Foundation
import Models

/// `zoo verify --against-torch`: the same probe through PyTorch, in a Python subprocess
/// (`$ZOO_PYTHON`, else `python3`), building the architecture with torchvision.
extension Zoo {
    var python: String { environment["ZOO_PYTHON"] ?? "python3" }

    func torchCheck(_ model: Model, architecture: Architecture, original: String, native: String?, input: Tensor) throws -> Verification.Check {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-torch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (status, probeOutput) = try runPython(["-c", "import torch, torchvision; print(torch.__version__)"])
        guard status == 0 else {
            throw ZooError(.usage, "--against-torch needs PyTorch: `\(python) -c \"import torch, torchvision\"` failed: \(probeOutput.suffix(300))",
                           fix: "pip install torch torchvision, or set ZOO_PYTHON to a Python that has them")
        }
        let version = probeOutput.split(separator: "\n").last.map(String.init) ?? ""
        guard Self.loadsSafely(torchVersion: version) else {
            throw ZooError(.usage, "--against-torch needs torch 2.6 or later, \(python) has \(version): older torch.load(weights_only=True) "
                + "can run code from a crafted file (CVE-2025-32434)", fix: "pip install --upgrade torch torchvision")
        }
        try NPY.write(input, to: folder + "/input.npy")
        let spec = String(decoding: try JSONEncoder().encode(TorchSpec(architecture)), as: UTF8.self)
        let (code, output) = try runPython(["-c", Self.torchScript, original, native ?? "", spec, folder + "/input.npy", folder + "/output.npy"])
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

    func runPython(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python] + arguments
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

    /// What the Python side needs to build the network.
    struct TorchSpec: Encodable {
        var family: String
        var name: String?
        var numClasses: Int
        var resnet: ResNetConfig?
        var blocks: [Int]?

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

    static let torchScript = #"""
import json, sys
import numpy as np
import torch, torchvision
import torch.nn as nn
import torch.nn.functional as F

original, native, spec, inp, out = sys.argv[1:6]
spec = json.loads(spec)
torch.set_num_threads(2)

class TutorialVGG(nn.Module):  # the seed document's VGG
    def __init__(self, arch, num_classes=1000):
        super().__init__()
        self.in_channels = 3
        self.conv3_64 = self._make_layer(64, arch[0])
        self.conv3_128 = self._make_layer(128, arch[1])
        self.conv3_256 = self._make_layer(256, arch[2])
        self.conv3_512a = self._make_layer(512, arch[3])
        self.conv3_512b = self._make_layer(512, arch[4])
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, num_classes))
    def _make_layer(self, channels, num):
        layers = []
        for _ in range(num):
            layers += [nn.Conv2d(self.in_channels, channels, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()]
            self.in_channels = channels
        return nn.Sequential(*layers)
    def forward(self, x):
        for block in [self.conv3_64, self.conv3_128, self.conv3_256, self.conv3_512a, self.conv3_512b]:
            x = F.max_pool2d(block(x), 2)
        return F.softmax(self.classifier(x.view(x.size(0), -1)), dim=1)

def build():
    n = spec["numClasses"]
    if spec["family"] == "tutorial":
        return TutorialVGG(spec["blocks"], n)
    if spec.get("name"):
        return getattr(torchvision.models, spec["name"])(num_classes=n)
    c = spec["resnet"]  # a ResNet configuration without a name: torchvision's ResNet, resized
    from torchvision.models.resnet import ResNet, BasicBlock, Bottleneck
    block = BasicBlock if c["block"] == "basic" else Bottleneck
    m = ResNet(block, c["layers"], num_classes=n, groups=c["groups"], width_per_group=c["widthPerGroup"],
               replace_stride_with_dilation=c["replaceStrideWithDilation"])
    m.inplanes, m.dilation = c["stemWidth"], 1
    m.conv1 = nn.Conv2d(3, c["stemWidth"], 7, 2, 3, bias=False)
    m.bn1 = nn.BatchNorm2d(c["stemWidth"])
    for i, planes in enumerate(c["planes"]):
        dilate = i > 0 and c["replaceStrideWithDilation"][i - 1]
        setattr(m, "layer%d" % (i + 1), m._make_layer(block, planes, c["layers"][i], stride=1 if i == 0 else 2, dilate=dilate))
    m.fc = nn.Linear(c["planes"][3] * block.expansion, n)
    return m

def state_dict():
    try:
        sd = torch.load(original, map_location="cpu", weights_only=True)
        for key in ["state_dict", "model_state_dict", "model", "net", "network", "state_dict_ema"]:
            if isinstance(sd, dict) and not all(torch.is_tensor(v) for v in sd.values()) and isinstance(sd.get(key), dict):
                sd = sd[key]
                break
        for prefix in ["module.", "_orig_mod."]:
            if sd and all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
        return sd
    except Exception:
        if not native:
            raise
        from safetensors.torch import load_file
        return load_file(native)

model = build()
model.load_state_dict(state_dict(), strict=True)
model.eval()
with torch.no_grad():
    y = model(torch.from_numpy(np.load(inp)))
np.save(out, y.numpy().astype(np.float32))
print("%s, torchvision %s" % (torch.__version__, torchvision.__version__))
"""#
}
