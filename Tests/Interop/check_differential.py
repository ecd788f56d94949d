#!/usr/bin/env python3
"""Differential fuzzer: zoo's state dict against torch.load's, on valid but unusual checkpoints.

Invoked by Tests/Interop/run as

    python -u check_differential.py --zoo /path/to/zoo --workdir /tmp/scratch [--cases N] [--seed S]

Each case is a checkpoint made by a structure-aware generator: random dtypes, shapes and strided
views, storages shared between tensors, Parameters, wrapper dicts and `module.` prefixes, pickled
modules, unicode keys (NFC and NFD spellings of one key side by side), protocols 2-5, zip and
legacy (`_use_new_zipfile_serialization=False`) containers, written by torch.save or crafted
pickle by pickle (storage keys reused with another dtype or length, legacy storage views,
`torch.Tensor()` + BUILD, BUILD re-pointing a tensor, bytes and int keys, big-endian records,
duplicate zip entries, a second `data.pkl` under another folder).

The reference is `torch.load(weights_only=True)`, or `weights_only=False` for files it refuses
(protocols 4-5, pickled modules, crafted classes): every file is made here. After zoo's
documented unwrapping (wrapper keys, mixed dicts, `module.` / `_orig_mod.` prefixes, pickled
modules' state_dict()), `zoo inspect --json --digests` (many files per process) must give the
same keys in the same order, dtypes, shapes and SHA-256 of the data as torch, or refuse the
file when the generator marked it ambiguous. A file torch refuses both ways is skipped.
A subset also goes through `zoo convert` and is read back with safetensors.

Defaults: 2,200 cases, seed 1 (the CI run, about a minute). `--cases N --seed S` for campaigns;
a failing case is kept in the workdir as case-<seed>-<n>.pth with its reason.
"""

import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import random
import struct
import subprocess
import sys
import time
import unicodedata
import warnings
import zipfile

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # interop.py, even under python -P
import interop  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--zoo", default=os.environ.get("ZOO_BIN"))
ap.add_argument("--workdir", default=os.environ.get("ZOO_INTEROP_WORKDIR"))
ap.add_argument("--cases", type=int, default=int(os.environ.get("ZOO_DIFF_CASES", "2200")))
ap.add_argument("--seed", type=int, default=int(os.environ.get("ZOO_DIFF_SEED", "1")))
ap.add_argument("--minutes", type=float, default=0, help="stop making cases after this long (0: no limit)")
ap.add_argument("--batch", type=int, default=250, help="files per zoo process")
ap.add_argument("--convert-every", type=int, default=8, help="also convert every Nth case")
ARGS = ap.parse_args()
if not ARGS.zoo or not ARGS.workdir:
    ap.error("--zoo and --workdir (or $ZOO_BIN / $ZOO_INTEROP_WORKDIR) are required")
ZOO = os.path.abspath(ARGS.zoo)
WORK = os.path.abspath(ARGS.workdir)
os.makedirs(WORK, exist_ok=True)
torch.set_num_threads(1)
warnings.filterwarnings("ignore")  # torch's notes on pickle protocols and weights_only

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
          torch.int16, torch.int8, torch.uint8, torch.bool]
STORAGE_CLASS = {torch.float32: "FloatStorage", torch.float64: "DoubleStorage", torch.float16: "HalfStorage",
                 torch.bfloat16: "BFloat16Storage", torch.int64: "LongStorage", torch.int32: "IntStorage",
                 torch.int16: "ShortStorage", torch.int8: "CharStorage", torch.uint8: "ByteStorage",
                 torch.bool: "BoolStorage"}
TENSOR_CLASS = {torch.float32: "FloatTensor", torch.float64: "DoubleTensor", torch.float16: "HalfTensor",
                torch.bfloat16: "BFloat16Tensor", torch.int64: "LongTensor", torch.int32: "IntTensor",
                torch.int16: "ShortTensor", torch.int8: "CharTensor", torch.uint8: "ByteTensor",
                torch.bool: "BoolTensor"}
