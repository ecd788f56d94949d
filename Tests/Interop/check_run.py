#!/usr/bin/env python3
"""Interop checks for `zoo run`: forward passes compared with live PyTorch.

Invoked by Tests/Interop/run as

    python -u check_run.py --zoo /path/to/zoo --workdir /tmp/scratch

(--zoo / --workdir default to $ZOO_BIN / $ZOO_INTEROP_WORKDIR). Prints one line
per check on stdout, "PASS <name> (info)" or "FAIL <name>: reason", and exits 1
if any check failed. Uses torch/torchvision/numpy and the shared harness
interop.py beside this file.

Contract under test:
    zoo run FILE [--arch NAME] --input X.npy --output Y.npy [--json]
reads a float32 NCHW batch, writes float32 logits (softmax for the tutorial VGG);
--json prints {"architecture", "load_ms", "forward_ms", "output_shape", ...}; exit 1 when
the checkpoint does not fit the architecture, 2 for bad usage or bad input.

Every model gets non-default BatchNorm statistics and affine parameters so that
BN folding and epsilon mistakes show. Fidelity criterion:
    max|zoo - torch| <= 1e-4 * max|torch|

Environment: ZOO_RUN_TIMEOUT (default 300) seconds per zoo invocation.
"""

import os
import re
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # interop.py, even under python -P
import interop
from interop import (TOL, THREADS, CheckError, build, check, info, json_object, make_input, path,
                     remove, tail, tutorial_vgg11, zoo)

interop.setup(__doc__, timeout=300, timeout_env="ZOO_RUN_TIMEOUT")


def save(obj, name, legacy=False):
    return interop.save(obj, name, legacy=legacy, show_format=True)


def save_npy(arr, name):
    p = path(name)
    np.save(p, arr)
    return p


