#!/usr/bin/env python3
"""Generate the checkpoint fixtures used by zoo's tests.

What it makes (all next to this script, in Tests/Fixtures/):
  * small PyTorch checkpoints in every on-disk format zoo reads: zip (torch >= 1.6),
    "legacy" magic-number stacked pickles (torch 0.1.10 - 1.5), the old TAR format
    (torch < 0.1.10, written by hand here), a big-endian zip, TorchScript, safetensors;
  * wrapped / prefixed / odd checkpoints (optimizer state, argparse.Namespace, numpy scalars,
    "module." and "_orig_mod." prefixes, a whole pickled nn.Module, 1500 keys);
  * hostile pickles that zoo must refuse (they would only `touch /tmp/zoo-pwned-<name>` if
    ever executed; this script never executes them: it only disassembles them and replays
    them through an unpickler whose globals are inert stubs);
  * junk / truncated files;
  * for every fixture `<name>.expected.json`, and `index.json` listing the fixture files.

Expected tensor values are always taken by LOADING the written file back with torch (or
torch.jit / safetensors) and the script asserts, bit for bit, that what torch loads equals
the in-memory tensors it saved.

Regenerate (from anywhere; paths are relative to this file):
    $(scripts/venv | tail -1) Tests/Fixtures/make_fixtures.py      # from the repository root: the venv's python
(any Python with torch, numpy and safetensors works). Deterministic: the expected JSON is
identical on every run with the same torch; the zip files differ only in their random
`.data/serialization_id`, and the legacy files in their storage keys (memory addresses).
"""

import argparse
import collections
import copy
import io
import json
import os
import pickle
import pickletools
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file as st_load_file
from safetensors.torch import save_file as st_save_file

HERE = os.path.dirname(os.path.abspath(__file__))
TMP = tempfile.mkdtemp(prefix="zoo-fixtures-")
INDEX = []  # fixture file names, in creation order

DTYPE_NAMES = {
    torch.float32: "float32", torch.float64: "float64", torch.float16: "float16",
    torch.bfloat16: "bfloat16", torch.int64: "int64", torch.int32: "int32",
    torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8", torch.bool: "bool",
}
STORAGE_ELEMENT_SIZE = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1,
    "ByteStorage": 1, "BoolStorage": 1,
}


# ----------------------------------------------------------------------------- helpers

def path_of(name):
    return os.path.join(HERE, name)


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dim() == 0:
        t = t.reshape(1)
    if t.dtype == torch.bool:
        t = t.view(torch.uint8)
    return t.view(torch.uint8).numpy().tobytes()


def assert_same(a, b, what):
    """Bit-exact comparison (NaN-aware, distinguishes -0.0); also torch.equal where meaningful."""
    assert a.dtype == b.dtype, (what, a.dtype, b.dtype)
    assert tuple(a.shape) == tuple(b.shape), (what, a.shape, b.shape)
    assert tensor_bytes(a) == tensor_bytes(b), f"{what}: bytes differ"
    if a.is_floating_point():
        assert torch.equal(torch.nan_to_num(a.float(), nan=12345.0),
                           torch.nan_to_num(b.float(), nan=12345.0)), what
        assert torch.equal(torch.isnan(a), torch.isnan(b)), what
    else:
        assert torch.equal(a, b), what


def assert_same_dict(loaded, original, what):
    assert list(loaded.keys()) == list(original.keys()), (what, list(loaded), list(original))
    for k in original:
        assert_same(loaded[k], original[k], f"{what}[{k}]")