WRAPPERS = ["state_dict", "model_state_dict", "model", "net", "network", "state_dict_ema",
            "model_ema", "ema", "module", "params", "weights", "student", "teacher"]
PREFIXES = ["module.", "_orig_mod."]
# Keys: plain, dotted, unicode in both normal forms, look-alikes, wrapper names.
WORDS = ["weight", "bias", "conv1", "bn1", "fc", "layer1.0", "running_mean", "é", "café", "Å", "ﬁ", "ǅ",
         "Ω", "Ω", "ö", "日本", "x" * 40, "a.b", "", "state_dict", "model", "module", "0", "1"]


def nfd(s):
    return unicodedata.normalize("NFD", s)


def random_key(rng):
    parts = [rng.choice(WORDS) for _ in range(rng.randint(1, 3))]
    key = ".".join(parts)
    return nfd(key) if rng.random() < 0.3 else unicodedata.normalize("NFC", key)


def random_tensor(rng, dtype=None, numel_max=40):
    dtype = dtype or rng.choice(DTYPES)
    rank = rng.choice([0, 1, 1, 2, 2, 3, 4])
    shape = [rng.choice([0, 1, 1, 2, 3, 4, 5]) if rng.random() < 0.15 else rng.randint(1, 5) for _ in range(rank)]
    while rank and torch.Size(shape).numel() > numel_max:
        shape[rng.randrange(rank)] = 1
    g = torch.Generator().manual_seed(rng.randrange(1 << 30))
    if dtype.is_floating_point:
        t = (torch.randn(shape, generator=g, dtype=torch.float64) * 10).to(dtype)
    elif dtype == torch.bool:
        t = torch.randint(0, 2, shape, generator=g).bool()
    else:
        info = torch.iinfo(dtype)
        t = torch.randint(max(info.min, -(1 << 40)), min(info.max, 1 << 40), shape, generator=g, dtype=torch.int64).to(dtype)
    return t


def random_view(rng, t):
    """A strided view of t (shares its storage)."""
    for _ in range(rng.randint(0, 2)):
        if t.dim() == 0:
            break
        op = rng.choice(["slice", "t", "narrow", "expand", "select", "unsqueeze", "flat", "diag", "as_strided"])
        d = rng.randrange(t.dim())
        try:
            if op == "slice" and t.shape[d] > 1:
                idx = [slice(None)] * t.dim()
                idx[d] = slice(rng.randrange(t.shape[d]), None, rng.randint(1, 3))
                t = t[tuple(idx)]
            elif op == "t" and t.dim() >= 2:
                t = t.transpose(0, t.dim() - 1)
            elif op == "narrow" and t.shape[d] > 1:
                t = t.narrow(d, 1, t.shape[d] - 1)
            elif op == "expand" and t.shape[d] == 1:
                shape = list(t.shape)
                shape[d] = rng.randint(2, 4)
                t = t.expand(shape)
            elif op == "select" and t.shape[d] > 0:
                t = t.select(d, rng.randrange(t.shape[d]))
            elif op == "unsqueeze":
                t = t.unsqueeze(d)
            elif op == "flat" and t.is_contiguous():
                t = t.view(-1)
            elif op == "diag" and t.dim() >= 2:
                t = t.diagonal()
            elif op == "as_strided" and t.numel() > 2:
                t = t.as_strided((2,), (rng.randint(0, 1),), t.storage_offset() + rng.randint(0, 1))
        except RuntimeError:
            pass
    return t


# --------------------------------------------------------------------------
# Generators. Each returns (file bytes, ambiguous: bool, label).

