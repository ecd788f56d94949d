"""Train zoo's shipped demo model: a narrow torchvision ResNet on scikit-learn's digits.

What it makes (all in demo/, next to this script):

    digits_resnet.pth      the trained state_dict(), plain torch.save (zip format)
    test_inputs.npy        float32 [N, 3, 16, 16]: the held-out test set as the EXACT network
                           input (already preprocessed and normalised; feed it as is)
    test_labels.npy        int64 [N]: the true digit of each test image
    torch_logits.npy       float32 [N, 10]: PyTorch's logits on test_inputs (eval mode, no_grad,
                           float32, one batch of all N images)
    torch_predictions.npy  int64 [N]: argmax of torch_logits
    model.json             architecture, accuracies, sha256 of the .pth, seed, preprocessing

Regenerate (deterministic; 15-40 s on 2 CPU cores):

    /root/.cache/zoo-dev/venv/bin/python demo/train.py

Data: sklearn.datasets.load_digits(), 1797 8x8 grayscale images with pixel values 0..16 and
10 classes. A fixed stratified split, train_test_split(test_size=0.2, stratify=y,
random_state=SEED), holds out 360 images for test; the other 1437 train the model.

Architecture: torchvision.models.resnet.ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10) with
every width narrowed. torchvision hard-codes a 64-channel stem and planes 64/128/256/512; here
conv1/bn1 have STEM_WIDTH channels and layer1..layer4 have PLANES. Everything else is
torchvision's: conv1 7x7 stride 2 pad 3 (no bias), BN, ReLU, maxpool 3x3 stride 2 pad 1,
BasicBlocks (expansion 1) with stride 2 in layer2..4 and a downsample = conv1x1(stride) + BN
wherever the stride or channel count changes, adaptive average pool to 1x1, then fc. The layers
are built by torchvision's own ResNet._make_layer, so the state-dict keys are exactly
torchvision's (conv1.weight, bn1.*, layer1.0.conv1.weight, layer2.0.downsample.0.weight,
layer2.0.downsample.1.running_var, ..., fc.weight, fc.bias, num_batches_tracked included).
With a 16x16 input the spatial size goes 16 -> 8 (conv1) -> 4 (maxpool) -> 4 (layer1)
-> 2 (layer2) -> 1 (layer3) -> 1 (layer4) -> avgpool -> fc.

Preprocessing (what test_inputs.npy already holds), in float32:
    x = digits.images / 16                          # [0, 1]
    x = repeat each pixel 2x2                       # exact nearest-neighbour 8x8 -> 16x16
    x = stack [x, x, x] as channels                 # [3, 16, 16]
    x = (x - 0.5) / 0.25                            # every channel: mean 0.5, std 0.25

Training: Adam (lr 3e-3, weight decay 1e-4) with a cosine schedule, batch 64, light
augmentation (random shift of the 8x8 image by up to 1 pixel, zero fill, applied before
upsampling), torch.manual_seed(SEED), torch.use_deterministic_algorithms(True),
torch.set_num_threads(2).

Finally the script verifies its own artifacts: it reloads the .pth with
torch.load(weights_only=True) into a freshly built model with strict=True and checks that the
logits on test_inputs.npy (read back from disk) equal torch_logits.npy bit for bit.
"""

import hashlib
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torchvision.models.resnet import BasicBlock, ResNet

SEED = 0
STEM_WIDTH = 16
PLANES = [16, 32, 64, 128]
LAYERS = [1, 1, 1, 1]
NUM_CLASSES = 10
UPSAMPLE = 2  # 8x8 -> 16x16
MEAN, STD = 0.5, 0.25
EPOCHS = 40
BATCH = 64
LR = 3e-3
WEIGHT_DECAY = 1e-4
MAX_BYTES = 2 * 1024 * 1024

HERE = os.path.dirname(os.path.abspath(__file__))
PREPROCESSING = (
    "float32: x = digits.images / 16 (to [0,1]); upsample 8x8 -> 16x16 by exact 2x2 "
    "nearest-neighbour replication; replicate the single channel to 3 channels; normalise every "
    "channel with (x - 0.5) / 0.25. test_inputs.npy holds the final normalised input."
)


