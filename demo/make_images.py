#!/usr/bin/env python3
"""Writes a few of the demo's held-out digits as 16 x 16 PNGs in demo/images/, for `zoo classify`:

    ~/.cache/zoo-dev/venv/bin/python demo/make_images.py
    zoo classify demo/images --model demo --top 3

Each PNG is test_inputs.npy un-normalised (x * 0.25 + 0.5) and rounded to 8 bits; the catalog's
preprocessing for the demo (resize 16, crop 16, mean 0.5, std 0.25) turns it back into the input.
The file name says the true digit.
"""

import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
inputs = np.load(os.path.join(HERE, "test_inputs.npy"))
labels = np.load(os.path.join(HERE, "test_labels.npy"))
os.makedirs(os.path.join(HERE, "images"), exist_ok=True)
for i in (0, 1, 2, 3, 5, 8):
    pixels = np.clip(np.rint((inputs[i, 0] * 0.25 + 0.5) * 255), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "L").save(os.path.join(HERE, "images", f"test{i:03d}-digit{labels[i]}.png"))
