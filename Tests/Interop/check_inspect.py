#!/usr/bin/env python3
"""Interop checks for `zoo inspect --json`, against checkpoints written by real PyTorch.

Invoked by Tests/Interop/run as

    python -u check_inspect.py --zoo /path/to/zoo --workdir /tmp/scratch

(--zoo / --workdir default to $ZOO_BIN / $ZOO_INTEROP_WORKDIR). Prints one line
per check on stdout, "PASS <name>" or "FAIL <name>: reason", and exits 1 if any
check failed. Uses only the standard library plus torch/torchvision, and the
shared harness interop.py beside this file.

Environment: ZOO_INSPECT_MAX_MS (default 1000) is the limit for the VGG16 timing.
"""

import os
import pickle
import shlex
import statistics
import sys
import time
import zipfile

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # interop.py, even under python -P
import interop
from interop import CheckError, check, dtype_name, info, json_object, path, remove, save, tail, zoo

interop.setup(__doc__, timeout=120)  # seconds per zoo invocation
MAX_MS = float(os.environ.get("ZOO_INSPECT_MAX_MS", "1000"))

torch.manual_seed(0)

# --------------------------------------------------------------------------
# zoo inspect --json against the state dict


def expected_tensors(sd):
    return [{"key": k, "dtype": dtype_name(v.dtype), "shape": list(v.shape)} for k, v in sd.items()]


def fmt_entry(e):
    return f"{e.get('key')!r} {e.get('dtype')} {e.get('shape')}"


def inspect_json(file):
    r, ms = zoo("inspect", "--json", file)
    if r.returncode != 0:
        raise CheckError(f"exit {r.returncode}; stderr: {tail(r.stderr)}")
    doc = json_object(r.stdout, what="stdout")
    return doc, ms


def compare(doc, expected, fmt, state_dict_path="", stripped_prefix=""):
    missing = [k for k in ("format", "state_dict_path", "stripped_prefix", "tensors", "metadata") if k not in doc]
    if missing:
        raise CheckError(f"JSON lacks fields {missing}")
    if doc["format"] != fmt:
        raise CheckError(f"format {doc['format']!r}, expected {fmt!r}")
    if doc["state_dict_path"] != state_dict_path:
        raise CheckError(f"state_dict_path {doc['state_dict_path']!r}, expected {state_dict_path!r}")
    if doc["stripped_prefix"] != stripped_prefix:
        raise CheckError(f"stripped_prefix {doc['stripped_prefix']!r}, expected {stripped_prefix!r}")
    if not isinstance(doc["metadata"], dict):
        raise CheckError(f"metadata is {type(doc['metadata']).__name__}, expected object")
    got = doc["tensors"]
    if not isinstance(got, list):
        raise CheckError(f"tensors is {type(got).__name__}, expected array")
    got = [{"key": t.get("key"), "dtype": t.get("dtype"), "shape": t.get("shape")}
           if isinstance(t, dict) else {"key": repr(t)} for t in got]
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            raise CheckError(f"tensor #{i} is {fmt_entry(g)}, expected {fmt_entry(e)} "
                             f"({len(got)} tensors reported, {len(expected)} expected)")
    if len(got) != len(expected):
        extra = got[len(expected):len(expected) + 3] or expected[len(got):len(got) + 3]
        raise CheckError(f"{len(got)} tensors reported, {len(expected)} expected; "
                         f"first difference: {', '.join(fmt_entry(e) for e in extra)}")


def check_inspect(name, file, expected, fmt, **kw):
    ms = [None]

    @check(name)
    def _():
        doc, ms[0] = inspect_json(file)
        compare(doc, expected, fmt, **kw)
        return f"{len(expected)} tensors"

    return ms[0]


def model_state(ctor):
    t0 = time.perf_counter()
    m = ctor()  # random init (weights=None)
    m.eval()
    info(f"built {ctor.__name__} ({time.perf_counter() - t0:.1f} s)")
    return m


def both_formats(label, sd, keep=False):
    """Save sd in zip and legacy format, check both; returns {fmt: (path, ms)}."""
    exp = expected_tensors(sd)
    out = {}
    for fmt, legacy, ext in (("zip", False, "pt"), ("legacy", True, "pth")):
        p = save(sd, f"{label}_{fmt}.{ext}", legacy=legacy)
        out[fmt] = (p, check_inspect(f"inspect_{label}_{fmt}", p, exp, fmt))
        if not keep:
            remove(p)
    return out


# --------------------------------------------------------------------------
# error handling: usage, non-checkpoints (cheap, first)

@check("inspect_usage_error_exit_2")
def _():
    r, _ = zoo("inspect")
    if r.returncode != 2:
        raise CheckError(f"`zoo inspect` (no file) exited {r.returncode}, expected 2; stderr: {tail(r.stderr)}")


@check("inspect_text_file_exit_1")
def _():
    p = path("notes.txt")
    with open(p, "w") as f:
        f.write("this is not a checkpoint\n" * 20)
    r, _ = zoo("inspect", "--json", p)
    if r.returncode != 1:
        raise CheckError(f"exit {r.returncode}, expected 1; stderr: {tail(r.stderr)}")
    if not r.stderr.strip():
        raise CheckError("exit 1 but nothing on stderr")


@check("inspect_missing_file_exit_2")
def _():
    r, _ = zoo("inspect", "--json", path("does-not-exist.pt"))  # an input error, as everywhere (issue 15)
    if r.returncode != 2:
        raise CheckError(f"exit {r.returncode}, expected 2; stderr: {tail(r.stderr)}")