def torch_forward(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


# --------------------------------------------------------------------------
# zoo run + comparison

def zoo_run(ckpt, x_path, out_name, arch=None):
    """`zoo run --json`; returns (doc, y). Raises CheckError on any contract violation."""
    out = path(out_name)
    remove(out)
    argv = ["run", ckpt, "--input", x_path, "--output", out, "--json"]
    if arch:
        argv[2:2] = ["--arch", arch]
    r, _ = zoo(*argv)
    if r.returncode != 0:
        raise CheckError(f"exit {r.returncode}; stderr: {tail(r.stderr)}")
    doc = json_object(r.stdout)
    lacking = [k for k in ("architecture", "load_ms", "forward_ms", "output_shape") if k not in doc]
    if lacking:
        raise CheckError(f"JSON lacks fields {lacking}: {tail(r.stdout)}")
    for k in ("load_ms", "forward_ms"):
        v = doc[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
            raise CheckError(f"JSON {k} is {v!r}, expected a non-negative number")
    if not os.path.exists(out):
        raise CheckError(f"exit 0 but no output file {out}")
    try:
        y = np.load(out, allow_pickle=False)
    except Exception as e:
        raise CheckError(f"output is not a readable .npy: {type(e).__name__}: {e}")
    remove(out)
    if y.dtype != np.float32:
        raise CheckError(f"output dtype {y.dtype}, expected float32")
    if doc["output_shape"] != list(y.shape):
        raise CheckError(f"JSON output_shape {doc['output_shape']} but the .npy has shape {list(y.shape)}")
    return doc, y


def compare(y, ref):
    """Returns the ratio max|y - ref| / max|ref|; raises CheckError beyond TOL."""
    if y.shape != ref.shape:
        raise CheckError(f"output shape {list(y.shape)}, torch {list(ref.shape)}")
    if not np.isfinite(y).all():
        bad = np.argwhere(~np.isfinite(y))
        raise CheckError(f"{len(bad)} non-finite outputs, first at {tuple(int(i) for i in bad[0])}: "
                         f"{y[tuple(bad[0])]}")
    ref64 = ref.astype(np.float64)
    diff = np.abs(y.astype(np.float64) - ref64)
    scale = float(np.abs(ref64).max())
    ratio = float(diff.max()) / scale if scale > 0 else float(diff.max())
    if not ratio <= TOL:
        i = np.unravel_index(int(diff.argmax()), diff.shape)
        top_z = y.reshape(y.shape[0], -1).argmax(1).tolist()
        top_t = ref.reshape(ref.shape[0], -1).argmax(1).tolist()
        raise CheckError(f"max|diff|/max|torch| = {ratio:.2e} > {TOL:.0e}; worst at {tuple(int(k) for k in i)}: "
                         f"zoo {y[i]:.6g}, torch {ref[i]:.6g}; max|torch| = {scale:.4g}; "
                         f"argmax zoo {top_z} vs torch {top_t}")
    return ratio


def fidelity(name, ckpt, x, ref, expected_arch, arch=None):
    """Run zoo on x and compare with ref; returns the JSON doc (or None on failure)."""
    result = [None]

    @check(name)
    def _():
        x_path = save_npy(x, f"{name}_input.npy")
        doc, y = zoo_run(ckpt, x_path, f"{name}_output.npy", arch=arch)
        remove(x_path)
        ratio = compare(y, ref)
        if doc["architecture"] != expected_arch:
            raise CheckError(f"JSON architecture {doc['architecture']!r}, expected {expected_arch!r} "
                             f"(outputs matched: ratio {ratio:.1e})")
        result[0] = doc
        how = f"--arch {arch}" if arch else "detected"
        return (f"max|diff|/max|torch| = {ratio:.1e}, {how} architecture {doc['architecture']}, "
                f"output {doc['output_shape']}, load {doc['load_ms']:.0f} ms, forward {doc['forward_ms']:.0f} ms")

    return result[0]


def expect_exit(name, argv, code, stderr_check=None):
    """Check that `zoo *argv` exits with `code` and says something on stderr."""

    @check(name)
    def _():
        r, _ = zoo(*argv)
        if r.returncode != code:
            raise CheckError(f"exit {r.returncode}, expected {code}; stdout: {tail(r.stdout, 150)}; "
                             f"stderr: {tail(r.stderr)}")
        if not r.stderr.strip():
            raise CheckError(f"exit {code} but nothing on stderr")
        if stderr_check:
            stderr_check(r.stderr)
        return f"exit {code}: {tail(r.stderr, 120)}"


def ints_in(s):
    return [int(t) for t in re.findall(r"\d+", s)]


def has_run(seq, sub):
    return any(seq[i:i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def meta_state_dict(ctor):
    with torch.device("meta"):
        return ctor().state_dict()


# --------------------------------------------------------------------------
# resnet18 (legacy format, batch 2, detection) + error handling on its checkpoint

m = build("resnet18", torchvision.models.resnet18, seed=18)
sd18 = m.state_dict()
ckpt18 = save(sd18, "resnet18.pth", legacy=True)
x = make_input((2, 3, 224, 224), seed=1)
fidelity("run_resnet18", ckpt18, x, torch_forward(m, x), "resnet18")
del m

x_ok = save_npy(make_input((1, 3, 224, 224), seed=2), "ok_input.npy")
out_err = path("error_output.npy")


def mentions_missing_resnet34_key(stderr):
    missing = sorted(set(meta_state_dict(torchvision.models.resnet34)) - set(sd18))
    blocks = sorted({".".join(k.split(".")[:2]) for k in missing})  # layer1.2, layer2.2, ...
    hits = [b for b in blocks if re.search(re.escape(b) + r"(?!\d)", stderr)]
    if not hits:
        raise CheckError(f"exit 1 but stderr names none of the missing blocks {blocks[:4]}...: {tail(stderr)}")


expect_exit("run_error_resnet18_as_resnet34_exit_1",
            ["run", ckpt18, "--arch", "resnet34", "--input", x_ok, "--output", out_err], 1,
            mentions_missing_resnet34_key)

# one tensor with the wrong shape: stderr names the key and both shapes
BAD_KEY = "layer3.1.conv2.weight"
sd_bad = dict(sd18)
sd_bad[BAD_KEY] = torch.randn(256, 128, 3, 3)
ckpt_bad = save(sd_bad, "resnet18_bad_shape.pt")


def names_key_and_shapes(stderr):
    got = ints_in(stderr)
    missing = [what for what, ok in ((BAD_KEY, BAD_KEY in stderr),
                                     ("expected shape [256, 256, 3, 3]", has_run(got, [256, 256, 3, 3])),
                                     ("actual shape [256, 128, 3, 3]", has_run(got, [256, 128, 3, 3]))) if not ok]
    if missing:
        raise CheckError(f"stderr does not mention {missing}: {tail(stderr)}")


expect_exit("run_error_shape_mismatch_exit_1",
            ["run", ckpt_bad, "--arch", "resnet18", "--input", x_ok, "--output", out_err], 1,
            names_key_and_shapes)

# one unexpected extra tensor
EXTRA_KEY = "layer2.0.bn1.extra_tensor"
sd_bad = dict(sd18)
sd_bad[EXTRA_KEY] = torch.zeros(128)
remove(ckpt_bad)
ckpt_bad = save(sd_bad, "resnet18_extra_key.pt")


def names_extra_key(stderr):
    if EXTRA_KEY not in stderr:
        raise CheckError(f"stderr does not name {EXTRA_KEY}: {tail(stderr)}")


expect_exit("run_error_unexpected_key_exit_1",
            ["run", ckpt_bad, "--arch", "resnet18", "--input", x_ok, "--output", out_err], 1,
            names_extra_key)
remove(ckpt_bad)
del sd_bad

expect_exit("run_error_missing_input_option_exit_2",
            ["run", ckpt18, "--output", out_err], 2)
expect_exit("run_error_float64_input_exit_2",
            ["run", ckpt18, "--input", save_npy(make_input((1, 3, 224, 224), 3).astype(np.float64),
                                                "float64.npy"), "--output", out_err], 2)
expect_exit("run_error_rank3_input_exit_2",
            ["run", ckpt18, "--input", save_npy(make_input((3, 224, 224), 4), "rank3.npy"),
             "--output", out_err], 2)
expect_exit("run_error_4_channels_exit_2",
            ["run", ckpt18, "--input", save_npy(make_input((1, 4, 224, 224), 5), "channels4.npy"),
             "--output", out_err], 2)
remove(ckpt18, path("float64.npy"), path("rank3.npy"), path("channels4.npy"), out_err)
del sd18

# --------------------------------------------------------------------------
# resnet18 with a 10-class head: detected as resnet18, output [N, 10]; also a
# non-square input with odd intermediate sizes (200x168 -> 100x84 -> ... -> 7x6)

m = build("resnet18_10class", torchvision.models.resnet18, seed=1810)
torch.manual_seed(1811)
m.fc = nn.Linear(512, 10)
ckpt = save(m.state_dict(), "resnet18_10class.pt")
x = make_input((2, 3, 224, 224), seed=6)
fidelity("run_resnet18_10_classes", ckpt, x, torch_forward(m, x), "resnet18")
x = make_input((1, 3, 200, 168), seed=7)
fidelity("run_resnet18_nonsquare_input_200x168", ckpt, x, torch_forward(m, x), "resnet18")
remove(ckpt)
del m

# --------------------------------------------------------------------------
# resnet50 (zip, detection) + speed report

m = build("resnet50", torchvision.models.resnet50, seed=50)
ckpt = save(m.state_dict(), "resnet50.pt")
x = make_input((1, 3, 224, 224), seed=8)
doc50 = fidelity("run_resnet50", ckpt, x, torch_forward(m, x), "resnet50")


@check("speed_resnet50")
def _():
    xt = torch.from_numpy(x)
    times = []
    with torch.no_grad():
        for i in range(7):
            t0 = time.perf_counter()
            m(xt)
            times.append((time.perf_counter() - t0) * 1000.0)
    torch_cold, torch_ms = times[0], statistics.median(times[2:])
    x_path = save_npy(x, "speed_input.npy")
    docs = [doc50] if doc50 is not None else []
    while len(docs) < 3:
        doc, _ = zoo_run(ckpt, x_path, "speed_output.npy")
        docs.append(doc)
    remove(x_path)
    zoo_runs = [float(d["forward_ms"]) for d in docs]
    zoo_ms = statistics.median(zoo_runs)
    load_ms = statistics.median(float(d["load_ms"]) for d in docs)
    return (f"torch {torch_ms:.1f} ms, zoo {zoo_ms:.1f} ms, ratio {zoo_ms / torch_ms:.2f}; "
            f"torch {THREADS} threads median of 5 after 2 warm-ups (its cold first call {torch_cold:.1f} ms); "
            f"zoo median forward_ms of 3 invocations, each one cold forward, no warm-up "
            f"[{', '.join(f'{t:.1f}' for t in zoo_runs)}], zoo load_ms median {load_ms:.0f}")


remove(ckpt)
del m

# --------------------------------------------------------------------------
# resnext50_32x4d (zip), wide_resnet50_2 (legacy)

for label, ctor, seed, legacy in (("resnext50_32x4d", torchvision.models.resnext50_32x4d, 5032, False),
                                  ("wide_resnet50_2", torchvision.models.wide_resnet50_2, 502, True)):
    m = build(label, ctor, seed=seed)
    ckpt = save(m.state_dict(), f"{label}.{'pth' if legacy else 'pt'}", legacy=legacy)
    x = make_input((1, 3, 224, 224), seed=seed + 1)
    fidelity(f"run_{label}", ckpt, x, torch_forward(m, x), label)
    remove(ckpt)
    del m

# --------------------------------------------------------------------------
# vgg11_bn (zip, batch 2)

m = build("vgg11_bn", torchvision.models.vgg11_bn, seed=111)
ckpt = save(m.state_dict(), "vgg11_bn.pt")
x = make_input((2, 3, 224, 224), seed=112)
fidelity("run_vgg11_bn", ckpt, x, torch_forward(m, x), "vgg11_bn")
remove(ckpt)
del m

# --------------------------------------------------------------------------
# vgg16 (zip, explicit --arch): 224x224, a small odd-sized input that exercises the
# floor-mode max pools and AdaptiveAvgPool2d((7, 7)) upsampling 1x2 -> 7x7, and
# a 16x16 input that is too small (exit 2)

m = build("vgg16", torchvision.models.vgg16, seed=16)
ckpt = save(m.state_dict(), "vgg16.pt")
x = make_input((1, 3, 224, 224), seed=17)
fidelity("run_vgg16", ckpt, x, torch_forward(m, x), "vgg16", arch="vgg16")
x = make_input((1, 3, 50, 90), seed=18)
fidelity("run_vgg16_small_input_50x90", ckpt, x, torch_forward(m, x), "vgg16")
del m
expect_exit("run_error_vgg16_16x16_input_exit_2",
            ["run", ckpt, "--input", save_npy(make_input((1, 3, 16, 16), 19), "tiny.npy"),
             "--output", path("error_output.npy")], 2)
remove(ckpt, path("tiny.npy"), path("error_output.npy"))

# --------------------------------------------------------------------------
# tutorial VGG11 (zip, detection from conv3_64.* keys), softmax output. With random
# init its logits are ~0.02 wide, so the softmax would be nearly flat and blind to
# errors; scale the last Linear so the logits spread to std ~2 first.

m = build("tutorial_vgg11", tutorial_vgg11, seed=11)
x = make_input((1, 3, 224, 224), seed=12)
logits = []
hook = m.classifier.register_forward_hook(lambda mod, inp, out: logits.append(out.detach().clone()))
torch_forward(m, x)
hook.remove()
spread = float(logits[0].std())
with torch.no_grad():
    m.classifier[6].weight.mul_(2.0 / spread)
    m.classifier[6].bias.mul_(2.0 / spread)
ref = torch_forward(m, x)
info(f"tutorial_vgg11: logits std {spread:.3g} scaled to 2; softmax max {ref.max():.3g}, min {ref.min():.3g}")
ckpt = save(m.state_dict(), "tutorial_vgg11.pt")
del m
fidelity("run_tutorial_vgg11", ckpt, x, ref, "tutorial_vgg11")
remove(ckpt)

interop.finish("check_run")
