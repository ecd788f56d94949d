#!/usr/bin/env python3
"""Interop checks for `zoo convert`: safetensors written by zoo, read back by real PyTorch.

Invoked by Tests/Interop/run as

    python -u check_convert.py --zoo /path/to/zoo --workdir /tmp/scratch

(--zoo / --workdir default to $ZOO_BIN / $ZOO_INTEROP_WORKDIR). Prints one line
per check on stdout, "PASS <name> (info)" or "FAIL <name>: reason", and exits 1
if any check failed. Uses torch/torchvision/safetensors/numpy and the shared
harness interop.py beside this file.

Contract under test:
    zoo convert FILE [-o OUT] [--dtype float16|bfloat16] [--json]
writes a safetensors file (default beside FILE: stem.safetensors, or
stem.<dtype>.safetensors). Its __metadata__ has format "pt", source_file (basename),
source_format, source_sha256 (of the source file's bytes), zoo_version,
architecture (when recognised) and, when several keys were the same view of one
storage, aliases = JSON object string {alias: stored key}. With --dtype, floating
tensors are stored in that type except keys ending running_mean / running_var
(float32; float64 ones become float32); integers keep their dtype. --json prints
{source, output, source_sha256, tensors, aliases, data_bytes, file_bytes,
converted, metadata, milliseconds}. Exit 0 ok, 1 refused file, 2 usage.

Checks:
  1. torchvision resnet18 / resnet50 / vgg11_bn (random init, randomized BN),
     zip and (resnet18, vgg11_bn) legacy format: every tensor torch.equal with the
     same dtype, load_state_dict(strict=True), bit-identical forward, metadata;
     `zoo run` on the converted resnet18 matches torch within 1e-4.
  2. --dtype float16 (resnet18) / bfloat16 (resnet50): exact rounding as
     tensor.half() / tensor.bfloat16(), BN statistics float32, ints unchanged,
     loadable into float32 (and half) models; float64 handling; the dtypes
     fixture compacted bit-exactly.
  3. Every readable fixture in Tests/Fixtures: after resolving aliases, every
     expected key present with identical dtype, shape and bytes.
  4. Refusals: hostile / corrupt fixtures exit 1 leaving no output and no
     *.partial file; output == input exits 2 and leaves the input intact.
"""

import glob
import json
import os
import shutil
import sys

import numpy as np
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # interop.py, even under python -P
import interop
from interop import (FIXTURES, TOL, CheckError, build, check, dtype_name, failed, json_object, path,
                     remove, save, sha256, tail, zoo)

ZOO, WORK = interop.setup(__doc__, timeout=300, timeout_env="ZOO_CONVERT_TIMEOUT")


def raw_bytes(t):
    """Contiguous little-endian bytes of a CPU tensor (any dtype, 0-d and empty included)."""
    t = t.detach().contiguous().reshape(-1)
    if t.numel() == 0:
        return b""
    return t.view(torch.uint8).numpy().tobytes()


def partial_files(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".partial"))


# --------------------------------------------------------------------------
# zoo convert + reading its output

REPORT_FIELDS = ("source", "output", "source_sha256", "tensors", "aliases", "data_bytes", "file_bytes",
                 "converted", "metadata", "milliseconds")


def convert(src, out=None, dtype=None, expected_output=None):
    """`zoo convert --json`; returns (report, output path, wall ms). Checks the report against the file."""
    argv = ["convert", src, "--json"]
    if out is not None:
        argv += ["-o", out]
    if dtype is not None:
        argv += ["--dtype", dtype]
    target = out if out is not None else expected_output
    if target is not None:
        remove(target)
    r, ms = zoo(*argv)
    if r.returncode != 0:
        raise CheckError(f"`zoo {' '.join(argv)}` exit {r.returncode}; stderr: {tail(r.stderr)}")
    doc = json_object(r.stdout)
    lacking = [k for k in REPORT_FIELDS if k not in doc]
    if lacking:
        raise CheckError(f"JSON report lacks {lacking}: {tail(r.stdout)}")
    produced = doc["output"]
    if target is not None and os.path.abspath(produced) != os.path.abspath(target):
        raise CheckError(f"JSON output is {produced!r}, expected {target!r}")
    if not os.path.isfile(produced):
        raise CheckError(f"exit 0 but no output file {produced}")
    size = os.path.getsize(produced)
    if doc["file_bytes"] != size:
        raise CheckError(f"JSON file_bytes {doc['file_bytes']} but the file has {size} bytes")
    leftovers = partial_files(os.path.dirname(os.path.abspath(produced)))
    if leftovers:
        raise CheckError(f"temporary files left beside the output: {leftovers}")
    return doc, produced, ms