def tensor_entries(sd, strip=""):
    out = []
    for k, t in sd.items():
        assert isinstance(t, torch.Tensor), (k, type(t))
        if strip:
            assert k.startswith(strip), k
            k = k[len(strip):]
        out.append({"key": k, "dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                    "hex": tensor_bytes(t).hex()})
    return out


def write_expected(file, **fields):
    base, _ = os.path.splitext(file)
    data = {"file": file}
    data.update(fields)
    with open(path_of(base + ".expected.json"), "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    INDEX.append(file)


def expected_readable(file, fmt, sd, notes, state_dict_path="", stripped_prefix="",
                      metadata_keys=()):
    write_expected(file, format=fmt, state_dict_path=state_dict_path,
                   stripped_prefix=stripped_prefix, tensors=tensor_entries(sd, stripped_prefix),
                   metadata_keys=sorted(metadata_keys), notes=notes)


def expected_refused(file, kind, notes, symbol=None, reason=None):
    fields = {"refused": True, "kind": kind}
    if symbol is not None:
        fields["symbol"] = symbol
    if reason is not None:
        fields["reason"] = reason
    fields["notes"] = notes
    write_expected(file, **fields)


def load(name, **kw):
    kw.setdefault("weights_only", True)
    return torch.load(path_of(name), map_location="cpu", **kw)


def zip_prefix(zf):
    return zf.namelist()[0].split("/")[0]


def data_pkl(name):
    with zipfile.ZipFile(path_of(name)) as zf:
        return zf.read(zip_prefix(zf) + "/data.pkl")


def opcodes(pkl):
    return sorted({op.name for op, _, _ in pickletools.genops(pkl)})


def pickle_protocol_of(pkl):
    ops = list(pickletools.genops(pkl))
    assert ops[0][0].name == "PROTO"
    return ops[0][1]


# An unpickler that can replay ANY pickle (hostile ones included) without importing or
# calling anything: every global resolves to a fresh inert stub class that records its
# module/name, REDUCE/NEWOBJ just build stub instances recording their arguments.
class Stub:
    GLOBAL = "?"

    def __new__(cls, *args, **kw):
        self = object.__new__(cls)
        self.args = args
        self.items = {}
        self.list = []
        self.state = None
        return self

    def __init__(self, *args, **kw):
        pass

    def __setitem__(self, k, v):
        self.items[k] = v

    def append(self, v):
        self.list.append(v)

    def extend(self, vs):
        self.list.extend(vs)

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<{self.GLOBAL}{self.args!r}>"


class RecordingUnpickler(pickle.Unpickler):
    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.globals = []      # "module.name" in the order find_class was asked
        self.persids = []
        self.stub_types = {}

    def find_class(self, module, name):
        sym = f"{module}.{name}"
        self.globals.append(sym)
        if sym not in self.stub_types:
            self.stub_types[sym] = type("Stub_" + sym.replace(".", "_"), (Stub,), {"GLOBAL": sym})
        return self.stub_types[sym]

    def persistent_load(self, pid):
        self.persids.append(pid)
        return ("persid", pid)


def replay(pkl):
    u = RecordingUnpickler(pkl)
    obj = u.load()
    return u, obj


def find_calls(obj, sym, seen=None):
    """Stub instances created from global `sym` anywhere inside obj."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found = []
    if isinstance(obj, Stub):
        if obj.GLOBAL == sym:
            found.append(obj)
        for x in (obj.args, obj.items, obj.list, obj.state):
            found += find_calls(x, sym, seen)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            found += find_calls(k, sym, seen) + find_calls(v, sym, seen)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            found += find_calls(v, sym, seen)
    return found


def rewrite_zip(src, dst, replace):
    """Copy a torch zip archive entry by entry (same names, same order), replacing the contents
    of entries named in `replace` ({name: bytes}). Entries are stored uncompressed and their data
    is 64-byte aligned through an 'FB' padding extra field, as PyTorch's writer does."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = replace.get(info.filename, None)
            if data is None:
                data = zin.read(info.filename)
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_STORED
            offset = zout.fp.tell()
            name_len = len(info.filename.encode())
            pad = (-(offset + 30 + name_len + 4)) % 64
            zi.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
            zout.writestr(zi, data)


def make_payload(func, args):
    class Payload:
        def __reduce__(self):
            return (func, args)
    return Payload()


# ----------------------------------------------------------------------------- the tiny model

class Head(nn.Module):
    """A custom submodule: a Linear plus one persistent and one non-persistent buffer."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.register_buffer("scale", torch.tensor([0.5, 1.0, 2.0]))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.scale


def make_model():
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(3, 4, kernel_size=3, bias=False),  # 0
        nn.BatchNorm2d(4),                           # 1
        nn.ReLU(),                                   # 2
        nn.AdaptiveAvgPool2d(1),                     # 3
        nn.Flatten(),                                # 4
        Head(),                                      # 5
    )
    with torch.no_grad():
        bn = m[1]
        bn.weight.copy_(torch.rand(4) + 0.5)
        bn.bias.copy_(torch.randn(4) * 0.1)
        bn.running_mean.copy_(torch.randn(4))
        bn.running_var.copy_(torch.rand(4) * 1.5 + 0.5)
        bn.num_batches_tracked.fill_(1234)
        m[5].scratch.copy_(torch.tensor([7.0, 8.0]))
    m.eval()
    return m


MODEL = make_model()
SD = MODEL.state_dict()  # OrderedDict with _metadata
TINY_KEYS = list(SD.keys())
assert TINY_KEYS == ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                     "1.num_batches_tracked", "5.scale", "5.fc.weight", "5.fc.bias"], TINY_KEYS


def clone_sd(sd):
    out = collections.OrderedDict((k, v.clone()) for k, v in sd.items())
    out._metadata = copy.deepcopy(getattr(sd, "_metadata", None))
    return out


# ----------------------------------------------------------------------------- 1. dtypes

def make_dtypes():
    name = "dtypes.pth"
    sd = collections.OrderedDict()
    sd["f32"] = torch.tensor([1.5, float("nan"), float("inf"), float("-inf"), -0.0,
                              3.4028234663852886e38, 1e-45, -2.0], dtype=torch.float32)
    sd["f16"] = torch.tensor([[1.0, -2.5, 65504.0], [6e-8, float("nan"), -0.0]], dtype=torch.float16)
    sd["bf16"] = torch.tensor([1.0, -3.0, 1e38, float("-inf"), 0.1], dtype=torch.bfloat16)
    sd["f64"] = torch.tensor([3.141592653589793, -1e300, 5e-324, float("nan")], dtype=torch.float64)
    sd["i64"] = torch.tensor([2**62, -(2**62), 2**62 + 12345, -1, 0, 2**63 - 1, -(2**63)],
                             dtype=torch.int64)
    sd["i32"] = torch.tensor([2**31 - 1, -(2**31), 7, -7], dtype=torch.int32)
    sd["i16"] = torch.tensor([32767, -32768, -1, 256], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, -1, 127, -5], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True, True, False], dtype=torch.bool)
    sd["scalar_f32"] = torch.tensor(2.5, dtype=torch.float32)
    sd["scalar_i64"] = torch.tensor(1234, dtype=torch.int64)
    sd["empty_f32"] = torch.empty(0, 3, dtype=torch.float32)
    sd["empty_i64"] = torch.empty(2, 0, dtype=torch.int64)
    torch.save(sd, path_of(name))
    loaded = load(name)
    assert_same_dict(loaded, sd, name)
    pkl = data_pkl(name)
    u, _ = replay(pkl)
    classes = sorted({g for g in u.globals if g.endswith("Storage")})
    with zipfile.ZipFile(path_of(name)) as zf:
        sizes = {n.split("/", 1)[1]: zf.getinfo(n).file_size for n in zf.namelist() if "/data/" in n}
    expected_readable(name, "zip", loaded,
                      "One tensor per dtype (f32 has nan, +inf, -inf, -0.0, max, smallest subnormal; "
                      "f64 has nan and the smallest subnormal; i64 has +-2^62, INT64_MAX, INT64_MIN), "
                      "0-d f32 and 0-d i64 (size=(), stride=() pickled as EMPTY_TUPLE), empty [0,3] f32 "
                      "and [2,0] i64 tensors. Storage classes in the pickle: " + ", ".join(classes) +
                      f". Empty tensors still get a storage record of 0 bytes ({sizes}).")


# ----------------------------------------------------------------------------- 2. views

def make_views_dict():
    torch.manual_seed(1)
    d = collections.OrderedDict()
    base = torch.arange(10, dtype=torch.float32) * 1.5
    d["slice"] = base[3:7]
    d["transposed"] = torch.randn(2, 3).t()
    x = torch.randn(4, 7)
    d["strided"] = x[::2, 1::3]
    d["channels_last"] = torch.randn(4, 3, 3, 3).contiguous(memory_format=torch.channels_last)
    d["expanded"] = torch.arange(3, dtype=torch.float32).expand(4, 3)
    d["odd_stride"] = (torch.arange(12, dtype=torch.float32) + 100).as_strided((2, 1, 3), (6, 99, 1), 1)
    a = torch.randn(12)
    d["a"] = a
    d["a_view"] = a[2:8].view(2, 3)
    d["a_again"] = a
    d["i64_t"] = torch.arange(6, dtype=torch.int64).view(2, 3).t()
    return d


def layout(t):
    return (tuple(t.shape), tuple(t.stride()), t.storage_offset())


def check_views_loaded(loaded, d, name):
    assert_same_dict(loaded, d, name)
    for k in d:
        assert layout(loaded[k]) == layout(d[k]), (name, k, layout(loaded[k]), layout(d[k]))
    # sharing is preserved by torch.load
    ptr = lambda t: t.untyped_storage().data_ptr()
    assert ptr(loaded["a"]) == ptr(loaded["a_view"]) == ptr(loaded["a_again"]), name
    assert loaded["a"] is loaded["a_again"], name


def views_notes(d, extra):
    lay = "; ".join(f"{k}: shape {list(t.shape)} stride {list(t.stride())} offset {t.storage_offset()}"
                    for k, t in d.items())
    return ("Views and strides. Layouts as saved (shape/stride/storage_offset in elements): " + lay +
            ". 'slice' is base[3:7] of a 10-element storage (whole storage saved, offset 3). "
            "'expanded' is arange(3).expand(4,3): torch saves stride (0, 1) over a 3-element storage. "
            "'odd_stride' has stride 99 on its size-1 dim. Keys 'a', 'a_view' and 'a_again' share ONE storage "
            "(a_view = a[2:8].view(2,3), offset 2); 'a_again' is the very same tensor object as 'a' "
            "(pickled once, then referenced through the memo with BINGET). " + extra)


def make_views():
    name = "views.pth"
    d = make_views_dict()
    torch.save(d, path_of(name))
    loaded = load(name)
    check_views_loaded(loaded, d, name)
    pkl = data_pkl(name)
    u, _ = replay(pkl)
    keys = [p[2] for p in u.persids]
    with zipfile.ZipFile(path_of(name)) as zf:
        n_storage_records = len([n for n in zf.namelist() if "/data/" in n])
    expected_readable(name, "zip", loaded, views_notes(
        d, f"The zip holds {n_storage_records} data/<key> records; persistent ids reference keys "
           f"{keys} (one BINPERSID per tensor that is not a memo hit)."))
    return d


# ----------------------------------------------------------------------------- 3/4. tiny_net

def make_tiny_net():
    name = "tiny_net.pth"
    torch.save(SD, path_of(name))
    loaded = load(name)
    assert_same_dict(loaded, SD, name)
    assert loaded._metadata == SD._metadata
    expected_readable(name, "zip", loaded,
                      "state_dict of nn.Sequential(Conv2d(3,4,3,bias=False), BatchNorm2d(4), ReLU, "
                      "AdaptiveAvgPool2d(1), Flatten, Head) where Head is a custom module with fc=Linear(4,3), a "
                      "persistent buffer 'scale' and a non-persistent buffer 'scratch' (not in the state dict). "
                      "BN stats randomized; num_batches_tracked is a 0-d int64 = 1234. The OrderedDict has a "
                      "_metadata attribute (BUILD with {'_metadata': OrderedDict(prefix -> {'version': n})}). "
                      "Opcodes: " + " ".join(opcodes(data_pkl(name))))


def legacy_stream_info(name):
    """Walk the magic-number stream: returns (pickle boundaries, storage keys, data offset)."""
    raw = open(path_of(name), "rb").read()
    f = io.BytesIO(raw)
    bounds = []
    for _ in range(5):
        start = f.tell()
        ops = list(pickletools.genops(f))
        bounds.append((start, f.tell()))
    main = raw[bounds[3][0]:bounds[3][1]]
    u, _ = replay(main)
    keys = pickle.loads(raw[bounds[4][0]:bounds[4][1]])
    return raw, bounds, u, keys


def check_legacy_layout(name):
    raw, bounds, u, keys = legacy_stream_info(name)
    assert raw[:15] == bytes.fromhex("80028a0a6cfc9c46f9206aa850192e"), raw[:15].hex()
    assert keys == sorted(keys)
    storages = {}
    for pid in u.persids:
        assert pid[0] == "storage" and len(pid) == 6 and pid[5] is None, pid
        storages[pid[2]] = (pid[4], STORAGE_ELEMENT_SIZE[pid[1].GLOBAL.split(".")[-1]])
    assert sorted(storages) == keys, (sorted(storages), keys)
    pos = bounds[4][1]
    for k in keys:
        (numel,) = struct.unpack_from("<q", raw, pos)
        pos += 8
        assert numel == storages[k][0], (k, numel, storages[k])
        pos += numel * storages[k][1]
    assert pos == len(raw), (pos, len(raw))
    return u, keys


def make_tiny_net_legacy():
    name = "tiny_net_legacy.pth"
    torch.save(SD, path_of(name), _use_new_zipfile_serialization=False)
    loaded = load(name)
    assert_same_dict(loaded, SD, name)
    u, keys = check_legacy_layout(name)
    expected_readable(name, "legacy", loaded,
                      "Same state dict as tiny_net.pth in the magic-number format "
                      "(_use_new_zipfile_serialization=False): pickles magic / 1001 / sys_info / main / sorted "
                      "storage-key list, then per key (string-sorted order) i64 LE element count + raw LE data, "
                      "unaligned. Persistent ids are 6-tuples ('storage', torch.XStorage, key, 'cpu', numel, None); "
                      f"keys are decimal memory addresses as strings ({len(keys)} storages). sys_info says "
                      "little_endian True, type_sizes short 2 int 4 long 4.")


def make_views_legacy(d):
    name = "views_legacy.pth"
    torch.save(d, path_of(name), _use_new_zipfile_serialization=False)
    loaded = load(name)
    check_views_loaded(loaded, d, name)
    u, keys = check_legacy_layout(name)
    expected_readable(name, "legacy", loaded, views_notes(
        d, f"Legacy magic-number format: {len(keys)} storage blobs after the key list; view_metadata "
           "(6th persistent-id field) is always None when written by modern torch."))


# ----------------------------------------------------------------------------- 5. TAR format

TAR_MTIME = 1487000000  # Feb 2017, when this format was current


def write_tar_checkpoint(path, sd):
    """Write `sd` in the pre-0.1.10 TAR layout, as torch 0.1.x's _save did:
    members (in this order) sys_info, pickle, tensors, storages; all pickles protocol 2.
    Tensor and storage ids are ints (old torch used the objects' _cdata pointers); the main pickle
    references a tensor by the persistent id str(tensor_id). Storages here deliberately share:
      S_CONV  FloatStorage 108: 0.weight
      S_BN    FloatStorage 16 : 1.weight (offset 0), 1.bias (offset 4),
              view V_MEAN = S_BN[8:12]  -> 1.running_mean (offset 0 in the view)
              view V_VAR  = S_BN[10:16] -> 1.running_var  (offset 2 in the view)
      S_NBT   LongStorage 1   : 1.num_batches_tracked (ndim 0)
      S_FC    FloatStorage 12 : 5.fc.weight stored transposed (shape [3,4], stride [1,3])
      S_HEAD  FloatStorage 6  : 5.fc.bias (offset 0), 5.scale (offset 3)
    """
    P = 2
    S_CONV, S_BN, S_NBT, S_FC, S_HEAD = 94000000001000, 94000000002000, 94000000003000, 94000000004000, 94000000005000
    V_MEAN, V_VAR = 94000000002100, 94000000002200
    bn_all = torch.cat([sd["1.weight"], sd["1.bias"], sd["1.running_mean"], sd["1.running_var"]])
    storages = [  # (key, location, storage class, raw little-endian bytes, numel)
        (S_CONV, "cpu", torch.FloatStorage, sd["0.weight"].contiguous()),
        (S_BN, "cpu", torch.FloatStorage, bn_all),
        (S_NBT, "cpu", torch.LongStorage, sd["1.num_batches_tracked"].reshape(1)),
        (S_FC, "cpu", torch.FloatStorage, sd["5.fc.weight"].t().contiguous()),
        (S_HEAD, "cpu", torch.FloatStorage, torch.cat([sd["5.fc.bias"], sd["5.scale"]])),
    ]
    views = [(V_MEAN, S_BN, 8, 4), (V_VAR, S_BN, 10, 6)]  # (target, root, offset, numel) in elements
    tensors = [  # (tensor id, key, storage id, tensor class, sizes, strides, storage offset)
        (94100000000001, "0.weight", S_CONV, torch.FloatTensor, [4, 3, 3, 3], [27, 9, 3, 1], 0),
        (94100000000002, "1.weight", S_BN, torch.FloatTensor, [4], [1], 0),
        (94100000000003, "1.bias", S_BN, torch.FloatTensor, [4], [1], 4),
        (94100000000004, "1.running_mean", V_MEAN, torch.FloatTensor, [4], [1], 0),
        (94100000000005, "1.running_var", V_VAR, torch.FloatTensor, [4], [1], 2),
        (94100000000006, "1.num_batches_tracked", S_NBT, torch.LongTensor, [], [], 0),
        (94100000000009, "5.scale", S_HEAD, torch.FloatTensor, [3], [1], 3),
        (94100000000007, "5.fc.weight", S_FC, torch.FloatTensor, [3, 4], [1, 3], 0),
        (94100000000008, "5.fc.bias", S_HEAD, torch.FloatTensor, [3], [1], 0),
    ]
    assert [t[1] for t in tensors] == list(sd.keys())

    # torch 0.1.x wrote protocol_version 1000 here (the magic-number format later used 1001) and
    # long = struct.calcsize('=l') = 8 on 64-bit Linux
    sys_info = pickle.dumps({"protocol_version": 1000, "little_endian": True,
                             "type_sizes": {"short": 2, "int": 4, "long": 8}}, protocol=P)

    # main pickle: a plain OrderedDict (no _metadata in the 0.1.x era) whose values are
    # persistent ids str(tensor_id)
    tensor_pid = {}
    main_obj = collections.OrderedDict()
    for tid, key, *_ in tensors:
        main_obj[key] = sd[key]
        tensor_pid[id(sd[key])] = str(tid)

    class TarPickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, torch.Tensor):
                return tensor_pid[id(obj)]
            return None

    buf = io.BytesIO()
    TarPickler(buf, protocol=P).dump(main_obj)
    main_pkl = buf.getvalue()

    tbuf = io.BytesIO()
    tbuf.write(pickle.dumps(len(tensors), protocol=P))
    for tid, key, sid, ttype, sizes, strides, offset in tensors:
        tbuf.write(pickle.dumps((tid, sid, ttype), protocol=P))
        tbuf.write(struct.pack("<i", len(sizes)))
        tbuf.write(b"\0\0\0\0")  # old torch wrote the int ndim with sizeof(long) = 8 bytes
        tbuf.write(struct.pack(f"<{len(sizes)}q", *sizes))
        tbuf.write(struct.pack(f"<{len(strides)}q", *strides))
        tbuf.write(struct.pack("<q", offset))

    sbuf = io.BytesIO()
    sbuf.write(pickle.dumps(len(storages), protocol=P))
    for key, loc, stype, t in storages:
        sbuf.write(pickle.dumps((key, loc, stype), protocol=P))
        sbuf.write(struct.pack("<q", t.numel()))  # element count, not bytes
        sbuf.write(tensor_bytes(t))
    sbuf.write(pickle.dumps(views, protocol=P))

    members = [("sys_info", sys_info), ("pickle", main_pkl), ("tensors", tbuf.getvalue()),
               ("storages", sbuf.getvalue())]
    with open(path, "wb") as raw, tarfile.open(fileobj=raw, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for mname, payload in members:
            ti = tarfile.TarInfo(mname)
            ti.size = len(payload)
            ti.mtime = TAR_MTIME
            ti.mode = 0o600
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            tar.addfile(ti, io.BytesIO(payload))
    return members


def make_tiny_net_tar():
    name = "tiny_net_tar.pth"
    members = write_tar_checkpoint(path_of(name), SD)
    raw = open(path_of(name), "rb").read()
    assert raw[257:263] == b"ustar\x00", raw[257:265]
    try:
        torch.load(path_of(name), weights_only=True)
        wo = "weights_only=True also loads it"
    except Exception as e:  # torch refuses tar files with weights_only=True
        assert "legacy .tar format" in str(e), e
        wo = "torch.load(weights_only=True) refuses it ('Cannot use weights_only=True with files saved in the legacy .tar format')"
    loaded = load(name, weights_only=False)
    assert_same_dict(loaded, SD, name)
    # the storage sharing written into the tar survives torch's loader
    assert loaded["1.bias"].data_ptr() == loaded["1.weight"].data_ptr() + 16
    assert loaded["1.running_var"].data_ptr() == loaded["1.weight"].data_ptr() + 48
    assert loaded["5.fc.weight"].stride() == (1, 3)
    sizes = ", ".join(f"{n} {len(p)} bytes" for n, p in members)
    expected_readable(name, "tar", loaded,
                      "Same state dict as tiny_net.pth in the pre-0.1.10 TAR format, written by hand (see "
                      "write_tar_checkpoint in make_fixtures.py). ustar archive (PAX_FORMAT writer, no pax headers "
                      "needed), members in order: " + sizes + ". sys_info = {protocol_version: 1000, little_endian: True, "
                      "type_sizes: {short: 2, int: 4, long: 8}} (torch reads but ignores it). Storages share: 1.weight/1.bias on one storage at "
                      "offsets 0/4; 1.running_mean and 1.running_var on storage VIEWS (views list entries "
                      "(target, root, offset, numel) = (V_MEAN, S_BN, 8, 4) and (V_VAR, S_BN, 10, 6)), running_var "
                      "at tensor offset 2 inside its view; 5.fc.weight stored transposed (stride [1,3]); 5.fc.bias/"
                      "5.scale share a storage at offsets 0/3; num_batches_tracked has ndim 0. Loaded with "
                      "weights_only=False; " + wo + ".")


# ----------------------------------------------------------------------------- 6. big-endian

def make_bigendian():
    name = "bigendian.pth"
    torch.manual_seed(6)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(2, 3)
    sd["f64"] = torch.tensor([1.0, -2.5, 1e300], dtype=torch.float64)
    sd["i64"] = torch.tensor([1, -2, 2**40 + 3], dtype=torch.int64)
    sd["i16"] = torch.tensor([1, -2, 300], dtype=torch.int16)
    sd["f16"] = torch.tensor([1.0, -0.5, 1000.0], dtype=torch.float16)
    sd["u8"] = torch.tensor([1, 2, 250], dtype=torch.uint8)
    sd["f32_view"] = sd["f32"][1]  # shares storage 0 with offset 3
    src = os.path.join(TMP, "bigendian.pth")
    torch.save(sd, src)
    with zipfile.ZipFile(src) as zf:
        prefix = zip_prefix(zf)
        pkl = zf.read(prefix + "/data.pkl")
        assert zf.read(prefix + "/byteorder") == b"little"
        u, _ = replay(pkl)
        elsize = {pid[2]: STORAGE_ELEMENT_SIZE[pid[1].GLOBAL.split(".")[-1]] for pid in u.persids}
        replace = {prefix + "/byteorder": b"big"}
        for key, es in elsize.items():
            rec = prefix + "/data/" + key
            data = zf.read(rec)
            swapped = b"".join(data[i:i + es][::-1] for i in range(0, len(data), es))
            replace[rec] = swapped
    rewrite_zip(src, path_of(name), replace)
    loaded = load(name)
    assert_same_dict(loaded, sd, name)
    expected_readable(name, "zip", loaded,
                      "Zip archive whose 'byteorder' record is b'big' and whose data/<key> records are byte-swapped "
                      "per element (element size from the storage class), made by rewriting a torch.save zip; "
                      "data.pkl unchanged. torch.load reads back the original values. 'f32_view' = f32[1] shares "
                      "storage with 'f32' (offset 3). Element sizes per storage key: " + json.dumps(elsize) +
                      ". Values here are the host (little-endian) bytes after swapping back.")


# ----------------------------------------------------------------------------- 7. many keys

def make_many_keys():
    name = "many_keys.pth"
    torch.manual_seed(7)
    f32 = torch.randn(64)
    i64 = torch.arange(-20, 44, dtype=torch.int64)
    f16 = torch.randn(32).to(torch.float16)
    u8 = torch.arange(0, 64, dtype=torch.uint8) * 4
    i16 = torch.arange(-1000, 1000, 180, dtype=torch.int16)  # 12 elements
    sd = collections.OrderedDict()
    for i in range(1500):
        k = f"p{i:04d}"
        r = i % 6
        o = (i * 7) % 20
        if i < 6:  # a few with their own storages, including bool and bf16
            sd[k] = [torch.tensor([i, -i], dtype=torch.int32), torch.tensor([True, i % 2 == 0]),
                     torch.tensor([i + 0.25], dtype=torch.bfloat16), torch.tensor(float(i)),
                     torch.full((1, 2), i, dtype=torch.int8), torch.tensor([i * 1.5], dtype=torch.float64)][i]
        elif i >= 1490:  # a storage class first seen late: its memo index > 255 -> LONG_BINGET
            sd[k] = i16[i - 1490:i - 1488]
        elif r == 0:
            sd[k] = f32[o:o + 1 + i % 4]
        elif r == 1:
            sd[k] = f32[o:o + 6].view(2, 3)
        elif r == 2:
            sd[k] = i64[o:o + 2]
        elif r == 3:
            sd[k] = f16[o % 12:o % 12 + 3]
        elif r == 4:
            sd[k] = u8[o]  # 0-d view
        else:
            sd[k] = f32[o:o + 4].view(2, 2).t()
    torch.save(sd, path_of(name))
    loaded = load(name)
    assert_same_dict(loaded, sd, name)
    pkl = data_pkl(name)
    ops = [op.name for op, _, _ in pickletools.genops(pkl)]
    n_setitems = ops.count("SETITEMS")
    # CPython's batching: ceil(1500/1000) SETITEMS on the top-level dict
    assert n_setitems == 2, n_setitems
    assert "LONG_BINPUT" in ops and "LONG_BINGET" in ops
    with zipfile.ZipFile(path_of(name)) as zf:
        n_records = len([n for n in zf.namelist() if "/data/" in n])
    expected_readable(name, "zip", loaded,
                      "OrderedDict with 1500 keys p0000..p1499 (no _metadata). CPython pickles dict items in "
                      "batches of 1000, so the top-level OrderedDict gets two MARK...SETITEMS groups (1000 + 500 "
                      "items) after GLOBAL collections.OrderedDict / EMPTY_TUPLE / REDUCE. More than 256 memo "
                      "entries, so LONG_BINPUT/LONG_BINGET appear. p0000-p0005 have their own storages (int32, "
                      "bool, bfloat16, 0-d float32, int8 [1,2], float64); all other keys are views (slices, 2-D "
                      "views, transposes, 0-d elements) of 4 shared storages (float32, int64, float16, uint8), "
                      "except p1490-p1499: views of an int16 storage whose torch.ShortStorage GLOBAL is first "
                      "seen at p1490, so later references to it use LONG_BINGET; "
                      f"{n_records} data records in total. Opcodes: " + " ".join(sorted(set(ops))))


# ----------------------------------------------------------------------------- 8. protocols

def make_protocols():
    for proto in (2, 4, 5):
        name = f"proto{proto}.pth"
        torch.save(SD, path_of(name), pickle_protocol=proto)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = load(name)
            wo = "torch.load(weights_only=True) reads it."
        except pickle.UnpicklingError as e:
            msg = [l for l in str(e).splitlines() if "Unsupported" in l]
            wo = ("torch.load(weights_only=True) REFUSES it (" + (msg[0] if msg else "error") +
                  ", i.e. FRAME 0x95 is not in torch's safe-loader opcode set); loaded with weights_only=False.")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = load(name, weights_only=False)
        assert_same_dict(loaded, SD, name)
        pkl = data_pkl(name)
        assert pickle_protocol_of(pkl) == proto
        ops = opcodes(pkl)
        if proto >= 4:
            for must in ("FRAME", "SHORT_BINUNICODE", "STACK_GLOBAL", "MEMOIZE"):
                assert must in ops, (name, must)
        n_frames = sum(1 for op, _, _ in pickletools.genops(pkl) if op.name == "FRAME")
        expected_readable(name, "zip", loaded,
                          f"tiny_net state dict saved with pickle_protocol={proto}. data.pkl starts PROTO {proto}; "
                          f"opcodes used: {' '.join(ops)}" +
                          (f". {n_frames} FRAME opcode(s) (8-byte LE length); globals come from "
                           "SHORT_BINUNICODE module + SHORT_BINUNICODE name + STACK_GLOBAL; memo via MEMOIZE "
                           "(implicit next index), read back with BINGET." if proto >= 4 else ".") + " " + wo)


# ----------------------------------------------------------------------------- 9/10. wrapped

def make_wrapped():
    name = "wrapped.pth"
    dp = nn.DataParallel(copy.deepcopy(MODEL))
    sd = dp.state_dict()
    assert all(k.startswith("module.") for k in sd)
    # optimizer state after one step, on a copy so MODEL's values are untouched
    m2 = copy.deepcopy(MODEL)
    m2.train()
    opt = torch.optim.SGD(m2.parameters(), lr=0.1, momentum=0.9)
    torch.manual_seed(9)
    out = m2(torch.randn(2, 3, 5, 5))
    out.sum().backward()
    opt.step()
    ckpt = {"epoch": 7, "state_dict": sd, "optimizer": opt.state_dict(),
            "args": argparse.Namespace(lr=0.1, arch="tiny", epochs=90),
            "best_acc1": torch.tensor(71.5)}
    torch.save(ckpt, path_of(name))
    torch.serialization.add_safe_globals([argparse.Namespace])
    loaded = load(name)
    assert_same_dict(loaded["state_dict"], sd, name)
    assert loaded["epoch"] == 7 and loaded["args"].arch == "tiny"
    assert_same(loaded["best_acc1"], ckpt["best_acc1"], name)
    mom = [s["momentum_buffer"] for s in loaded["optimizer"]["state"].values()]
    assert len(mom) == len(list(MODEL.parameters())) and all(isinstance(t, torch.Tensor) for t in mom)
    u, _ = replay(data_pkl(name))
    expected_readable(name, "zip", loaded["state_dict"],
                      "Training checkpoint dict {epoch: 7, state_dict: DataParallel(tiny_net).state_dict() "
                      "('module.' on every key and in _metadata prefixes), optimizer: SGD(momentum=0.9) state "
                      "dict after one step (state: {param index: {'momentum_buffer': tensor}}, param_groups: list "
                      "of dicts), args: argparse.Namespace(lr=0.1, arch='tiny', epochs=90) (pickled as GLOBAL "
                      "argparse.Namespace, EMPTY_TUPLE, NEWOBJ, then BUILD with its __dict__), best_acc1: 0-d "
                      "float32 tensor 71.5}. Globals: " + ", ".join(sorted(set(u.globals))),
                      state_dict_path="state_dict", stripped_prefix="module.",
                      metadata_keys=["epoch", "optimizer", "args", "best_acc1"])


def make_compiled_prefix():
    name = "compiled_prefix.pth"
    try:
        sd = torch.compile(copy.deepcopy(MODEL)).state_dict()  # a copy: compile() marks the module
        how = "torch.compile(model).state_dict() (not run, so nothing was compiled)"
    except Exception:
        sd = clone_sd(SD)
        how = "manual prefixing"
    assert list(sd.keys()) == ["_orig_mod." + k for k in TINY_KEYS], list(sd.keys())
    torch.save(sd, path_of(name))
    loaded = load(name)
    assert_same_dict(loaded, sd, name)
    expected_readable(name, "zip", loaded,
                      "tiny_net state dict with '_orig_mod.' on every key, from " + how + ".",
                      stripped_prefix="_orig_mod.")


# ----------------------------------------------------------------------------- 11. pickled module

def make_pickled_module():
    name = "pickled_module.pth"
    torch.save(MODEL, path_of(name))
    m = load(name, weights_only=False)
    assert type(m) is nn.Sequential and type(m[5]) is Head
    sd = m.state_dict()
    assert_same_dict(sd, SD, name)
    assert_same(m[5].scratch, MODEL[5].scratch, name + " scratch")
    u, _ = replay(data_pkl(name))
    expected_readable(name, "zip", sd,
                      "torch.save(model) of the whole nn.Sequential (with custom class __main__.Head, so only "
                      "loadable where that class exists). Expected tensors = model.state_dict(): every module's "
                      "_parameters then persistent _buffers, recursively through _modules with dotted prefixes; "
                      "Head's non-persistent buffer 'scratch' (in _buffers but named in _non_persistent_buffers_set) "
                      "is NOT included. Each module pickles as GLOBAL <class>, EMPTY_TUPLE, NEWOBJ, then BUILD with "
                      "its __dict__ (training, _parameters, _buffers, _non_persistent_buffers_set, _modules, hook "
                      "dicts, plus layer attributes); parameters are torch._utils._rebuild_parameter(tensor, "
                      "requires_grad, OrderedDict()). Globals: " + ", ".join(sorted(set(u.globals))))


# ----------------------------------------------------------------------------- 12. TorchScript

def make_scripted():
    name = "scripted.pt"
    scripted = torch.jit.script(MODEL)
    torch.jit.save(scripted, path_of(name))
    m = torch.jit.load(path_of(name), map_location="cpu")
    sd = m.state_dict()
    # TorchScript does not keep the persistent=False flag: the loaded module's state_dict also
    # contains Head's non-persistent buffer '5.scratch' (right after '5.scale').
    ref = collections.OrderedDict()
    for k, v in SD.items():
        ref[k] = v
        if k == "5.scale":
            ref["5.scratch"] = MODEL[5].scratch
    assert_same_dict(sd, ref, name)
    with zipfile.ZipFile(path_of(name)) as zf:
        prefix = zip_prefix(zf)
        names = [n[len(prefix) + 1:] for n in zf.namelist()]
        pkl = zf.read(prefix + "/data.pkl")
    u, _ = replay(pkl)
    expected_readable(name, "torchscript", sd,
                      "torch.jit.save(torch.jit.script(model)). Expected = torch.jit.load(path).state_dict(), which "
                      "(unlike tiny_net) INCLUDES the non-persistent buffer '5.scratch' = [7, 8]: TorchScript "
                      "drops the persistent=False flag. Zip "
                      f"entries (under prefix '{prefix}/'): " + ", ".join(names) + ". data.pkl is the module tree: "
                      "each module is GLOBAL __torch__.<qualified class>, EMPTY_TUPLE, NEWOBJ, BUILD with a dict of "
                      "its attributes (submodules, parameters and buffers as tensors, plus 'training'); tensors are "
                      "torch._utils._rebuild_tensor_v2 with persistent ids ('storage', torch.XStorage, key, 'cpu', "
                      "numel) pointing at data/<key>. Globals: " + ", ".join(sorted(set(u.globals))))


# ----------------------------------------------------------------------------- 13. safetensors

def make_safetensors():
    name = "tiny.safetensors"
    torch.manual_seed(13)
    tensors = collections.OrderedDict()
    tensors["weight"] = torch.randn(3, 2)
    tensors["bias"] = torch.tensor([0.5, -0.5], dtype=torch.float16)
    tensors["step"] = torch.tensor(42, dtype=torch.int64)
    tensors["mask"] = torch.tensor([True, False, True])
    st_save_file(tensors, path_of(name), metadata={"format": "pt", "note": "zoo fixture"})
    raw = open(path_of(name), "rb").read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n], object_pairs_hook=collections.OrderedDict)
    header_keys = [k for k in header if k != "__metadata__"]
    loaded = st_load_file(path_of(name))
    for k in tensors:
        assert_same(loaded[k], tensors[k], name + k)
    # header order (as written in the JSON text)
    ordered = collections.OrderedDict((k, loaded[k]) for k in header_keys)
    by_offset = sorted(header_keys, key=lambda k: header[k]["data_offsets"][0])
    expected_readable(name, "safetensors", ordered,
                      "safetensors.torch.save_file with metadata {'format': 'pt', 'note': 'zoo fixture'}. Tensors "
                      "listed in the order their names appear in the header JSON (" + ", ".join(header_keys) + "); "
                      "data section order by offset is " + ", ".join(by_offset) + f". Header length {n} "
                      "(padded with spaces to a multiple of 8). 'step' is 0-d.")


# ----------------------------------------------------------------------------- 14. hostile files

def touch_cmd(name):
    return f"touch /tmp/zoo-pwned-{os.path.splitext(name)[0]}"


def verify_hostile(name, pkl, symbol, arg_check):
    """Never executes: replays with inert stubs and checks the dangerous call is really there."""
    ops = list(pickletools.genops(pkl))
    pickletools.dis(pkl, out=io.StringIO())  # well-formed
    u, obj = replay(pkl)
    assert symbol in u.globals, (name, u.globals)
    calls = find_calls(obj, symbol)
    assert calls, (name, symbol)
    assert any(arg_check(c.args) for c in calls), (name, [c.args for c in calls])
    opnames = [op.name for op, _, _ in ops]
    return u, opnames


def hostile_notes(u, opnames, extra):
    return (extra + " Globals requested, in order: " + ", ".join(u.globals) +
            ". Opcodes: " + " ".join(sorted(set(opnames))) + ". Never executed by the generator.")


def small_sd():
    return collections.OrderedDict([("w", torch.tensor([1.0, 2.0])), ("b", torch.tensor([0.5]))])


def make_hostile_reduce():
    name = "hostile_reduce.pth"
    cmd = touch_cmd(name)
    torch.save({"state_dict": small_sd(), "payload": make_payload(os.system, (cmd,))}, path_of(name))
    pkl = data_pkl(name)
    assert b"cposix\nsystem\n" in pkl
    u, ops = verify_hostile(name, pkl, "posix.system", lambda a: a == (cmd,))
    assert pickle_protocol_of(pkl) == 2 and "GLOBAL" in ops and "REDUCE" in ops
    expected_refused(name, "security", hostile_notes(
        u, ops, "torch.save of {'state_dict': ..., 'payload': X} where X reduces to os.system(cmd): protocol 2 "
                "GLOBAL 'posix system' (os.system's __module__ on Linux), BINUNICODE cmd, TUPLE1, REDUCE."),
        symbol="posix.system")


def make_hostile_stack_global():
    name = "hostile_stack_global.pth"
    cmd = touch_cmd(name).encode()

    def sbu(s):
        return b"\x8c" + bytes([len(s)]) + s  # SHORT_BINUNICODE
    MEMOIZE, POP, BINGET, STACK_GLOBAL, TUPLE1, REDUCE = b"\x94", b"0", b"h", b"\x93", b"\x85", b"R"
    body = (sbu(b"posix") + MEMOIZE + POP +             # memo 0 = 'posix'
            sbu(b"system") + MEMOIZE + POP +            # memo 1 = 'system'
            b"}" + MEMOIZE +                            # EMPTY_DICT, memo 2
            sbu(b"payload") + MEMOIZE +                 # memo 3
            BINGET + b"\x00" + BINGET + b"\x01" + STACK_GLOBAL + MEMOIZE +  # posix.system from memo
            sbu(cmd) + MEMOIZE + TUPLE1 + MEMOIZE + REDUCE + MEMOIZE +
            b"s" + b".")                                # SETITEM, STOP
    pkl = b"\x80\x04" + b"\x95" + struct.pack("<Q", len(body)) + body  # PROTO 4, FRAME len
    u, ops = verify_hostile(name, pkl, "posix.system", lambda a: a == (cmd.decode(),))
    assert "GLOBAL" not in ops and "STACK_GLOBAL" in ops
    src = os.path.join(TMP, name)
    torch.save({"w": torch.tensor([1.0])}, src)
    with zipfile.ZipFile(src) as zf:
        prefix = zip_prefix(zf)
    rewrite_zip(src, path_of(name), {prefix + "/data.pkl": pkl})
    assert data_pkl(name) == pkl
    expected_refused(name, "security", hostile_notes(
        u, ops, "Hand-written protocol 4 data.pkl (FRAME'd): SHORT_BINUNICODE 'posix' MEMOIZE POP, "
                "SHORT_BINUNICODE 'system' MEMOIZE POP, EMPTY_DICT, key 'payload', BINGET 0, BINGET 1, "
                "STACK_GLOBAL, cmd, TUPLE1, REDUCE, SETITEM. No GLOBAL opcode and the strings are not adjacent "
                "to STACK_GLOBAL: the symbol must be resolved through the memo. Zip taken from a torch.save "
                "archive (data/0 left in place, unreferenced)."),
        symbol="posix.system")


def make_hostile_eval():
    name = "hostile_eval.pth"
    code = f"__import__('os').system('{touch_cmd(name)}')"
    torch.save({"state_dict": small_sd(), "payload": make_payload(eval, (code,))}, path_of(name))
    pkl = data_pkl(name)
    ops = list(pickletools.genops(pkl))
    globs = [arg for op, arg, _ in ops if op.name == "GLOBAL"]
    sym = [g for g in globs if g.endswith(" eval")]
    assert len(sym) == 1, globs
    symbol = sym[0].replace(" ", ".")
    u, opnames = verify_hostile(name, pkl, symbol, lambda a: a == (code,))
    expected_refused(name, "security", hostile_notes(
        u, opnames, f"builtins.eval(code) via REDUCE; protocol 2 with fix_imports maps builtins to __builtin__, so "
                    f"the pickle really says GLOBAL '{sym[0]}'. A reader must refuse builtins/__builtin__ alike."),
        symbol=symbol)


def find_arg_tuple_end(pkl, start_after):
    """Position of the TUPLE opcode closing the MARK that opens the _rebuild_tensor_v2 args."""
    depth = 0
    started = False
    for op, arg, pos in pickletools.genops(pkl):
        if pos <= start_after:
            continue
        if op.name == "MARK":
            depth += 1
            started = True
        elif op.name in ("TUPLE",) and started:
            depth -= 1
            if depth == 0:
                return pos
    raise AssertionError("args TUPLE not found")


def make_hostile_in_tensor():
    name = "hostile_in_tensor.pth"
    cmd = touch_cmd(name)
    src = os.path.join(TMP, name)
    torch.save(small_sd(), src)
    with zipfile.ZipFile(src) as zf:
        prefix = zip_prefix(zf)
        pkl = zf.read(prefix + "/data.pkl")
    rebuild = [pos for op, arg, pos in pickletools.genops(pkl)
               if op.name == "GLOBAL" and arg == "torch._utils _rebuild_tensor_v2"]
    assert len(rebuild) == 1
    at = find_arg_tuple_end(pkl, rebuild[0])
    c = cmd.encode()
    evil = b"cposix\nsystem\n" + b"X" + struct.pack("<I", len(c)) + c + b"\x85" + b"R"  # GLOBAL, BINUNICODE, TUPLE1, REDUCE
    new = pkl[:at] + evil + pkl[at:]
    u, ops = verify_hostile(name, new, "posix.system", lambda a: a == (cmd,))
    # the REDUCE result is the 7th argument (metadata) of the first _rebuild_tensor_v2 call
    _, obj = replay(new)
    first = obj.items["w"]
    assert first.GLOBAL == "torch._utils._rebuild_tensor_v2" and len(first.args) == 7
    assert first.args[6].GLOBAL == "posix.system"
    rewrite_zip(src, path_of(name), {prefix + "/data.pkl": new})
    expected_refused(name, "security", hostile_notes(
        u, ops, "A normal torch.save state dict {'w': tensor, 'b': tensor} whose first _rebuild_tensor_v2 call "
                "gets a 7th (metadata) argument GLOBAL 'posix system' + BINUNICODE cmd + TUPLE1 + REDUCE, spliced "
                f"in just before the args' closing TUPLE at data.pkl offset {at}. Memo indices are unchanged."),
        symbol="posix.system")


def make_hostile_legacy():
    name = "hostile_legacy.pth"
    cmd = touch_cmd(name)
    torch.save({"state_dict": small_sd(), "payload": make_payload(os.system, (cmd,))}, path_of(name),
               _use_new_zipfile_serialization=False)
    raw, bounds, u0, keys = legacy_stream_info(name)
    main = raw[bounds[3][0]:bounds[3][1]]
    u, ops = verify_hostile(name, main, "posix.system", lambda a: a == (cmd,))
    expected_refused(name, "security", hostile_notes(
        u, ops, "Magic-number (legacy) file: magic, 1001, sys_info, then the main pickle "
                "{'state_dict': {...2 tensors}, 'payload': GLOBAL 'posix system' + cmd + REDUCE}, then the storage "
                f"key list and {len(keys)} storage blobs. The payload is in the 4th pickle of the stream."),
        symbol="posix.system")


def make_hostile_subprocess():
    # Python's pickler, at protocol 2 with fix_imports (what torch.save uses), writes
    # subprocess.Popen under its Python 2 name: GLOBAL 'commands Popen'. Python 3's unpickler maps
    # 'commands' back to 'subprocess', so it is just as dangerous. Keep that file as
    # hostile_subprocess_py2name.pth, and make hostile_subprocess.pth say 'subprocess Popen'
    # by rewriting the GLOBAL line (protocol 2 has no frames, memo indices are unaffected).
    argv_of = lambda n: ["touch", f"/tmp/zoo-pwned-{os.path.splitext(n)[0]}"]
    py2 = "hostile_subprocess_py2name.pth"
    torch.save({"state_dict": small_sd(), "payload": make_payload(subprocess.Popen, (argv_of(py2),))},
               path_of(py2))
    pkl = data_pkl(py2)
    assert pkl.count(b"ccommands\nPopen\n") == 1, pkl
    u, ops = verify_hostile(py2, pkl, "commands.Popen", lambda a: a == (argv_of(py2),))
    expected_refused(py2, "security", hostile_notes(
        u, ops, "subprocess.Popen(['touch', path]) via REDUCE, exactly as torch.save wrote it: protocol 2 with "
                "fix_imports names it by its Python 2 location, GLOBAL 'commands Popen' (Python 3 unpicklers map "
                "it back to subprocess.Popen)."),
        symbol="commands.Popen")

    name = "hostile_subprocess.pth"
    src = os.path.join(TMP, name)
    torch.save({"state_dict": small_sd(), "payload": make_payload(subprocess.Popen, (argv_of(name),))}, src)
    with zipfile.ZipFile(src) as zf:
        prefix = zip_prefix(zf)
        pkl = zf.read(prefix + "/data.pkl")
    assert pkl.count(b"ccommands\nPopen\n") == 1
    pkl = pkl.replace(b"ccommands\nPopen\n", b"csubprocess\nPopen\n")
    rewrite_zip(src, path_of(name), {prefix + "/data.pkl": pkl})
    u, ops = verify_hostile(name, data_pkl(name), "subprocess.Popen", lambda a: a == (argv_of(name),))
    expected_refused(name, "security", hostile_notes(
        u, ops, "subprocess.Popen(['touch', path]) via GLOBAL 'subprocess Popen' + REDUCE (a class called as a "
                "callable). torch.save wrote 'commands Popen' (see hostile_subprocess_py2name.pth); the GLOBAL line "
                "was rewritten to the Python 3 name."),
        symbol="subprocess.Popen")


# ----------------------------------------------------------------------------- 15. numpy scalar

def make_numpy_scalar():
    name = "numpy_scalar.pth"
    ckpt = {"state_dict": SD, "best": np.float64(0.5),
            "cfg": {"a": [1, 2.5, "x", None, True], "t": (1, 2)}}
    torch.save(ckpt, path_of(name))
    loaded = load(name, weights_only=False)  # numpy globals are not on torch's default allow-list
    assert_same_dict(loaded["state_dict"], SD, name)
    assert loaded["best"] == 0.5 and type(loaded["best"]) is np.float64
    assert loaded["cfg"] == ckpt["cfg"]
    u, _ = replay(data_pkl(name))
    non_torch = [g for g in dict.fromkeys(u.globals) if not g.startswith(("torch", "collections"))]
    assert "_codecs.encode" in non_torch, non_torch
    expected_readable(name, "zip", loaded["state_dict"],
                      "Checkpoint dict whose 'best' is numpy.float64(0.5) and whose 'cfg' is {'a': [1, 2.5, 'x', None, "
                      "True], 't': (1, 2)}. The numpy scalar pickles (protocol 2) as REDUCE of GLOBAL "
                      f"'{non_torch[0].replace('.scalar', ' scalar')}' (numpy 1.x writes numpy.core.multiarray) with "
                      "args (dtype, bytes): dtype = REDUCE of GLOBAL 'numpy dtype' on ('f8', False, True) followed by "
                      "BUILD with the state tuple (3, '<', None, None, None, -1, -1, 0); the 8 raw bytes are "
                      "REDUCE of GLOBAL '_codecs encode' on ('\\x00...\\xe0?' as BINUNICODE, 'latin1'), which is how "
                      "protocol 2 pickles bytes. Non-torch globals in order: " + ", ".join(non_torch) + ". The numpy "
                      "scalar must surface as an opaque object, not an error.",
                      state_dict_path="state_dict", metadata_keys=["best", "cfg"])


# ----------------------------------------------------------------------------- 16. junk

def make_junk():
    name = "not_a_checkpoint.bin"
    rng = random.Random(16)
    data = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(rng.getrandbits(8) for _ in range(300))
    with open(path_of(name), "wb") as f:
        f.write(data)
    expected_refused(name, "unsupported", "PNG signature followed by 300 pseudo-random bytes.",
                     reason="not a checkpoint")

    name = "truncated.pth"
    full = open(path_of("tiny_net.pth"), "rb").read()
    half = full[:len(full) // 2]
    with open(path_of(name), "wb") as f:
        f.write(half)
    try:
        torch.load(path_of(name), weights_only=True)
        raise AssertionError("torch loaded a truncated file")
    except AssertionError:
        raise
    except Exception as e:
        err = type(e).__name__ + ": " + str(e).splitlines()[0].split(". ")[0]
    expected_refused(name, "corrupt",
                     f"First {len(half)} of {len(full)} bytes of tiny_net.pth: starts with PK\\x03\\x04 but has no "
                     f"central directory / end-of-central-directory record. torch says: {err}",
                     reason="truncated zip archive")


# ----------------------------------------------------------------------------- limits

def rezip(source, target, compression, patch=None):
    """Copies a torch zip archive entry by entry with `compression`; `patch(name, info, data)`
    may rewrite an entry's header fields after it is written."""
    with zipfile.ZipFile(path_of(source)) as src, zipfile.ZipFile(path_of(target), "w") as dst:
        for info in src.infolist():
            out = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            out.compress_type = compression
            dst.writestr(out, src.read(info.filename))


def patch_sizes(name, entry, size):
    """Rewrites the uncompressed size of `entry` in its local header and the central directory."""
    data = bytearray(open(path_of(name), "rb").read())
    encoded = entry.encode()
    for signature, size_at, name_len_at, name_at in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        at = 0
        while (at := data.find(signature, at)) >= 0:
            n = struct.unpack_from("<H", data, at + name_len_at)[0]
            if data[at + name_at: at + name_at + n] == encoded:
                struct.pack_into("<I", data, at + size_at, size)
            at += 4
    open(path_of(name), "wb").write(bytes(data))


def make_limits():
    """Files that stay within every format rule but ask zoo for unbounded work or memory."""
    sd = {"w": torch.zeros(1).expand(1 << 29)}
    torch.save(sd, path_of("limit_expanded.pth"))
    expected_refused("limit_expanded.pth", "corrupt",
                     "One float32 storage of 1 element viewed with size (2^29,) stride (0,) (torch.zeros(1).expand). "
                     "torch.load returns the lazy view; materialising it takes 2 GiB, beyond zoo's 2^28-element "
                     "repeat limit per view.", reason="view repeats its storage beyond the limit")

    sd = {f"k{i}": torch.zeros(1).expand(1 << 27) for i in range(3)}
    torch.save(sd, path_of("limit_many_views.pth"))
    expected_refused("limit_many_views.pth", "corrupt",
                     "Three keys, each one float expanded to 2^27 elements: each within the per-view limit, "
                     "together beyond the 2^28 elements a state dict may repeat.",
                     reason="state dict repeats storages beyond the limit")

    rezip("tiny_net.pth", "limit_deflated.pth", zipfile.ZIP_DEFLATED)
    sd = torch.load(path_of("limit_deflated.pth"), weights_only=True)
    expected_readable("limit_deflated.pth", "zip", sd,
                      "tiny_net.pth re-zipped with deflate (as a user's zip tool might): torch reads it, so does zoo.")

    rezip("tiny_net.pth", "limit_bzip2.pth", zipfile.ZIP_BZIP2)
    expected_refused("limit_bzip2.pth", "unsupported",
                     "tiny_net.pth re-zipped with bzip2 (method 12): torch writes stored entries; zoo reads "
                     "stored and deflate and names the method it does not read.", reason="compression method")

    rezip("tiny_net.pth", "limit_stored_size_lie.pth", zipfile.ZIP_STORED)
    patch_sizes("limit_stored_size_lie.pth", "tiny_net/data/0", 0x7FFFFFF0)
    expected_refused("limit_stored_size_lie.pth", "corrupt",
                     "tiny_net.pth with data/0 (stored) claiming 2 GiB uncompressed in both headers: "
                     "a stored entry is exactly its compressed size, so zoo refuses before allocating.",
                     reason="stored entry size lie")

    rezip("tiny_net.pth", "limit_deflate_bomb.pth", zipfile.ZIP_DEFLATED)
    patch_sizes("limit_deflate_bomb.pth", "tiny_net/data/0", 0x7FFFFFF0)
    expected_refused("limit_deflate_bomb.pth", "corrupt",
                     "tiny_net.pth deflated, with data/0 claiming 2 GiB from a few hundred compressed bytes: "
                     "more than deflate's 1032:1 maximum, so zoo refuses before allocating.",
                     reason="decompression bomb")


# ----------------------------------------------------------------------------- main

def main():
    warnings.simplefilter("ignore", FutureWarning)
    # remove what the previous run made (and only that)
    if os.path.exists(path_of("index.json")):
        for f in json.load(open(path_of("index.json"))):
            for g in (f, os.path.splitext(f)[0] + ".expected.json"):
                if os.path.exists(path_of(g)):
                    os.remove(path_of(g))
    make_dtypes()
    views = make_views()
    make_tiny_net()
    make_tiny_net_legacy()
    make_views_legacy(views)
    make_tiny_net_tar()
    make_bigendian()
    make_many_keys()
    make_protocols()
    make_wrapped()
    make_compiled_prefix()
    make_pickled_module()
    make_scripted()
    make_safetensors()
    make_hostile_reduce()
    make_hostile_stack_global()
    make_hostile_eval()
    make_hostile_in_tensor()
    make_hostile_legacy()
    make_hostile_subprocess()
    make_numpy_scalar()
    make_junk()
    make_limits()
    with open(path_of("index.json"), "w") as f:
        json.dump(INDEX, f, indent=1)
        f.write("\n")
    shutil.rmtree(TMP, ignore_errors=True)
    total = sum(os.path.getsize(path_of(n)) for n in os.listdir(HERE))
    print(f"wrote {len(INDEX)} fixtures, {total} bytes total in {HERE}")


if __name__ == "__main__":
    main()
