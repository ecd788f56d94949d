#!/usr/bin/env python3
"""Makes the tiny image fixtures of Tests/ImagesTests and what PIL + torchvision make of them.

Regenerate (from the repository root, in the venv of scripts/venv):

    ~/.cache/zoo-dev/venv/bin/python Tests/Fixtures/make_images.py

Writes Tests/Fixtures/images/: gray.png, rgb.png, palette.png, rgba.png, gray16.png and
small.jpg (each a few hundred bytes), and expected.json with, for each file, the pixels of
`Image.open(f).convert("RGB")`; and for a 13 x 9 pattern, its pixels, PIL's BILINEAR resizes to
several sizes, and torchvision's Resize(8) + CenterCrop(6) + ToTensor bytes.
"""

import json
import os

import numpy as np
from PIL import Image
from torchvision import transforms as T

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
os.makedirs(OUT, exist_ok=True)

rng = np.random.default_rng(16)
w, h = 13, 9
yy, xx = np.mgrid[0:h, 0:w]
# Smooth gradients plus noise plus a hard edge: exercises weights, rounding and clipping.
pattern = np.stack([xx * 19 % 256, yy * 28 + 3, (xx * yy * 7) % 256], axis=2) + rng.integers(-20, 20, (h, w, 3))
pattern[:, 6:, 1] = 255
pattern = np.clip(pattern, 0, 255).astype(np.uint8)
image = Image.fromarray(pattern, "RGB")


def rgb(im):
    return np.asarray(im.convert("RGB"), dtype=np.uint8).reshape(-1).tolist()


files = {}
image.convert("L").save(os.path.join(OUT, "gray.png"))
image.save(os.path.join(OUT, "rgb.png"))
image.quantize(colors=7).save(os.path.join(OUT, "palette.png"))
rgba = image.convert("RGBA")
rgba.putalpha(Image.fromarray((xx * 20).astype(np.uint8), "L"))
rgba.save(os.path.join(OUT, "rgba.png"))
Image.fromarray((yy * 60 + xx * 7).astype(np.uint16)).save(os.path.join(OUT, "gray16.png"))
image.save(os.path.join(OUT, "small.jpg"), quality=90, subsampling=2)
for name in ("gray.png", "rgb.png", "palette.png", "rgba.png", "gray16.png", "small.jpg"):
    im = Image.open(os.path.join(OUT, name))
    files[name] = {"width": im.width, "height": im.height, "mode": im.mode, "rgb": rgb(im)}

resizes = []
for size in [(5, 4), (13, 3), (4, 9), (17, 11), (1, 1)]:
    resizes.append({"width": size[0], "height": size[1], "rgb": rgb(image.resize(size, Image.BILINEAR))})

pipeline = T.Compose([T.Resize(8), T.CenterCrop(6), T.ToTensor()])
tensor = pipeline(image)
expected = {
    "files": files,
    "pattern": {"width": w, "height": h, "rgb": rgb(image)},
    "resizes": resizes,
    "resize8_crop6_chw_bytes": np.rint(tensor.numpy() * 255).astype(int).reshape(-1).tolist(),
}
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, separators=(",", ":"))
    f.write("\n")
print("wrote", OUT)