def narrow_resnet(stem_width=STEM_WIDTH, planes=PLANES, layers=LAYERS, num_classes=NUM_CLASSES):
    """torchvision's ResNet(BasicBlock, layers) with conv1 of `stem_width` and stages of `planes`.

    Builds the standard model, then rebuilds conv1/bn1, layer1..4 (with torchvision's own
    _make_layer, via the self.inplanes bookkeeping it uses) and fc at the narrow widths, and
    re-applies torchvision's initialisation (kaiming_normal_ fan_out for convs, BN 1/0).
    """
    m = ResNet(BasicBlock, layers, num_classes=num_classes)
    m.inplanes = stem_width
    m.dilation = 1
    m.conv1 = nn.Conv2d(3, stem_width, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = m._norm_layer(stem_width)
    m.layer1 = m._make_layer(BasicBlock, planes[0], layers[0])
    m.layer2 = m._make_layer(BasicBlock, planes[1], layers[1], stride=2)
    m.layer3 = m._make_layer(BasicBlock, planes[2], layers[2], stride=2)
    m.layer4 = m._make_layer(BasicBlock, planes[3], layers[3], stride=2)
    m.fc = nn.Linear(planes[3] * BasicBlock.expansion, num_classes)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.constant_(mod.weight, 1)
            nn.init.constant_(mod.bias, 0)
    return m


def expected_shapes(stem_width, planes, layers, num_classes):
    """The state dict torchvision's formulas give for a BasicBlock ResNet of these widths."""
    shapes = {}

    def bn(prefix, c):
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (stem_width, 3, 7, 7)
    bn("bn1", stem_width)
    inplanes = stem_width
    for stage, (p, n) in enumerate(zip(planes, layers)):
        stride = 1 if stage == 0 else 2
        for i in range(n):
            pre = f"layer{stage + 1}.{i}"
            cin = inplanes if i == 0 else p
            shapes[f"{pre}.conv1.weight"] = (p, cin, 3, 3)
            bn(f"{pre}.bn1", p)
            shapes[f"{pre}.conv2.weight"] = (p, p, 3, 3)
            bn(f"{pre}.bn2", p)
            if i == 0 and (stride != 1 or inplanes != p):
                shapes[f"{pre}.downsample.0.weight"] = (p, inplanes, 1, 1)
                bn(f"{pre}.downsample.1", p)
        inplanes = p
    shapes["fc.weight"] = (num_classes, planes[3])
    shapes["fc.bias"] = (num_classes,)
    return shapes


def check_layout(model):
    sd = model.state_dict()
    # Same keys, in the same order, as torchvision's own ResNet(BasicBlock, LAYERS).
    reference = ResNet(BasicBlock, LAYERS, num_classes=NUM_CLASSES).state_dict()
    assert list(sd.keys()) == list(reference.keys()), "key set differs from torchvision's"
    # And a subset of resnet18's names (resnet18 = the same with two blocks per stage).
    r18 = set(torchvision.models.resnet18(num_classes=NUM_CLASSES).state_dict().keys())
    assert set(sd.keys()) <= r18, sorted(set(sd.keys()) - r18)
    assert set(sd.keys()) == {k for k in r18 if not re.match(r"layer\d\.1\.", k)}
    assert any(k.endswith("num_batches_tracked") for k in sd)
    want = expected_shapes(STEM_WIDTH, PLANES, LAYERS, NUM_CLASSES)
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert got == want, {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
    assert "layer1.0.downsample.0.weight" not in sd  # stem width == planes[0]: no downsample, as in resnet18


def preprocess(images_0_16):
    """uint-valued [n, 8, 8] in 0..16 -> float32 [n, 3, 8*UPSAMPLE, 8*UPSAMPLE], normalised."""
    x = np.asarray(images_0_16, dtype=np.float32) / np.float32(16)
    x = x.repeat(UPSAMPLE, axis=1).repeat(UPSAMPLE, axis=2)
    x = np.repeat(x[:, None, :, :], 3, axis=1)
    x = (x - np.float32(MEAN)) / np.float32(STD)
    return np.ascontiguousarray(x, dtype=np.float32)


def shift_batch(images, gen):
    """Random shift of each 8x8 image (values 0..16) by -1..1 pixels per axis, zero fill."""
    n = images.shape[0]
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=gen)
    dx = torch.randint(0, 3, (n,), generator=gen)
    out = torch.empty_like(images)
    for i in range(n):
        out[i] = padded[i, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
    return out


def to_input(images_0_16):
    """Torch version of preprocess() for training batches (identical arithmetic)."""
    x = images_0_16 / 16.0
    x = x.repeat_interleave(UPSAMPLE, dim=1).repeat_interleave(UPSAMPLE, dim=2)
    x = x[:, None].expand(-1, 3, -1, -1)
    return (x - MEAN) / STD


def infer(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


def main():
    start = time.time()
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    digits = load_digits()
    images = digits.images.astype(np.float32)  # [1797, 8, 8], 0..16
    labels = digits.target.astype(np.int64)
    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(idx, test_size=0.2, stratify=labels, random_state=SEED)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)

    x_train_raw = torch.from_numpy(images[train_idx])
    y_train = torch.from_numpy(labels[train_idx])
    test_inputs = preprocess(images[test_idx])
    test_labels = labels[test_idx]
    train_inputs = preprocess(images[train_idx])
    assert np.array_equal(to_input(x_train_raw).numpy(), train_inputs)

    model = narrow_resnet()
    check_layout(model)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: stem {STEM_WIDTH}, planes {PLANES}, layers {LAYERS}, {n_params} parameters")

    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = (len(y_train) + BATCH - 1) // BATCH
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS * steps_per_epoch)
    gen = torch.Generator().manual_seed(SEED)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(y_train), generator=gen)
        total = 0.0
        for b in range(steps_per_epoch):
            sel = perm[b * BATCH : (b + 1) * BATCH]
            if len(sel) < 2:  # BatchNorm needs more than one value per channel
                continue
            xb = to_input(shift_batch(x_train_raw[sel], gen))
            loss = loss_fn(model(xb), y_train[sel])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(sel)
        if epoch % 5 == 4 or epoch == EPOCHS - 1:
            test_acc = (infer(model, torch.from_numpy(test_inputs)).argmax(1).numpy() == test_labels).mean()
            print(f"epoch {epoch + 1:3d}  loss {total / len(y_train):.4f}  test acc {test_acc:.4f}")

    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(test_inputs)).numpy()
        train_logits = model(torch.from_numpy(train_inputs)).numpy()
    predictions = logits.argmax(1).astype(np.int64)
    test_acc = float((predictions == test_labels).mean())
    train_acc = float((train_logits.argmax(1) == labels[train_idx]).mean())
    print(f"train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f} ({len(test_labels)} test images)")

    # Artifacts.
    pth = os.path.join(HERE, "digits_resnet.pth")
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    state = type(model.state_dict())(state)  # OrderedDict, as state_dict() returns
    torch.save(state, pth)
    size = os.path.getsize(pth)
    assert size <= MAX_BYTES, f"{pth} is {size} bytes"
    sha = hashlib.sha256(open(pth, "rb").read()).hexdigest()
    np.save(os.path.join(HERE, "test_inputs.npy"), test_inputs)
    np.save(os.path.join(HERE, "test_labels.npy"), test_labels.astype(np.int64))
    np.save(os.path.join(HERE, "torch_logits.npy"), logits.astype(np.float32))
    np.save(os.path.join(HERE, "torch_predictions.npy"), predictions)
    meta = {
        "name": "digits_resnet",
        "architecture": {
            "family": "resnet",
            "block": "basic",
            "layers": LAYERS,
            "planes": PLANES,
            "stem_width": STEM_WIDTH,
            "num_classes": NUM_CLASSES,
            "groups": 1,
            "width_per_group": 64,
        },
        "input_shape": list(test_inputs.shape[1:]),
        "test_accuracy": test_acc,
        "train_accuracy": train_acc,
        "n_test": int(len(test_labels)),
        "n_train": int(len(train_idx)),
        "n_parameters": int(n_params),
        "sha256": sha,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "seed": SEED,
        "split": f"sklearn train_test_split(test_size=0.2, stratify=labels, random_state={SEED}), indices sorted",
        "normalization": {"mean": [MEAN] * 3, "std": [STD] * 3},
        "preprocessing": PREPROCESSING,
    }
    with open(os.path.join(HERE, "model.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")

    # Verify the artifacts from disk.
    loaded = torch.load(pth, weights_only=True)
    assert list(loaded.keys()) == list(model.state_dict().keys())
    assert all(t.dtype in (torch.float32, torch.int64) for t in loaded.values())
    fresh = narrow_resnet()
    fresh.load_state_dict(loaded, strict=True)
    fresh.eval()
    x = np.load(os.path.join(HERE, "test_inputs.npy"))
    assert x.dtype == np.float32 and x.shape == (len(test_labels), 3, 8 * UPSAMPLE, 8 * UPSAMPLE)
    with torch.no_grad():
        again = fresh(torch.from_numpy(x)).numpy()
    saved_logits = np.load(os.path.join(HERE, "torch_logits.npy"))
    assert saved_logits.dtype == np.float32 and saved_logits.shape == (len(test_labels), NUM_CLASSES)
    assert np.array_equal(again, saved_logits), np.abs(again - saved_logits).max()
    assert np.array_equal(np.load(os.path.join(HERE, "torch_predictions.npy")), again.argmax(1))
    assert np.load(os.path.join(HERE, "test_labels.npy")).dtype == np.int64
    assert hashlib.sha256(open(pth, "rb").read()).hexdigest() == meta["sha256"]
    total_bytes = sum(os.path.getsize(os.path.join(HERE, f)) for f in os.listdir(HERE)
                      if os.path.isfile(os.path.join(HERE, f)))
    print(f"verified: strict reload reproduces torch_logits exactly; {pth} {size} bytes, sha256 {sha}")
    print(f"demo/ total {total_bytes} bytes; {time.time() - start:.1f} s")
    if test_acc < 0.95:
        print(f"warning: test accuracy {test_acc:.4f} < 0.95", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
