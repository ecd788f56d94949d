#!/usr/bin/env python3
"""Generate the numerical-fidelity fixtures: torchvision outputs for formula weights.

What it makes (in Tests/Fixtures/fidelity/, next to this script):
  * `<name>.json` for every network in MODELS below (torchvision VGG / ResNet / ResNeXt /
    Wide-ResNet, a few odd variants, and the tutorial VGG of the project's seed document, as
    Sources/ZooKit/Resources/torch_check.py holds it): the float32 output torch computes for a
    deterministic input, with deterministic weights.  The weights and the input are NOT stored: both are produced by
    the formula below, which the Swift test re-implements, so the fixtures stay tiny.
  * `index.json`: the list of names.

Each JSON holds: name, builder (the exact python expression), num_classes, input_shape,
output_shape, output (flat, row-major, float32 values written with repr(float(v)) so they
round-trip exactly), max_abs_output, float64_vs_float32_max_abs_diff (the same network and
input run again after model.double(): a measure of how much float32 noise to expect),
and checks (first values of the input and of a few state-dict entries, plus fnv1a32 of
their keys, to debug a formula implementation).  The tutorial VGG ends in F.softmax; its
files also hold "logits" (the classifier output before the softmax), max_abs_logits and
logits_float64_vs_float32_max_abs_diff.

The formula (float32 / uint32 arithmetic only; no float64 in the element path):
    fnv1a32(key: UTF-8 bytes): h = 2166136261; for each byte b: h ^= b; h = h * 16777619 mod 2^32
    mix(key, j), j = 0-based row-major element index over the tensor's shape:
        x = (j * 0x9E3779B1 mod 2^32) XOR fnv1a32(key)
        x ^= x >> 16; x = x * 0x85EBCA6B mod 2^32; x ^= x >> 13
        x = x * 0xC2B2AE35 mod 2^32; x ^= x >> 16
        u = float32(x >> 8) * float32(2^-24) - float32(0.5)      # exact, in [-0.5, 0.5)
    value = float32(u * A) + B      (float32 multiply, then float32 add; no fused multiply-add)
  Rules by full dotted state_dict key (e.g. "layer1.0.bn1.running_var"):
    ...num_batches_tracked             int64 0
    ...running_mean                    A = float32(0.2), B = 0
    ...running_var                     A = float32(1.0), B = float32(1.0)    ([0.5, 1.5))
    ...weight, rank >= 2 (conv/linear) A = float32(sqrt(24.0 / fan_in)) with fan_in =
                                       prod(shape[1:]), sqrt in float64 then rounded; B = 0
    ...weight, rank 1 (BatchNorm)      A = float32(0.4), B = float32(1.0)
    ...bias (any rank)                 A = float32(0.2), B = 0
    anything else                      error
  Input: key "input", A = float32(2.0), B = 0, shape [N, 3, H, W].
  Every model is built, given the formula state dict with load_state_dict(strict=True),
  put in eval mode and run under torch.no_grad() in float32 (torch.set_num_threads(2)).

Regenerate (from anywhere; paths are relative to this file):
    $(scripts/venv | tail -1) Tests/Fixtures/make_fidelity.py      # from the repository root: the venv's python
Optional arguments: model names to (re)generate only those (index.json is then left alone).
Deterministic: same files on every run with the same torch build and thread count.
"""

import json
import math
import os
import struct
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fidelity")

# --------------------------------------------------------------------------------------
# The formula, numpy version (what the fixtures use).
# --------------------------------------------------------------------------------------

U32 = np.uint32
F32 = np.float32


def fnv1a32(key: str) -> int:
    h = 2166136261
    for b in key.encode("utf-8"):
        h ^= b
        h = (h * 16777619) % (1 << 32)
    return h