def read_converted(file, doc=None):
    """(state dict, metadata, aliases) from a converted file, checked against the JSON report."""
    try:
        sd = load_file(file)
    except Exception as e:
        raise CheckError(f"safetensors.torch.load_file failed: {type(e).__name__}: {e}")
    with safe_open(file, framework="pt") as f:
        meta = f.metadata() or {}
    aliases = {}
    if "aliases" in meta:
        try:
            aliases = json.loads(meta["aliases"])
        except ValueError as e:
            raise CheckError(f"metadata aliases is not JSON ({e}): {meta['aliases'][:200]!r}")
        if not isinstance(aliases, dict):
            raise CheckError(f"metadata aliases is a {type(aliases).__name__}, expected an object")
    for alias, stored in aliases.items():
        if alias in sd:
            raise CheckError(f"alias {alias!r} is also stored as a tensor")
        if stored not in sd:
            raise CheckError(f"alias {alias!r} points to {stored!r}, which is not stored")
    if doc is not None:
        if doc["metadata"] != meta:
            raise CheckError(f"JSON metadata {doc['metadata']} differs from the file's {meta}")
        if doc["aliases"] != aliases:
            raise CheckError(f"JSON aliases {doc['aliases']} differ from the file's {aliases}")
        if doc["tensors"] != len(sd) + len(aliases):
            raise CheckError(f"JSON tensors {doc['tensors']}, file has {len(sd)} stored + {len(aliases)} aliases")
        if doc["source_sha256"] != meta.get("source_sha256"):
            raise CheckError(f"JSON source_sha256 {doc['source_sha256']} != metadata {meta.get('source_sha256')}")
        nbytes = sum(t.numel() * t.element_size() for t in sd.values())
        if doc["data_bytes"] != nbytes:
            raise CheckError(f"JSON data_bytes {doc['data_bytes']}, stored tensors have {nbytes} bytes")
    return sd, meta, aliases


def resolve(sd, aliases):
    full = dict(sd)
    for alias, stored in aliases.items():
        full[alias] = sd[stored]
    return full


def check_metadata(meta, src, source_format, arch=None):
    problems = []
    want = {"format": "pt", "source_file": os.path.basename(src), "source_format": source_format,
            "source_sha256": sha256(src)}
    if arch is not None:
        want["architecture"] = arch
    for k, v in want.items():
        if meta.get(k) != v:
            problems.append(f"{k} = {meta.get(k)!r}, expected {v!r}")
    if not meta.get("zoo_version"):
        problems.append("no zoo_version")
    if problems:
        raise CheckError("metadata: " + "; ".join(problems))


def compare_exact(got, ref):
    """Every tensor of ref present in got with the same dtype, shape and values (NaN-safe, bitwise)."""
    missing = [k for k in ref if k not in got]
    extra = [k for k in got if k not in ref]
    if missing or extra:
        raise CheckError(f"{len(missing)} keys missing (e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]})")
    for k, r in ref.items():
        g = got[k]
        if g.dtype != r.dtype or tuple(g.shape) != tuple(r.shape):
            raise CheckError(f"{k}: {dtype_name(g.dtype)} {list(g.shape)}, expected {dtype_name(r.dtype)} {list(r.shape)}")
        if not (torch.equal(g, r) or raw_bytes(g) == raw_bytes(r)):
            diff = (g.double() - r.double()).abs().max().item() if g.is_floating_point() else "n/a"
            raise CheckError(f"{k}: values differ (max|diff| {diff})")