def build_state(rng):
    """A dict of tensors with shared storages and views, maybe Parameters."""
    bases = [random_tensor(rng) for _ in range(rng.randint(1, 3))]
    sd = collections.OrderedDict() if rng.random() < 0.5 else {}
    for _ in range(rng.randint(1, 6)):
        base = rng.choice(bases)
        t = random_view(rng, base) if rng.random() < 0.5 else (base if rng.random() < 0.3 else random_tensor(rng))
        if rng.random() < 0.15 and t.dtype.is_floating_point:
            t = nn.Parameter(t, requires_grad=rng.random() < 0.5)
        sd[random_key(rng)] = t
    if rng.random() < 0.2 and sd:  # the same tensor object under two keys: a memo GET
        sd[random_key(rng)] = next(iter(sd.values()))
    return sd


def wrap(rng, sd):
    r = rng.random()
    if r < 0.15:
        prefix = rng.choice(PREFIXES) * rng.randint(1, 2)
        sd = type(sd)((prefix + k, v) for k, v in sd.items())
    r = rng.random()
    if r < 0.45:
        return sd
    if r < 0.75:
        outer = {}
        if rng.random() < 0.5:
            outer["epoch"] = rng.randint(0, 100)
        outer[rng.choice(WRAPPERS + ["custom", "é"])] = sd
        if rng.random() < 0.5:
            outer["optimizer"] = {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1}]}
        if rng.random() < 0.3:
            outer[rng.choice(WRAPPERS)] = {"other": 1}
        return outer
    mixed = dict(sd)
    mixed["step"] = rng.randint(0, 9)
    mixed["name"] = random_key(rng)
    return mixed


def gen_torch_save(rng):
    obj = wrap(rng, build_state(rng))
    buffer = io.BytesIO()
    legacy = rng.random() < 0.3
    torch.save(obj, buffer, pickle_protocol=rng.choice([2, 2, 3, 4, 5]), _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue(), False, "legacy" if legacy else "zip"


def gen_module(rng):
    layers = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["linear", "bn", "conv"])
        if kind == "linear":
            layers.append(nn.Linear(rng.randint(1, 4), rng.randint(1, 4), bias=rng.random() < 0.5))
        elif kind == "bn":
            layers.append(nn.BatchNorm1d(rng.randint(1, 4)))
        else:
            layers.append(nn.Conv2d(rng.randint(1, 3), rng.randint(1, 3), 1))
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    if rng.random() < 0.3:
        model.register_buffer("extra", torch.arange(3), persistent=rng.random() < 0.5)
    obj = model if rng.random() < 0.5 else {"model": model, "epoch": 1}
    buffer = io.BytesIO()
    legacy = rng.random() < 0.3
    torch.save(obj, buffer, pickle_protocol=rng.choice([2, 4]), _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue(), False, "module-legacy" if legacy else "module"


# Crafted pickles: markers the Pickler below turns into torch's opcodes.

class Storage:
    def __init__(self, key, dtype, numel, view=None):
        self.key, self.dtype, self.numel, self.view = key, dtype, numel, view


class Rebuilt:
    """_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks), then maybe BUILD."""

    def __init__(self, storage, offset, size, stride, build=None, parameter=False):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())
        self.build, self.parameter = build, parameter


class Bare:
    """torch.XTensor() then BUILD (storage, offset, size, stride): how torch < 0.4 pickled tensors."""

    def __init__(self, cls, state):
        self.cls, self.state = cls, state


class CraftPickler(pickle.Pickler):
    def __init__(self, file, protocol, legacy):
        super().__init__(file, protocol=protocol)
        self.legacy = legacy

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            cls = storage_global(obj.dtype)
            if self.legacy:
                return ("storage", cls, obj.key, "cpu", obj.numel, obj.view)
            return ("storage", cls, obj.key, "cpu", obj.numel)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, Rebuilt):
            inner = (_global("torch._utils", "_rebuild_tensor_v2"), obj.args)
            if obj.parameter:
                return (_global("torch._utils", "_rebuild_parameter"), (Reduced(*inner), False, collections.OrderedDict()))
            if obj.build is not None:
                return inner + (obj.build,)
            return inner
        if isinstance(obj, Bare):
            return (_global("torch", obj.cls), (), obj.state)
        return NotImplemented