def mix_u(key: str, n: int) -> np.ndarray:
    """u values (float32 in [-0.5, 0.5)) for elements j = 0 ..< n of `key`."""
    assert n < (1 << 32)
    j = np.arange(n, dtype=np.uint64)
    x = (j % np.uint64(1 << 32)).astype(U32)  # reduce mod 2^32 before the uint32 multiply
    del j
    x *= U32(0x9E3779B1)  # uint32 * uint32 wraps mod 2^32
    x ^= U32(fnv1a32(key))
    x ^= x >> U32(16)
    x *= U32(0x85EBCA6B)
    x ^= x >> U32(13)
    x *= U32(0xC2B2AE35)
    x ^= x >> U32(16)
    x >>= U32(8)
    u = x.astype(F32)  # < 2^24: exact
    del x
    u *= F32(2.0 ** -24)  # exact
    u -= F32(0.5)  # exact
    assert u.dtype == F32
    return u


def formula(key: str, shape, A, B) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    v = mix_u(key, n)
    v *= F32(A)  # float32 multiply (rounded)
    if B != 0:
        v += F32(B)  # float32 add (rounded)
    assert v.dtype == F32
    return v.reshape(shape)


def coefficients(key: str, shape):
    """(A, B) as float32 for a state-dict key, or None for num_batches_tracked."""
    if key.endswith("num_batches_tracked"):
        return None
    if key.endswith("running_mean"):
        return F32(0.2), F32(0.0)
    if key.endswith("running_var"):
        return F32(1.0), F32(1.0)
    if key.endswith("weight"):
        if len(shape) >= 2:
            fan_in = int(np.prod(shape[1:], dtype=np.int64))
            return F32(math.sqrt(24.0 / fan_in)), F32(0.0)
        if len(shape) == 1:
            return F32(0.4), F32(1.0)
        raise ValueError(f"rank-0 weight {key}")
    if key.endswith("bias"):
        return F32(0.2), F32(0.0)
    raise ValueError(f"no formula rule for state-dict key {key!r} {tuple(shape)}")


def formula_state_dict(model: nn.Module):
    sd = {}
    for key, t in model.state_dict().items():
        shape = tuple(t.shape)
        ab = coefficients(key, shape)
        if ab is None:
            assert t.dtype == torch.int64, (key, t.dtype)
            sd[key] = torch.zeros(shape, dtype=torch.int64)
        else:
            assert t.dtype == torch.float32, (key, t.dtype)
            sd[key] = torch.from_numpy(formula(key, shape, *ab))
    return sd


def formula_input(shape) -> torch.Tensor:
    return torch.from_numpy(formula("input", tuple(shape), F32(2.0), F32(0.0)))


# --------------------------------------------------------------------------------------
# Pure-Python-int reference of the same formula, and the self-check.
# --------------------------------------------------------------------------------------

M32 = (1 << 32) - 1