# --------------------------------------------------------------------------
# models

def make_input(shape, seed):
    return interop.make_input(shape, seed, numpy=False)


def forward(model, x):
    with torch.no_grad():
        return model(x)


def check_float_model(label, ctor, model, src, source_format, arch, x, ref_out, default_output=False):
    """Convert src (float32), then check tensors, metadata, strict loading and the forward pass."""
    out = {}

    @check(f"convert_{label}_{source_format}")
    def _():
        if default_output:
            expected = os.path.splitext(src)[0] + ".safetensors"
            doc, produced, ms = convert(src, expected_output=expected)
        else:
            doc, produced, ms = convert(src, out=path(f"{label}_{source_format}.converted.safetensors"))
        sd, meta, aliases = read_converted(produced, doc)
        if aliases:
            raise CheckError(f"unexpected aliases in a torchvision state dict: {aliases}")
        ref = model.state_dict()
        compare_exact(sd, ref)
        check_metadata(meta, src, source_format, arch)
        if doc["converted"] != 0:
            raise CheckError(f"JSON converted {doc['converted']} without --dtype")
        fresh = ctor()
        fresh.load_state_dict(sd, strict=True)
        fresh.eval()
        y = forward(fresh, x)
        if not torch.equal(y, ref_out):
            raise CheckError(f"forward differs: max|diff| {(y - ref_out).abs().max().item():.3g}")
        out["file"] = produced
        return (f"{len(sd)} tensors bit-exact, strict load, forward {list(y.shape)} identical, "
                f"{doc['file_bytes'] / 1e6:.0f} MB in {ms:.0f} ms wall")

    return out.get("file")


# --------------------------------------------------------------------------
# 1. resnet18: zip (default output name) + legacy; zoo run on the converted file

m18 = build("resnet18", torchvision.models.resnet18, seed=1800)
x18 = make_input((2, 3, 224, 224), seed=1801)
y18 = forward(m18, x18)
sd18 = m18.state_dict()
r18_zip = save(sd18, "resnet18_zip.pth")
r18_legacy = save(sd18, "resnet18_legacy.pth", legacy=True)
conv18 = check_float_model("resnet18", torchvision.models.resnet18, m18, r18_zip, "zip", "resnet18",
                           x18, y18, default_output=True)
conv18_legacy = check_float_model("resnet18", torchvision.models.resnet18, m18, r18_legacy, "legacy",
                                  "resnet18", x18, y18)
remove(r18_legacy)
if conv18_legacy:
    remove(conv18_legacy)


@check("run_converted_resnet18")
def _():
    if not conv18:
        raise CheckError("no converted resnet18 (see convert_resnet18_zip)")
    x_path, y_path = path("r18_input.npy"), path("r18_output.npy")
    np.save(x_path, x18.numpy())
    remove(y_path)
    r, _ = zoo("run", conv18, "--input", x_path, "--output", y_path, "--json")
    if r.returncode != 0:
        raise CheckError(f"exit {r.returncode}; stderr: {tail(r.stderr)}")
    doc = json.loads(r.stdout)
    y = np.load(y_path, allow_pickle=False)
    remove(x_path, y_path)
    ref = y18.numpy().astype(np.float64)
    if y.shape != ref.shape:
        raise CheckError(f"output shape {list(y.shape)}, torch {list(ref.shape)}")
    ratio = float(np.abs(y.astype(np.float64) - ref).max() / np.abs(ref).max())
    if not ratio <= TOL:
        raise CheckError(f"max|diff|/max|torch| = {ratio:.2e} > {TOL:.0e}")
    if doc.get("architecture") != "resnet18":
        raise CheckError(f"JSON architecture {doc.get('architecture')!r}, expected 'resnet18' (outputs matched: {ratio:.1e})")
    return f"max|diff|/max|torch| = {ratio:.1e}, architecture {doc['architecture']}, load {doc.get('load_ms', 0):.0f} ms"