class Reduced:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


_GLOBALS = {}


def _global(module, name):
    """A real object pickle writes as GLOBAL module name."""
    key = (module, name)
    if key not in _GLOBALS:
        mod = __import__(module, fromlist=[name])
        _GLOBALS[key] = getattr(mod, name)
    return _GLOBALS[key]


def storage_global(dtype):
    return getattr(torch, STORAGE_CLASS[dtype])


def raw_bytes(t, big=False):
    if t.dtype == torch.bool:
        t = t.view(torch.uint8)  # the stored bytes, not 0/1 (copy_ would normalise them)
    flat = torch.empty(t.numel(), dtype=t.dtype).copy_(t.reshape(-1))
    b = flat.view(torch.uint8).numpy().tobytes()
    if big and t.element_size() > 1:
        n = t.element_size()
        b = b"".join(b[i:i + n][::-1] for i in range(0, len(b), n))
    return b


def crafted_pickle(obj, protocol, legacy):
    buffer = io.BytesIO()
    CraftPickler(buffer, protocol, legacy).dump(obj)
    return buffer.getvalue()


def zip_bytes(entries, prefix="archive"):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name if name.startswith("other/") else f"{prefix}/{name}",
                                   date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, data)  # duplicate names on purpose: the warning is filtered
    return buffer.getvalue()


