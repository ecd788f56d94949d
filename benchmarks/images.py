#!/usr/bin/env python3
"""Image classification speed: zoo vs PIL + torchvision, in the same run (issue 16).

    swift build -c release --product zoo
    ~/.cache/zoo-dev/venv/bin/python benchmarks/images.py [--zoo PATH] [--rounds 5] [--out benchmarks/IMAGES.md]

1. Decode + preprocess of 1-megapixel JPEGs (24 files made from scikit-learn's sample photos,
   1155 x 866 and 866 x 1155, quality 90, 4:2:0), one image at a time on one thread:
   zoo (`zoo classify --time-preprocess ROUNDS`, hidden: RGBImage(contentsOf:) +
   Preprocessing.tensor) vs `Compose([Resize(256), CenterCrop(224), ToTensor(), Normalize(...)])
   (Image.open(f).convert("RGB"))`, torch on one thread. Median milliseconds per image,
   interleaved rounds.
   Target: zoo <= 1.0x.
2. End to end, a folder of 200 such images through resnet18 (seeded random weights, torch.save),
   batch 16: `zoo classify FOLDER --model FILE --batch 16 --json` (whole process: start, model
   load, decode, forward) vs a plain torch loop in this process (model load, then PIL,
   transforms, model, softmax, top-5 per batch of 16; torch.set_num_threads(2)). Images per
   second, median of --e2e-rounds runs.
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_zoo():
    out = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True)
    return os.path.join(out.stdout.strip(), "zoo")


def make_images(folder, count):
    import sklearn.datasets
    images = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
    photos = [Image.open(os.path.join(images, n)).convert("RGB") for n in ("china.jpg", "flower.jpg")]
    os.makedirs(folder, exist_ok=True)
    files = []
    for i in range(count):
        photo = photos[i % 2]
        # Different crops, so that no two files are the same; about one megapixel each.
        box = (i % 7 * 5, i % 5 * 4, photo.width - i % 3 * 6, photo.height - i % 4 * 5)
        size = (1155, 866) if i % 4 else (866, 1155)
        f = os.path.join(folder, f"img{i:03d}.jpg")
        if not os.path.exists(f):
            photo.crop(box).resize(size, Image.BICUBIC).save(f, quality=90, subsampling=2)
        files.append(f)
    return files


LOAD_BEFORE = " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", default=os.environ.get("ZOO_BIN") or default_zoo())
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--e2e-rounds", type=int, default=3)
    ap.add_argument("--work", default="/tmp/zoo-bench-images")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "IMAGES.md"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    folder = os.path.join(args.work, "photos")
    files = make_images(folder, 200)
    sample = files[:24]
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    pipeline = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(mean, std)])
    megapixels = statistics.median(Image.open(f).width * Image.open(f).height for f in sample) / 1e6

    # 1. decode + preprocess, interleaved rounds, one thread each (torch's ToTensor and
    # Normalize on two threads spend more time waking them than computing, on a busy machine).
    torch.set_num_threads(1)
    zoo_ms, pil_ms = [], []
    for _ in range(args.rounds):
        out = subprocess.run([args.zoo, "classify", "--time-preprocess", "1", *sample], capture_output=True, text=True, check=True)
        zoo_ms.append(float(out.stdout.split('"median_ms": ')[1].rstrip("}\n ")))
        times = []
        for f in sample:
            t0 = time.perf_counter()
            pipeline(Image.open(f).convert("RGB"))
            times.append((time.perf_counter() - t0) * 1000)
        pil_ms.append(statistics.median(times))
    zoo_pre, pil_pre = statistics.median(zoo_ms), statistics.median(pil_ms)

    # 2. end to end.
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    checkpoint = os.path.join(args.work, "resnet18-seeded.pth")
    torch.save(model.state_dict(), checkpoint)
    zoo_rate, torch_rate = [], []
    for _ in range(args.e2e_rounds):
        t0 = time.perf_counter()
        subprocess.run([args.zoo, "classify", folder, "--model", checkpoint, "--batch", "16", "--json", "-q"],
                       capture_output=True, check=True)
        zoo_rate.append(len(files) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        net = torchvision.models.resnet18()
        net.load_state_dict(torch.load(checkpoint, weights_only=True))
        net.eval()
        with torch.no_grad():
            for start in range(0, len(files), 16):
                batch = torch.stack([pipeline(Image.open(f).convert("RGB")) for f in files[start:start + 16]])
                torch.softmax(net(batch), dim=1).topk(5)
        torch_rate.append(len(files) / (time.perf_counter() - t0))
    zoo_e2e, torch_e2e = statistics.median(zoo_rate), statistics.median(torch_rate)

    zoo_version = subprocess.run([args.zoo, "--version"], capture_output=True, text=True).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    load_before = LOAD_BEFORE
    report = f"""# Image classification speed: zoo vs PIL + torchvision

Generated by `benchmarks/images.py` on {datetime.datetime.now():%Y-%m-%d %H:%M}. Machine: {os.cpu_count()} CPUs, {platform.machine()}, kernel {platform.release()}.
zoo {zoo_version}, torch {torch.__version__}, torchvision {torchvision.__version__}, Pillow {PIL.__version__}. Load average (1/5/15 min) before: {load_before}, after: {load} (on {os.cpu_count()} CPUs: above ~0.5 means other work shared the machine).

| | zoo | PIL + torchvision | zoo / theirs |
|---|---:|---:|---:|
| decode + preprocess, {megapixels:.2f}-megapixel JPEG, per image (median of {args.rounds} rounds x {len(sample)} files) | {zoo_pre:.2f} ms | {pil_pre:.2f} ms | **{zoo_pre / pil_pre:.2f}x** time (target <= 1.0x: {"met" if zoo_pre <= pil_pre else "NOT met"}) |
| end to end, {len(files)} images, resnet18, batch 16 (median of {args.e2e_rounds}) | {zoo_e2e:.1f} images/s | {torch_e2e:.1f} images/s | **{zoo_e2e / torch_e2e:.2f}x** throughput |

Per-round medians (ms per image), zoo: {", ".join(f"{x:.2f}" for x in zoo_ms)}; PIL + torchvision: {", ".join(f"{x:.2f}" for x in pil_ms)}.
End to end (images/s), zoo: {", ".join(f"{x:.1f}" for x in zoo_rate)}; torch loop: {", ".join(f"{x:.1f}" for x in torch_rate)}.

zoo's end-to-end time is the whole `zoo classify` process (start, model load, decoding on both cores, forward);
the torch loop's starts after `import torch` (model load, then PIL decode and transforms on one thread, forward on 2 threads).
zoo computes only the pixels of the center crop (the same values PIL computes for them in the full resize);
its decode is libjpeg-turbo's, as PIL's is.
"""
    with open(args.out, "w") as f:
        f.write(report)
    print(report)


main()