@check("inspect_converted_resnet18")
def _():
    if not conv18:
        raise CheckError("no converted resnet18 (see convert_resnet18_zip)")
    r, _ = zoo("inspect", "--json", conv18)
    if r.returncode != 0:
        raise CheckError(f"exit {r.returncode}; stderr: {tail(r.stderr)}")
    doc = json.loads(r.stdout)
    if doc.get("format") != "safetensors":
        raise CheckError(f"format {doc.get('format')!r}, expected 'safetensors'")
    got = {t["key"]: (t["dtype"], list(t["shape"])) for t in doc.get("tensors", [])}
    want = {k: (dtype_name(v.dtype), list(v.shape)) for k, v in sd18.items()}
    if got != want:
        diff = sorted(set(got.items()) ^ set((k, tuple(v)) for k, v in want.items()), key=str)[:3]
        raise CheckError(f"{len(got)} tensors listed, {len(want)} expected; e.g. {diff}")
    return f"{len(got)} tensors"


# --------------------------------------------------------------------------
# 2a. --dtype float16 on resnet18 (default output name stem.float16.safetensors)

def compacted_reference(sd, to):
    ref = {}
    for k, v in sd.items():
        if not v.is_floating_point():
            ref[k] = v
        elif k.endswith("running_mean") or k.endswith("running_var"):
            ref[k] = v.float()
        else:
            ref[k] = v.to(to)
    return ref


def check_compacted(label, ctor, sd, src, dtype_opt, to, also_half=False):
    @check(f"convert_{label}_{dtype_opt}")
    def _():
        expected = os.path.splitext(src)[0] + f".{dtype_opt}.safetensors"
        doc, produced, ms = convert(src, dtype=dtype_opt, expected_output=expected)
        got, meta, aliases = read_converted(produced, doc)
        ref = compacted_reference(sd, to)
        compare_exact(got, ref)
        check_metadata(meta, src, "zip", label)
        n_conv = sum(1 for k in sd if ref[k].dtype != sd[k].dtype)
        if doc["converted"] != n_conv:
            raise CheckError(f"JSON converted {doc['converted']}, expected {n_conv}")
        fresh = ctor()
        fresh.load_state_dict(got, strict=True)
        loaded = "float32 model"
        if also_half:
            half = ctor().half()
            half.load_state_dict(got, strict=True)
            loaded += " and half model"
        n_bn = sum(1 for k in got if k.endswith("running_mean") or k.endswith("running_var"))
        size = os.path.getsize(produced)
        remove(produced)
        return (f"{n_conv} tensors {dtype_opt}, {n_bn} BN stats float32, strict load into {loaded}; "
                f"{size / 1e6:.0f} MB in {ms:.0f} ms")


check_compacted("resnet18", torchvision.models.resnet18, sd18, r18_zip, "float16", torch.float16, also_half=True)
remove(r18_zip)
if conv18:
    remove(conv18)
del m18, sd18

# --------------------------------------------------------------------------
# 1 + 2b. resnet50: zip, float32 and --dtype bfloat16

m50 = build("resnet50", torchvision.models.resnet50, seed=5000)
x50 = make_input((1, 3, 160, 160), seed=5001)
y50 = forward(m50, x50)
sd50 = m50.state_dict()
r50_zip = save(sd50, "resnet50_zip.pth")
conv50 = check_float_model("resnet50", torchvision.models.resnet50, m50, r50_zip, "zip", "resnet50", x50, y50)
if conv50:
    remove(conv50)
check_compacted("resnet50", torchvision.models.resnet50, sd50, r50_zip, "bfloat16", torch.bfloat16)
remove(r50_zip)
del m50, sd50

# --------------------------------------------------------------------------
# 1. vgg11_bn: zip + legacy (forward on a small input: AdaptiveAvgPool2d makes it valid)

