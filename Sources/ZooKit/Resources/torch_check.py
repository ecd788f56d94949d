"""`zoo verify --against-torch`: the model zoo checked, run once more by PyTorch and torchvision.

zoo builds this file into its binary (Plugins/Embed) and runs it (Sources/ZooKit/Torch.swift) as

    python -I -c <this file> ORIGINAL NATIVE SPEC INPUT OUTPUT

in a fresh private folder, with a scrubbed environment: no file of the user's folders is on the
import path. ORIGINAL is the checkpoint (read by torch.load with weights_only=True), NATIVE the
safetensors copy ("" for none; used when torch.load refuses the original), INPUT a float32 .npy
batch, OUTPUT where the model's output goes (.npy). SPEC is JSON: family ("resnet", "vgg",
"tutorial"), name (a torchvision builder) or resnet (a configuration) or blocks (the tutorial
VGG's), numClasses, and wrapperKeys / prefixes, the lists zoo's own reader unwraps and strips
(StateDict.wrapperKeys, StateDict.strippablePrefixes). Prints the torch and torchvision versions.

Tests/Interop/interop.py and Tests/Fixtures/make_fidelity.py import TutorialVGG from here.
"""

import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class TutorialVGG(nn.Module):
    """The tutorial VGG of the seed document (/work/shared/seed/000_e80b18d068bb1877.txt), verbatim
    except its name and F.softmax(out) -> F.softmax(out, dim=1) (the same for 2-d input, no warning)."""

    def __init__(self, arch: object, num_classes=1000) -> object:
        super(TutorialVGG, self).__init__()
        self.in_channels = 3
        self.conv3_64 = self.__make_layer(64, arch[0])
        self.conv3_128 = self.__make_layer(128, arch[1])
        self.conv3_256 = self.__make_layer(256, arch[2])
        self.conv3_512a = self.__make_layer(512, arch[3])
        self.conv3_512b = self.__make_layer(512, arch[4])
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def __make_layer(self, channels, num):
        layers = []
        for i in range(num):
            layers.append(nn.Conv2d(self.in_channels, channels, 3, stride=1, padding=1, bias=False))  # same padding
            layers.append(nn.BatchNorm2d(channels))
            layers.append(nn.ReLU())
            self.in_channels = channels
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.conv3_64(x)
        out = F.max_pool2d(out, 2)
        out = self.conv3_128(out)
        out = F.max_pool2d(out, 2)
        out = self.conv3_256(out)
        out = F.max_pool2d(out, 2)
        out = self.conv3_512a(out)
        out = F.max_pool2d(out, 2)
        out = self.conv3_512b(out)
        out = F.max_pool2d(out, 2)
        out = out.view(out.size(0), -1)
        out = self.classifier(out)
        return F.softmax(out, dim=1)


def build(spec):
    """The network SPEC describes, freshly initialised."""
    import torchvision
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    n = spec["numClasses"]
    if spec["family"] == "tutorial":
        return TutorialVGG(spec["blocks"], n)
    if spec.get("name"):
        return getattr(torchvision.models, spec["name"])(num_classes=n)
    c = spec["resnet"]  # a ResNet configuration without a name: torchvision's ResNet, resized
    block = BasicBlock if c["block"] == "basic" else Bottleneck
    m = ResNet(block, c["layers"], num_classes=n, groups=c["groups"], width_per_group=c["width_per_group"],
               replace_stride_with_dilation=c["replace_stride_with_dilation"])
    m.inplanes, m.dilation = c["stem_width"], 1
    m.conv1 = nn.Conv2d(3, c["stem_width"], 7, 2, 3, bias=False)
    m.bn1 = nn.BatchNorm2d(c["stem_width"])
    for i, planes in enumerate(c["planes"]):
        dilate = i > 0 and c["replace_stride_with_dilation"][i - 1]
        setattr(m, "layer%d" % (i + 1), m._make_layer(block, planes, c["layers"][i], stride=1 if i == 0 else 2, dilate=dilate))
    m.fc = nn.Linear(c["planes"][3] * block.expansion, n)
    return m


def unwrap(obj, wrapper_keys, prefixes):
    """The state dict in what torch.load returned, found as zoo's reader finds it: the dict itself
    when it holds only tensors, else the first dict of tensors under a wrapper key, then under any
    other key, else the dict's tensors; then each prefix every key shares is stripped."""

    def tensors(d):
        return isinstance(d, dict) and len(d) > 0 and all(torch.is_tensor(v) for v in d.values())

    sd = obj
    if isinstance(obj, dict) and not tensors(obj):
        keys = [k for k in wrapper_keys if k in obj] + [k for k in obj if k not in wrapper_keys]
        sd = next((obj[k] for k in keys if tensors(obj[k])), None)
        if sd is None:
            sd = {k: v for k, v in obj.items() if torch.is_tensor(v)}
    stripping = True
    while sd and stripping:
        stripping = False
        for prefix in prefixes:
            if all(isinstance(k, str) and k.startswith(prefix) and len(k) > len(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                stripping = True
                break
    return sd


def state_dict(original, native, spec):
    try:
        return unwrap(torch.load(original, map_location="cpu", weights_only=True), spec["wrapperKeys"], spec["prefixes"])
    except Exception:
        if not native:
            raise
        from safetensors.torch import load_file
        return load_file(native)


def main(original, native, spec, inp, out):
    import numpy as np
    import torchvision

    spec = json.loads(spec)
    torch.set_num_threads(2)
    model = build(spec)
    model.load_state_dict(state_dict(original, native, spec), strict=True)
    model.eval()
    with torch.no_grad():
        y = model(torch.from_numpy(np.load(inp)))
    np.save(out, y.numpy().astype(np.float32))
    print("%s, torchvision %s" % (torch.__version__, torchvision.__version__))


if __name__ == "__main__":
    main(*sys.argv[1:6])