def to_f32(v: float) -> float:
    """Round a Python float (double) to the nearest float32."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def f32_bits(v: float) -> int:
    return struct.unpack("<I", struct.pack("<f", v))[0]


def ref_mix_x(key: str, j: int) -> int:
    x = ((j * 0x9E3779B1) & M32) ^ fnv1a32(key)
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & M32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & M32
    x ^= x >> 16
    return x


def ref_value(key: str, j: int, A: float, B: float) -> float:
    # A, B are float32 values (as Python floats). (x >> 8) * 2^-24 - 0.5 is exact in double;
    # the product of two float32 values is exact in double, so rounding it to float32 gives
    # the IEEE float32 product; likewise double-then-float32 rounding of a sum of two
    # float32 values is the correctly rounded float32 sum (53 >= 2 * 24 + 2).
    u = (ref_mix_x(key, j) >> 8) * 2.0 ** -24 - 0.5
    return to_f32(to_f32(u * A) + B)


# (key, j, A as float32 bits, B as float32 bits, expected mixed uint32 x, expected value bits),
# computed once with ref_mix_x / ref_value above and hard-coded here.
SELF_CHECK = [
    ('input', 0, 0x40000000, 0x00000000, 0xCC8D6F84, 0x3F191ADE),  # 0.5980662107467651
    ('input', 1, 0x40000000, 0x00000000, 0xBC167122, 0x3EF059C4),  # 0.46943485736846924
    ('input', 24575, 0x40000000, 0x00000000, 0x4A65402E, 0xBED66B00),  # -0.41878509521484375
    ('conv1.weight', 0, 0x3ECEE116, 0x00000000, 0xF454CB0B, 0x3E3C0508),  # 0.18361294269561768
    ('conv1.weight', 9407, 0x3ECEE116, 0x00000000, 0x6C4D668C, 0xBCFEB099),  # -0.031090067699551582
    ('layer1.0.bn1.running_var', 5, 0x3F800000, 0x3F800000, 0x21AFC349, 0x3F21AFC3),  # 0.6315881609916687
    ('layer1.0.bn1.running_mean', 2, 0x3E4CCCCD, 0x00000000, 0xD2E7ED80, 0x3D84A648),  # 0.06477028131484985
    ('layer1.0.bn1.weight', 3, 0x3ECCCCCD, 0x3F800000, 0x579A57AE, 0x3F6FD756),  # 0.9368795156478882
    ('fc.bias', 999, 0x3E4CCCCD, 0x00000000, 0x0E66EBB1, 0xBDB5C1BB),  # -0.08874841779470444
    ('classifier.0.weight', 102760447, 0x3CFD5FD1, 0x00000000, 0x0599B02F, 0xBC7249DA),  # -0.01478811539709568
    ('m\u00f3dulo.bias', 7, 0x3E4CCCCD, 0x00000000, 0xB412C4AE, 0x3D26A273),  # 0.040682267397642136 (UTF-8 key)
]


def self_check():
    # FNV-1a 32 published test vectors
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968
    for key, j, a_bits, b_bits, want_x, want_bits in SELF_CHECK:
        A = struct.unpack("<f", struct.pack("<I", a_bits))[0]
        B = struct.unpack("<f", struct.pack("<I", b_bits))[0]
        x = ref_mix_x(key, j)
        assert x == want_x, (key, j, hex(x), hex(want_x))
        r = ref_value(key, j, A, B)
        assert f32_bits(r) == want_bits, (key, j, r)
        v = mix_u(key, j + 1)[j] * F32(A) + F32(B)
        assert v.dtype == F32 and f32_bits(float(v)) == want_bits, (key, j, v, r)
    # a broader sweep: numpy vs the pure-Python reference, element by element
    sweep = [("input", (2, 3, 5, 7)), ("conv1.weight", (64, 3, 7, 7)), ("layer4.2.bn3.running_var", (2048,)),
             ("layer4.2.bn3.running_mean", (2048,)), ("fc.bias", (1000,)), ("bn1.weight", (64,)),
             ("classifier.6.weight", (1000, 4096)), ("layer1.0.bn1.bias", (64,))]
    for key, shape in sweep:
        A, B = (F32(2.0), F32(0.0)) if key == "input" else coefficients(key, shape)
        got = formula(key, shape, A, B).reshape(-1)
        for j in list(range(0, 40)) + [got.size // 2, got.size - 1]:
            want = ref_value(key, j, float(A), float(B))
            assert f32_bits(float(got[j])) == f32_bits(want), (key, j, got[j], want)
    # large indices: j * 0x9E3779B1 must wrap mod 2^32, not overflow / round
    n = (1 << 27) + 5
    big = mix_u("classifier.0.weight", n)
    for j in [n - 1, n - 2, 102760447, (1 << 26) + 3]:
        want = (ref_mix_x("classifier.0.weight", j) >> 8) * 2.0 ** -24 - 0.5
        assert float(big[j]) == want, (j, big[j], want)
    del big


# --------------------------------------------------------------------------------------
# The tutorial VGG of the seed document (/work/shared/seed/000_e80b18d068bb1877.txt): the one
# copy is zoo's own torch_check.py, which `zoo verify --against-torch` runs.
# --------------------------------------------------------------------------------------

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Sources", "ZooKit", "Resources"))
from torch_check import TutorialVGG as VGG  # noqa: E402


# --------------------------------------------------------------------------------------
# The models: (name, builder expression, input shape). Builders are eval'd in a namespace
# holding torchvision and VGG, so "builder" in the JSON is exactly what ran.
# --------------------------------------------------------------------------------------

R_IN = [2, 3, 64, 64]
V_IN = [2, 3, 32, 32]
T_IN = [1, 3, 224, 224]
MODELS = [
    ("resnet18", "torchvision.models.resnet18()", R_IN),
    ("resnet34", "torchvision.models.resnet34()", R_IN),
    ("resnet50", "torchvision.models.resnet50()", R_IN),
    ("resnet101", "torchvision.models.resnet101()", R_IN),
    ("resnet152", "torchvision.models.resnet152()", R_IN),
    ("resnext50_32x4d", "torchvision.models.resnext50_32x4d()", R_IN),
    ("resnext101_32x8d", "torchvision.models.resnext101_32x8d()", R_IN),
    ("resnext101_64x4d", "torchvision.models.resnext101_64x4d()", R_IN),
    ("wide_resnet50_2", "torchvision.models.wide_resnet50_2()", R_IN),
    ("wide_resnet101_2", "torchvision.models.wide_resnet101_2()", R_IN),
    ("vgg11", "torchvision.models.vgg11()", V_IN),
    ("vgg13", "torchvision.models.vgg13()", V_IN),
    ("vgg16", "torchvision.models.vgg16()", V_IN),
    ("vgg19", "torchvision.models.vgg19()", V_IN),
    ("vgg11_bn", "torchvision.models.vgg11_bn()", V_IN),
    ("vgg13_bn", "torchvision.models.vgg13_bn()", V_IN),
    ("vgg16_bn", "torchvision.models.vgg16_bn()", V_IN),
    ("vgg19_bn", "torchvision.models.vgg19_bn()", V_IN),
    ("resnet50_dilated_10",
     "torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True], num_classes=10)",
     [1, 3, 48, 40]),
    ("resnext50_32x4d_odd", "torchvision.models.resnext50_32x4d(num_classes=7)", [1, 3, 35, 29]),
    ("vgg11_bn_5", "torchvision.models.vgg11_bn(num_classes=5)", [1, 3, 45, 61]),
    ("tutorial_vgg11", "VGG([1, 1, 2, 2, 2], num_classes=1000)", T_IN),
    ("tutorial_vgg13", "VGG([2, 2, 2, 2, 2], num_classes=1000)", T_IN),
    ("tutorial_vgg16", "VGG([2, 2, 3, 3, 3], num_classes=1000)", T_IN),
    ("tutorial_vgg19", "VGG([2, 2, 4, 4, 4], num_classes=1000)", T_IN),
]


def flat_floats(t: torch.Tensor):
    assert t.dtype == torch.float32
    return [float(v) for v in t.reshape(-1).tolist()]


def pick_check_keys(sd):
    """First key, plus the first key of each other kind present."""
    keys = list(sd.keys())
    picks = [keys[0]]
    kinds = [
        lambda k, t: k.endswith("weight") and t.dim() == 4,  # conv weight
        lambda k, t: k.endswith("weight") and t.dim() == 2,  # linear weight
        lambda k, t: k.endswith("weight") and t.dim() == 1,  # bn gamma
        lambda k, t: k.endswith("bias") and not _is_bn(sd, k),  # conv / linear bias
        lambda k, t: k.endswith("running_mean"),
        lambda k, t: k.endswith("running_var"),
        lambda k, t: k.endswith("bias") and _is_bn(sd, k),  # bn beta
    ]
    for kind in kinds:
        for k in keys:
            if kind(k, sd[k]):
                if k not in picks:
                    picks.append(k)
                break
    return picks


def _is_bn(sd, key):
    return key.endswith("bias") and (key[: -len("bias")] + "running_var") in sd


def run_one(name, builder, input_shape):
    t0 = time.time()
    ns = {"torchvision": torchvision, "VGG": VGG}
    torch.manual_seed(0)  # irrelevant: every parameter and buffer is overwritten below
    model = eval(builder, ns)
    sd = formula_state_dict(model)
    model.load_state_dict(sd, strict=True)
    model.eval()
    tutorial = isinstance(model, VGG)
    captured = {}
    if tutorial:
        model.classifier.register_forward_hook(lambda m, i, o: captured.__setitem__("logits", o.detach().clone()))
    x = formula_input(input_shape)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Implicit dimension choice for softmax")
        y32 = model(x)
        logits32 = captured.get("logits")
        # compare against the stored state dict, bit for bit, that what ran is the formula
        for k, v in model.state_dict().items():
            assert torch.equal(v, sd[k]), k
        model.double()
        y64 = model(x.double())
        logits64 = captured.get("logits")
    assert y32.dtype == torch.float32 and y64.dtype == torch.float64
    num_classes = int(y32.shape[1])
    rec = {
        "name": name,
        "builder": builder,
        "num_classes": num_classes,
        "input_shape": list(input_shape),
        "output_shape": list(y32.shape),
        "output": flat_floats(y32),
    }
    if tutorial:
        rec["output_is"] = "F.softmax(logits) over dim 1 (implicit dim for a 2-D input)"
        rec["logits"] = flat_floats(logits32)
        rec["max_abs_logits"] = float(logits32.abs().max())
        rec["logits_float64_vs_float32_max_abs_diff"] = float((logits64 - logits32.double()).abs().max())
    rec["max_abs_output"] = float(y32.abs().max())
    rec["float64_vs_float32_max_abs_diff"] = float((y64 - y32.double()).abs().max())
    rec["max_abs_output_float64"] = float(y64.abs().max())
    checks = {"input_first": flat_floats(x.reshape(-1)[:4]), "input_key_fnv1a32": fnv1a32("input")}
    pf, hashes, coef = {}, {}, {}
    for k in pick_check_keys(sd):
        t = sd[k]
        A, B = coefficients(k, tuple(t.shape))
        pf[k] = flat_floats(t.reshape(-1)[:4])
        hashes[k] = fnv1a32(k)
        coef[k] = {"shape": list(t.shape), "A": float(A), "B": float(B)}
    checks["param_first"] = pf
    checks["param_key_fnv1a32"] = hashes
    checks["param_coefficients"] = coef
    checks["state_dict_keys"] = len(sd)
    checks["num_batches_tracked_keys"] = sum(k.endswith("num_batches_tracked") for k in sd)
    rec["checks"] = checks
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(rec, f, separators=(",", ":"))
        f.write("\n")
    msg = (f"{name:22s} in={input_shape} out={list(y32.shape)} max|y|={rec['max_abs_output']:.6g} "
           f"d64={rec['float64_vs_float32_max_abs_diff']:.3g} "
           f"rel={rec['float64_vs_float32_max_abs_diff'] / max(rec['max_abs_output'], 1e-300):.3g}")
    if tutorial:
        msg += (f" max|logits|={rec['max_abs_logits']:.6g} "
                f"rel_logits={rec['logits_float64_vs_float32_max_abs_diff'] / rec['max_abs_logits']:.3g}")
    print(msg + f" ({time.time() - t0:.1f}s)", flush=True)
    return rec


def main():
    torch.set_num_threads(2)
    self_check()
    print("self-check ok", flush=True)
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[1:]
    names = [m[0] for m in MODELS]
    for n in only:
        if n not in names:
            sys.exit(f"unknown model {n}; known: {names}")
    for name, builder, shape in MODELS:
        if not only or name in only:
            run_one(name, builder, shape)
    if not only:
        with open(os.path.join(OUT, "index.json"), "w") as f:
            json.dump(names, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