mv = build("vgg11_bn", torchvision.models.vgg11_bn, seed=1100)
xv = make_input((1, 3, 64, 64), seed=1101)
yv = forward(mv, xv)
sdv = mv.state_dict()
for fmt, legacy in (("zip", False), ("legacy", True)):
    src = save(sdv, f"vgg11_bn_{fmt}.pth", legacy=legacy)
    conv = check_float_model("vgg11_bn", torchvision.models.vgg11_bn, mv, src, fmt, "vgg11_bn", xv, yv)
    remove(src)
    if conv:
        remove(conv)
del mv, sdv

# --------------------------------------------------------------------------
# 2c. float64 weights and statistics with --dtype: statistics become float32,
# weights round like torch (float64 -> float32 -> half / bfloat16)


@check("convert_float64_with_dtype")
def _():
    torch.manual_seed(64)
    sd = {"conv.weight": torch.randn(8, 3, 3, 3, dtype=torch.float64) * 3,
          "bn.weight": torch.rand(8, dtype=torch.float64) + 0.5,
          "bn.running_mean": torch.randn(8, dtype=torch.float64),
          "bn.running_var": torch.rand(8, dtype=torch.float64) * 1e-3 + 1e-9,
          "bn.num_batches_tracked": torch.tensor(77),
          "fc.weight": torch.randn(4, 8, dtype=torch.float64) * 1e-6,  # float16 subnormals
          "fc.bias": torch.tensor([1e300, -1e-300, 65520.0, 65504.0], dtype=torch.float64)}
    src = save(sd, "float64.pth")
    parts = []
    for dtype_opt, to in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        doc, produced, _ = convert(src, dtype=dtype_opt, out=path(f"float64.{dtype_opt}.safetensors"))
        got, meta, _ = read_converted(produced, doc)
        compare_exact(got, compacted_reference(sd, to))
        remove(produced)
        parts.append(dtype_opt)
    remove(src)
    return "running stats float64 -> float32, weights as torch rounds them, for " + " and ".join(parts)


# --------------------------------------------------------------------------
# 3. committed fixtures: every readable one, bytes compared with the expected json

TORCH_DTYPES = {dtype_name(d): d for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                           torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8,
                                           torch.bool)}


def expected_tensor(e):
    dt = TORCH_DTYPES[e["dtype"]]
    data = bytes.fromhex(e["hex"])
    if not data:
        return torch.empty(e["shape"], dtype=dt)
    return torch.frombuffer(bytearray(data), dtype=dt).reshape(e["shape"]).clone()


try:
    with open(os.path.join(FIXTURES, "index.json")) as f:
        fixture_names = json.load(f)
except Exception as e:
    fixture_names = []
    failed("fixtures_index", f"cannot read {FIXTURES}/index.json: {type(e).__name__}: {e}")

readable, refused = [], []
for name in fixture_names:
    stem = os.path.splitext(name)[0]
    try:
        with open(os.path.join(FIXTURES, stem + ".expected.json")) as f:
            exp = json.load(f)
    except Exception as e:
        failed(f"fixture_{stem}", f"cannot read {stem}.expected.json: {type(e).__name__}: {e}")
        continue
    (refused if exp.get("refused") else readable).append((name, exp))

fixture_out = path("fixtures")
os.makedirs(fixture_out, exist_ok=True)
all_stored_aliases = 0