# --------------------------------------------------------------------------
# hostile pickles: os.system via GLOBAL + REDUCE must be refused, never run


class _System:
    """Unpickles as os.system(cmd) (GLOBAL posix system, then REDUCE)."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def evil_pickle(marker):
    cmd = "touch " + shlex.quote(marker)
    # Looks like a state dict with an extra entry whose unpickling runs the command.
    return pickle.dumps({"fc.bias": _System(cmd), "epoch": 1}, protocol=2)


def hostile_zip(name, marker):
    """A real torch.save zip with its data.pkl replaced by the evil pickle."""
    src = path("hostile_src.pt")
    torch.save({"fc.weight": torch.zeros(2, 2)}, src)
    dst = path(name)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data = evil_pickle(marker)
            zout.writestr(item, data)
    remove(src)
    return dst


def hostile_legacy(name, marker):
    """Legacy (magic-number) layout: magic, protocol version, sys info, then the evil pickle."""
    dst = path(name)
    with open(dst, "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 8}}, f, protocol=2)
        f.write(evil_pickle(marker))
        pickle.dump([], f, protocol=2)
    return dst


def payload_is_live():
    """Control: plain pickle really would run the payload (so the checks below mean something)."""
    m = path("control_marker")
    pickle.loads(evil_pickle(m))
    ok = os.path.exists(m)
    remove(m)
    return ok


if not payload_is_live():
    info("warning: control unpickling did not create its marker; hostile checks may be vacuous")

for label, make in (("zip", hostile_zip), ("legacy", hostile_legacy)):
    marker = path(f"PWNED_{label}")
    name = f"hostile_system_{label}.{'pt' if label == 'zip' else 'pth'}"

    @check(f"inspect_rejects_os_system_{label}")
    def _():
        p = make(name, marker)
        r, _ = zoo("inspect", "--json", p)
        if os.path.exists(marker):
            raise CheckError("PAYLOAD EXECUTED: marker file was created")
        if r.returncode != 1:
            raise CheckError(f"exit {r.returncode}, expected 1; stderr: {tail(r.stderr)}")
        if "system" not in r.stderr:
            raise CheckError(f"stderr does not mention `system`: {tail(r.stderr)}")


# --------------------------------------------------------------------------
# torchvision models, zip + legacy

m18 = model_state(torchvision.models.resnet18)
sd18 = m18.state_dict()
both_formats("resnet18", sd18)

sd18_half = {k: v.half() if v.is_floating_point() else v for k, v in sd18.items()}
p = save(sd18_half, "resnet18_float16.pt")
check_inspect("inspect_resnet18_float16", p, expected_tensors(sd18_half), "zip")
remove(p)
del sd18_half

# DataParallel-style training checkpoint, with real optimizer state (momentum
# buffers are tensors too, but they are not the model).
opt = torch.optim.SGD(m18.parameters(), lr=0.01, momentum=0.9)
m18.train()
m18(torch.randn(2, 3, 64, 64)).sum().backward()
opt.step()
m18.eval()
sd18 = m18.state_dict()
wrapped = {"epoch": 1, "state_dict": {"module." + k: v for k, v in sd18.items()},
           "optimizer": opt.state_dict(), "best_acc1": 0.5, "arch": "resnet18"}
p = save(wrapped, "resnet18_wrapped.pth.tar")
check_inspect("inspect_resnet18_dataparallel_wrapped", p, expected_tensors(sd18), "zip",
              state_dict_path="state_dict", stripped_prefix="module.")
remove(p)
del wrapped, opt

m18 = m18.to(memory_format=torch.channels_last)
sd18_cl = m18.state_dict()
n_cl = sum(1 for v in sd18_cl.values() if v.dim() == 4 and not v.is_contiguous())
info(f"channels_last resnet18: {n_cl} non-contiguous 4-d tensors")
p = save(sd18_cl, "resnet18_channels_last.pt")
check_inspect("inspect_resnet18_channels_last", p, expected_tensors(sd18_cl), "zip")
remove(p)
del m18, sd18, sd18_cl

both_formats("resnet50", model_state(torchvision.models.resnet50).state_dict())
both_formats("vgg11_bn", model_state(torchvision.models.vgg11_bn).state_dict())

# --------------------------------------------------------------------------
# VGG16 (~550 MB; the official file is in the legacy format): correctness + speed

sd16 = model_state(torchvision.models.vgg16).state_dict()
files = both_formats("vgg16", sd16, keep=True)
del sd16


@check("inspect_vgg16_speed")
def _():
    worst = 0.0
    parts = []
    for fmt, (p, first_ms) in files.items():
        runs = [first_ms] if first_ms is not None else []
        for _ in range(3 - len(runs)):
            r, ms = zoo("inspect", "--json", p)
            if r.returncode != 0:
                raise CheckError(f"{fmt}: exit {r.returncode}; stderr: {tail(r.stderr)}")
            runs.append(ms)
        med = statistics.median(runs)
        parts.append(f"{fmt} {med:.0f} ms")
        worst = max(worst, med)
    info("inspect vgg16 (median of 3): " + ", ".join(parts))
    if worst > MAX_MS:
        raise CheckError(f"{worst:.0f} ms > {MAX_MS:.0f} ms ({', '.join(parts)})")
    return f"{worst:.0f} ms"


remove(*(p for p, _ in files.values()))

interop.finish("check_inspect")