def legacy_bytes(main_pickle, keys, storages, protocol):
    out = io.BytesIO()
    pickle.dump(0x1950a86a20f9469cfc6c, out, protocol=2)
    pickle.dump(1001, out, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, out, protocol=2)
    out.write(main_pickle)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        data, elsize = storages[key]
        out.write(struct.pack("<q", len(data) // elsize))
        out.write(data)
    return out.getvalue()


def gen_crafted(rng):
    """Storages and tensors pickle by pickle, with the constructs real files never have."""
    legacy = rng.random() < 0.35
    protocol = rng.choice([2, 3, 4, 5])
    big = not legacy and rng.random() < 0.15
    ambiguous = False
    labels = []
    storages = {}  # key -> (bytes, element size)
    refs = []
    for i in range(rng.randint(1, 3)):
        t = random_tensor(rng, numel_max=30).reshape(-1)
        key = str(rng.choice([i, i, 7 + i, 1000 + i]))
        if key in storages:
            continue
        storages[key] = (raw_bytes(t, big), t.element_size())
        refs.append((key, t.dtype, t.numel()))
    tensors = []
    used = set()
    for _ in range(rng.randint(1, 5)):
        key, dtype, numel = rng.choice(refs)
        sdtype, snumel = dtype, numel
        if rng.random() < 0.12:  # the same record under another dtype or length
            sdtype = rng.choice(DTYPES)
            snumel = max(0, (numel * dtype.itemsize) // sdtype.itemsize - rng.randint(0, 1))
            labels.append("storage-reuse")
            if snumel * sdtype.itemsize != numel * dtype.itemsize:
                ambiguous = True  # torch: an error (zip) or an uninitialised storage (legacy)
            if big and sdtype.itemsize != dtype.itemsize:
                ambiguous = True  # big-endian bytes swapped for one element size, read as another
        view = None
        if legacy and rng.random() < 0.3 and snumel > 0:
            off = rng.randrange(snumel)
            view = (f"v{rng.randint(0, 2)}", off, rng.randint(0, snumel - off))
            labels.append("legacy-view")
        storage = Storage(key, sdtype, snumel, view)
        used.add(key)
        avail = view[2] if view else snumel
        if avail == 0:
            size, stride, offset = [0], [1], 0
        else:
            n = rng.randint(1, avail)
            offset = rng.randrange(avail - n + 1)
            if rng.random() < 0.5 and n >= 4:
                size, stride = [2, n // 2], [n // 2, 1]
                if rng.random() < 0.5:
                    size, stride = [n // 2, 2], [1, n // 2]
            else:
                size, stride = [n], [1]
        kind = rng.random()
        if kind < 0.12:
            cls = "Tensor" if rng.random() < 0.5 else TENSOR_CLASS[sdtype]
            t = Bare(cls, (storage, offset, tuple(size), tuple(stride)))
            labels.append("bare+build")
        elif kind < 0.2:
            other_key, other_dtype, other_numel = rng.choice(refs)
            t = Rebuilt(storage, offset, size, stride,
                        build=(Storage(other_key, other_dtype, other_numel), 0, (min(1, other_numel),), (1,)))
            ambiguous = True
            labels.append("build-set")
        else:
            t = Rebuilt(storage, offset, size, stride, parameter=sdtype.is_floating_point and rng.random() < 0.2)
        tensors.append(t)
    sd = {}
    for t in tensors:
        k = random_key(rng)
        r = rng.random()
        if r < 0.06:
            k = k.encode()
            ambiguous = True
            labels.append("bytes-key")
        elif r < 0.1:
            k = rng.randint(0, 3)
            ambiguous = True
            labels.append("int-key")
        elif r < 0.25 and unicodedata.normalize("NFC", k) != nfd(k):
            sd[unicodedata.normalize("NFC", k)] = t
            k = nfd(k)
            labels.append("nfc-nfd")
        sd[k] = t
    obj = sd
    if rng.random() < 0.3:
        obj = {rng.choice(WRAPPERS): sd, "epoch": 2}
    main = crafted_pickle(obj, protocol, legacy)
    if legacy:
        keys = [k for k in storages if k in used]
        rng.shuffle(keys)
        return legacy_bytes(main, keys, storages, protocol), ambiguous, "crafted-legacy " + " ".join(sorted(set(labels)))
    entries = [("data.pkl", main)] + [(f"data/{k}", v[0]) for k, v in storages.items()]
    entries.append(("byteorder", b"big" if big else b"little"))
    entries.append(("version", b"3\n"))
    if big:
        labels.append("big-endian")
    r = rng.random()
    if r < 0.05:
        entries.append(("data.pkl", crafted_pickle({"w": tensors[0]}, protocol, legacy)))
        ambiguous = True
        labels.append("dup-entry")
    elif r < 0.08:
        entries.append(("other/data.pkl", crafted_pickle({"w": tensors[0]}, protocol, legacy)))
        ambiguous = True
        labels.append("second-prefix")
    elif r < 0.11 and storages:
        k = next(iter(storages))
        entries.append((f"data/{k}", bytes(len(storages[k][0]))))
        ambiguous = True
        labels.append("dup-record")
    return zip_bytes(entries), ambiguous, "crafted-zip " + " ".join(sorted(set(labels)))


def gen_double_eocd(rng):
    """Two archives back to back: two end records, each a valid checkpoint."""
    a, _, _ = gen_torch_save(rng)
    b, _, _ = gen_torch_save(rng)
    if not (a.startswith(b"PK") and b.startswith(b"PK")):
        return a, False, "zip"
    buffer = io.BytesIO()
    buffer.write(a)  # zipfile then writes b's entries after a, offsets counted from the file's start
    with zipfile.ZipFile(io.BytesIO(b)) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for info in source.infolist():
            zf.writestr(info, source.read(info))
    return buffer.getvalue(), True, "two-eocd"


class ScriptLeaf(nn.Module):
    """Parameters, buffers (one not persistent, one None) and plain tensor attributes, which
    TorchScript keeps as attributes that are in no state dict."""

    def __init__(self, n: int, bias: bool, plain: bool):
        super().__init__()
        self.lin = nn.Linear(n, 2, bias=bias)
        if plain:
            self._context = torch.zeros(3)
            self._state = torch.arange(n)
        self.register_buffer("stat", torch.randn(2))
        self.register_buffer("scratch", torch.ones(n), persistent=False)
        self.register_buffer("missing", None)
        self.gain = nn.Parameter(torch.randn(1))

    def forward(self, x):
        return self.lin(x) * self.gain + self.stat.sum()


class ScriptRoot(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.first = ScriptLeaf(3, rng.random() < 0.5, rng.random() < 0.5)
        self.second = ScriptLeaf(3, rng.random() < 0.5, rng.random() < 0.5)
        self.norm = nn.BatchNorm1d(2)
        self._plain = torch.randn(4)
        if rng.random() < 0.5:
            self.register_buffer("counter", torch.tensor(rng.randint(0, 9)))

    def forward(self, x):
        return self.norm(self.first(x) + self.second(x))


def gen_script(rng):
    """A TorchScript archive: zoo must list exactly torch.jit.load(f).state_dict()."""
    torch.manual_seed(rng.randrange(1 << 30))
    model = ScriptRoot(rng)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    return buffer.getvalue(), False, "torchscript"


GENERATORS = [(gen_torch_save, 45), (gen_crafted, 45), (gen_module, 7), (gen_double_eocd, 3), (gen_script, 1)]


# --------------------------------------------------------------------------
# The reference: torch.load, then zoo's documented unwrapping.

def torch_reference(path):
    if zipfile.is_zipfile(path) and any(n.endswith("/constants.pkl") for n in zipfile.ZipFile(path).namelist()):
        try:
            return torch.jit.load(path, map_location="cpu").state_dict(), "torchscript"
        except Exception as e:
            return e, None
    try:
        return torch.load(path, weights_only=True, map_location="cpu"), "weights_only"
    except Exception:
        pass
    try:
        return torch.load(path, weights_only=False, map_location="cpu"), "full"
    except Exception as e:
        return e, None


class Refuse(Exception):
    pass


def tensor_items(d):
    out = []
    for k, v in d.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            return None
        out.append((k, v))
    return out


def finish(items):
    while items:
        p = next((p for p in PREFIXES if all(k.startswith(p) and len(k) > len(p) for k, _ in items)), None)
        if p is None:
            break
        items = [(k[len(p):], v) for k, v in items]
    return items


def unwrap(obj):
    """zoo's StateDictExtractor, in Python: the tensors zoo should list, or Refuse."""
    if isinstance(obj, nn.Module):
        return finish(list(obj.state_dict().items()))
    if not isinstance(obj, dict):
        raise Refuse(f"holds a {type(obj).__name__}")
    items = tensor_items(obj)
    if items is not None:
        return finish(items)
    candidates = [k for k in WRAPPERS if k in obj] + [k for k in obj if isinstance(k, str) and k not in WRAPPERS]
    for k in candidates:
        v = obj[k]
        if isinstance(v, dict):
            inner = tensor_items(v)
            if inner:
                return finish(inner)
        elif isinstance(v, nn.Module):
            return finish(list(v.state_dict().items()))
    tensors = [(k, v) for k, v in obj.items() if isinstance(v, torch.Tensor)]
    if any(not isinstance(k, str) for k, _ in tensors):
        raise Refuse("a tensor under a key that is not a string")
    if not tensors:
        raise Refuse("no tensors")
    return finish(tensors)


def digest(t):
    return hashlib.sha256(raw_bytes(t.detach())).hexdigest()


def expected_rows(items):
    return [{"key": k, "dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape), "sha256": digest(v)}
            for k, v in items]


# --------------------------------------------------------------------------

def run_zoo(files):
    r = subprocess.run([ZOO, "inspect", "--json", "--digests", *files], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, errors="replace", timeout=600)
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    if len(files) == 1:
        if r.returncode != 0:
            return [{"file": files[0], "error": r.stderr.strip()}]
        return [json.loads(r.stdout)]
    if len(lines) != len(files):
        raise RuntimeError(f"zoo printed {len(lines)} lines for {len(files)} files; stderr: {r.stderr[-400:]}")
    return lines


def first_difference(got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"tensor #{i}: zoo {g}, torch {w}"
    return f"zoo lists {len(got)} tensors, torch {len(want)}: {(got[len(want):] or want[len(got):])[:2]}"


def convert_check(file, want):
    out = file + ".safetensors"
    r = subprocess.run([ZOO, "convert", file, "-o", out], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, errors="replace", timeout=120)
    if r.returncode != 0:
        return f"zoo convert failed: {r.stderr.strip()[-300:]}"
    from safetensors import safe_open
    from safetensors.torch import load_file
    loaded = load_file(out)
    with safe_open(out, "pt") as f:  # zoo stores a tensor shared by two keys once, with an alias
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    for key, original in aliases.items():
        loaded[key] = loaded[original]
    os.remove(out)
    got = {k: (str(v.dtype).replace("torch.", ""), list(v.shape), digest(v)) for k, v in loaded.items()}
    exp = {w["key"]: (w["dtype"], w["shape"], w["sha256"]) for w in want}
    if got != exp:
        diff = sorted(set(got.items()) ^ set(exp.items()), key=str)[:2] if False else \
            [k for k in set(got) | set(exp) if got.get(k) != exp.get(k)][:3]
        return f"converted file differs at {diff!r}"
    return None


def main():
    t0 = time.perf_counter()
    stats = collections.Counter()
    failures = []
    pending = []  # (case id, path, label, ambiguous, expected rows or Refuse)

    def flush():
        if not pending:
            return
        results = run_zoo([p[1] for p in pending])
        for (case, file, label, ambiguous, want), got in zip(pending, results):
            reason = None
            if "error" in got:
                if isinstance(want, Refuse) or ambiguous:
                    stats["refused, as expected"] += 1
                else:
                    reason = f"zoo refuses what torch reads: {got['error'][-300:]}"
            elif isinstance(want, Refuse):
                reason = f"torch's state dict is unusable ({want}) but zoo reads {len(got['tensors'])} tensors"
            else:
                rows = [{k: t.get(k) for k in ("key", "dtype", "shape", "sha256")} for t in got["tensors"]]
                if rows != want:
                    reason = first_difference(rows, want)
                else:
                    stats["equal"] += 1
                    if want and (case % ARGS.convert_every == 0 or label == "torchscript"):
                        reason = convert_check(file, want)
                        stats["converted"] += reason is None
            if reason:
                kept = os.path.join(WORK, f"case-{ARGS.seed}-{case}.pth")
                os.replace(file, kept)
                failures.append((case, label, reason, kept))
            else:
                os.remove(file)
        pending.clear()

    rng_master = random.Random(ARGS.seed)
    weights = [w for _, w in GENERATORS]
    run = 0
    for case in range(ARGS.cases):
        if ARGS.minutes and time.perf_counter() - t0 > ARGS.minutes * 60:
            break
        run += 1
        rng = random.Random(rng_master.randrange(1 << 62))
        gen = rng.choices([g for g, _ in GENERATORS], weights)[0]
        data, ambiguous, label = gen(rng)
        file = os.path.join(WORK, f"c{case}.pth")
        with open(file, "wb") as f:
            f.write(data)
        ref, mode = torch_reference(file)
        if mode is None:
            stats["torch refuses"] += 1
            os.remove(file)
            continue
        stats[f"reference {mode}"] += 1
        try:
            want = expected_rows(unwrap(ref))
        except Refuse as e:
            want = e
        pending.append((case, file, label, ambiguous, want))
        if len(pending) >= ARGS.batch:
            flush()
    flush()
    elapsed = time.perf_counter() - t0
    by_label = collections.Counter(label for _, label, _, _ in failures)
    for case, label, reason, kept in failures[:30]:
        interop.failed(f"differential case {case} [{label}]", f"{reason} (kept {kept})")
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(stats.items()))
    interop.info(f"seed {ARGS.seed}: {run} cases in {elapsed:.1f} s ({summary}); "
                 f"{len(failures)} divergences {dict(by_label)}")
    if not failures:
        interop.passed(f"differential seed {ARGS.seed}", f"{run} cases, {elapsed:.0f} s, {summary}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