for name, exp in readable:
    stem = os.path.splitext(name)[0]

    @check(f"convert_fixture_{stem}")
    def _():
        global all_stored_aliases
        src = os.path.join(FIXTURES, name)
        if any("hex" not in t for t in exp["tensors"]):
            raise CheckError("expected json has tensors without hex")
        doc, produced, _ = convert(src, out=os.path.join(fixture_out, stem + ".safetensors"))
        sd, meta, aliases = read_converted(produced, doc)
        check_metadata(meta, src, exp["format"])
        full = resolve(sd, aliases)
        want_keys = [t["key"] for t in exp["tensors"]]
        extra = sorted(set(full) - set(want_keys))
        if extra:
            raise CheckError(f"keys not in the expected json: {extra[:5]}")
        for t in exp["tensors"]:
            k = t["key"]
            if k not in full:
                raise CheckError(f"missing {k!r} (stored {len(sd)}, aliases {aliases})")
            g = full[k]
            if dtype_name(g.dtype) != t["dtype"] or list(g.shape) != t["shape"]:
                raise CheckError(f"{k}: {dtype_name(g.dtype)} {list(g.shape)}, expected {t['dtype']} {t['shape']}")
            b = raw_bytes(g)
            if b.hex() != t["hex"]:
                raise CheckError(f"{k}: bytes {b.hex()[:48]}..., expected {t['hex'][:48]}...")
        all_stored_aliases += len(aliases)
        remove(produced)
        shown = dict(list(aliases.items())[:3])
        more = ", ..." if len(aliases) > 3 else ""
        return (f"{len(want_keys)} tensors byte-exact"
                + (f", {len(aliases)} aliases {str(shown)[:-1]}{more}}}" if aliases else "")
                + f", {exp['format']}")


# 2d. compaction of every dtype (NaN, inf, subnormals, float64 out of range), bitwise


dtypes_exp = dict(readable).get("dtypes.pth")
if dtypes_exp is not None:
    for dtype_opt, to in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        @check(f"convert_fixture_dtypes_{dtype_opt}")
        def _():
            src = os.path.join(FIXTURES, "dtypes.pth")
            ref = {t["key"]: expected_tensor(t) for t in dtypes_exp["tensors"]}
            doc, produced, _ = convert(src, dtype=dtype_opt, out=os.path.join(fixture_out, f"dtypes.{dtype_opt}.safetensors"))
            got, _, _ = read_converted(produced, doc)
            want = compacted_reference(ref, to)
            nan_note = set()
            for k, w in want.items():
                g = got.get(k)
                if g is None:
                    raise CheckError(f"missing {k!r}")
                if g.dtype != w.dtype or g.shape != w.shape:
                    raise CheckError(f"{k}: {dtype_name(g.dtype)} {list(g.shape)}, expected {dtype_name(w.dtype)} {list(w.shape)}")
                if raw_bytes(g) == raw_bytes(w):
                    continue
                # NaN: any NaN will do (PyTorch's own vectorised and scalar paths disagree on
                # the bits: 0xffff vs 0x7fc0 for bfloat16); everything else bit for bit.
                if g.is_floating_point():
                    gn, wn = torch.isnan(g), torch.isnan(w)
                    same_nan = torch.equal(gn, wn)
                    g_bits = g[~gn].reshape(-1).view(torch.int16 if g.element_size() == 2 else torch.int32)
                    w_bits = w[~wn].reshape(-1).view(torch.int16 if w.element_size() == 2 else torch.int32)
                    if same_nan and torch.equal(g_bits, w_bits):
                        nan_note.add(f"{k}: NaN bits {g[gn].view(torch.int16).tolist()[:1]} vs torch "
                                     f"{w[wn].view(torch.int16).tolist()[:1]}" if g.element_size() == 2 else k)
                        continue
                raise CheckError(f"{k}: bits {raw_bytes(g).hex()}, torch {raw_bytes(w).hex()} "
                                 f"(source {raw_bytes(ref[k]).hex()})")
            remove(produced)
            return (f"{doc['converted']} tensors compacted bit-identically to torch .to({dtype_name(to)})"
                    + (f" except NaN payloads ({'; '.join(sorted(nan_note))})" if nan_note else ""))

# --------------------------------------------------------------------------
# 4. refusals: exit 1, nothing left behind; output == input: exit 2

for name, exp in refused:
    stem = os.path.splitext(name)[0]

    @check(f"convert_refuses_{stem}")
    def _():
        folder = path("refuse_" + stem)
        os.makedirs(folder, exist_ok=True)
        src = os.path.join(folder, name)
        shutil.copyfile(os.path.join(FIXTURES, name), src)
        before = sorted(os.listdir(folder))
        r, _ = zoo("convert", src)
        after = sorted(os.listdir(folder))
        if r.returncode != 1:
            raise CheckError(f"exit {r.returncode}, expected 1; stdout: {tail(r.stdout, 150)}; stderr: {tail(r.stderr)}")
        if not r.stderr.strip():
            raise CheckError("exit 1 but nothing on stderr")
        if after != before:
            raise CheckError(f"files left behind: {sorted(set(after) - set(before))}")
        # explicit -o into another folder: nothing there either
        other = path("refuse_" + stem + "_out")
        os.makedirs(other, exist_ok=True)
        r, _ = zoo("convert", src, "-o", os.path.join(other, "out.safetensors"))
        if r.returncode != 1:
            raise CheckError(f"with -o: exit {r.returncode}, expected 1; stderr: {tail(r.stderr)}")
        if os.listdir(other):
            raise CheckError(f"with -o: files left behind: {os.listdir(other)}")
        shutil.rmtree(folder)
        shutil.rmtree(other)
        return f"exit 1: {tail(r.stderr, 110)}"


same_dir = path("same")
os.makedirs(same_dir, exist_ok=True)
same_src = os.path.join(same_dir, "tiny_net.pth")
shutil.copyfile(os.path.join(FIXTURES, "tiny_net.pth"), same_src)
same_sha = sha256(same_src)


def expect_refuse_overwrite(name, out_arg, cwd=None):
    @check(name)
    def _():
        shutil.copyfile(os.path.join(FIXTURES, "tiny_net.pth"), same_src)  # fresh, in case a check before failed
        r, _ = zoo("convert", "tiny_net.pth" if cwd else same_src, "-o", out_arg, cwd=cwd)
        intact = os.path.isfile(same_src) and sha256(same_src) == same_sha
        listing = sorted(os.listdir(same_dir))
        if r.returncode != 2:
            raise CheckError(f"`zoo convert tiny_net.pth -o {out_arg}` exit {r.returncode}, expected 2; "
                             f"input {'intact' if intact else 'OVERWRITTEN'}; stderr: {tail(r.stderr)}")
        if not intact:
            raise CheckError("exit 2 but the input changed")
        if listing != ["tiny_net.pth"]:
            raise CheckError(f"files left behind: {listing}")
        return f"exit 2: {tail(r.stderr, 80)}"


expect_refuse_overwrite("convert_output_is_input_exit_2", same_src)
expect_refuse_overwrite("convert_output_is_input_relative_exit_2", "../same/./tiny_net.pth", cwd=same_dir)
# The same file reached through a symlinked folder: renaming onto it would replace the input.
link_dir = path("same_link")
if not os.path.islink(link_dir):
    os.symlink(same_dir, link_dir)
expect_refuse_overwrite("convert_output_is_input_via_symlinked_folder_exit_2",
                        os.path.join(link_dir, "tiny_net.pth"))
shutil.copyfile(os.path.join(FIXTURES, "tiny_net.pth"), same_src)  # restore for anything after


@check("convert_usage_errors_exit_2")
def _():
    bad = []
    for argv in (["convert"], ["convert", same_src, "--dtype", "float64"], ["convert", same_src, "--bogus"]):
        r, _ = zoo(*argv)
        if r.returncode != 2:
            bad.append(f"`zoo {' '.join(argv[1:]) or argv[0]}` exit {r.returncode}")
    listing = sorted(os.listdir(same_dir))
    if listing != ["tiny_net.pth"]:
        bad.append(f"files left behind: {listing}")
    if bad:
        raise CheckError("; ".join(bad))
    return "no file, --dtype float64, unknown option"


@check("no_partial_files_left")
def _():
    left = [p for p in glob.glob(os.path.join(WORK, "**", ".*.partial"), recursive=True)]
    left += [p for p in glob.glob(os.path.join(FIXTURES, ".*.partial"))]
    if left:
        raise CheckError(f"{left[:5]}")
    return f"under {WORK} and {FIXTURES}"


shutil.rmtree(same_dir, ignore_errors=True)
remove(link_dir)
shutil.rmtree(fixture_out, ignore_errors=True)

interop.finish("check_convert", elapsed=True)
