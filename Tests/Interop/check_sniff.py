#!/usr/bin/env python3
"""Interop checks for format detection: safetensors is never mistaken for a pickle.

Invoked by Tests/Interop/run as

    python -u check_sniff.py --zoo /path/to/zoo --workdir /tmp/scratch

(--zoo / --workdir default to $ZOO_BIN / $ZOO_INTEROP_WORKDIR). Prints one line
per check on stdout, "PASS <name> (info)" or "FAIL <name>: reason", and exits 1
if any check failed. Uses torch/safetensors and the shared harness interop.py
beside this file; every file is generated here, on the fly (no fixture committed).

Contract under test: a safetensors file is an 8-byte little-endian header length N,
N bytes of JSON starting with '{', then the data. A header length of 128 mod 256
makes the file start with 0x80, the first byte of a pickle; zoo decides by the
whole structure (N <= size - 8 and '{' at byte 8), so every such file is read.

Checks:
  1. For every header length mod 256 (0..255): a file written by Python safetensors
     (the header re-padded with spaces where Python's own 8-byte alignment cannot
     reach that length; safetensors still reads it) is listed by
     `zoo inspect --json` as safetensors with the same keys, dtypes and shapes,
     and `zoo convert` turns it into a file safetensors reads back bit-exactly.
  2. An empty tensor of shape [0, 2^62, 2^62] (strides (1, 1, 1) and (1, 2^62, 1)) saved by
     torch.save (zip) is inspected and converted (0 elements; torch loads it).
  3. An empty tensor set_() a million elements past its 4-element storage (zip and legacy): torch
     loads it, and zoo inspects, materialises (`bench --load`) and converts it.
  4. A convert whose input is refused names the input file, never a temporary one.
"""

import json
import os
import struct
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # interop.py, even under python -P
import interop
from interop import CheckError, check, dtype_name, json_object, path, remove, tail, zoo

ZOO, WORK = interop.setup(__doc__, timeout=60, timeout_env="ZOO_SNIFF_TIMEOUT")

TENSORS = {
    "conv.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2),
    "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
    "fc.bias": torch.tensor([0.5, -1.25], dtype=torch.float16),
}


def with_header_length(data, residue):
    """The safetensors bytes `data` with its header re-padded to a length = residue mod 256."""
    (n,) = struct.unpack("<Q", data[:8])
    header = data[8:8 + n].rstrip(b" ")
    length = len(header) + (residue - len(header)) % 256
    return struct.pack("<Q", length) + header + b" " * (length - len(header)) + data[8 + n:]


def compare_inspect(name, file):
    r, _ = zoo("inspect", "--json", file)
    if r.returncode != 0:
        raise CheckError(f"{name}: inspect exit {r.returncode}: {tail(r.stderr)}")
    doc = json_object(r.stdout)
    if doc.get("format") != "safetensors":
        raise CheckError(f"{name}: format {doc.get('format')!r}")
    got = {t["key"]: (t["dtype"], t["shape"]) for t in doc.get("tensors", [])}
    want = {k: (dtype_name(v.dtype), list(v.shape)) for k, v in TENSORS.items()}
    if got != want:
        raise CheckError(f"{name}: inspect lists {got}, expected {want}")


def compare_convert(name, file):
    out = file + ".out.safetensors"
    remove(out)
    r, _ = zoo("convert", file, "-o", out)
    if r.returncode != 0:
        raise CheckError(f"{name}: convert exit {r.returncode}: {tail(r.stderr)}")
    back = load_file(out)
    for key, tensor in TENSORS.items():
        if key not in back or back[key].dtype != tensor.dtype or not torch.equal(back[key], tensor):
            raise CheckError(f"{name}: converted {key} differs")
    remove(out)


@check("sniff_every_header_length_mod_256")
def _():
    base = path("base.safetensors")
    save_file(TENSORS, base)
    with open(base, "rb") as f:
        data = f.read()
    (natural,) = struct.unpack("<Q", data[:8])
    starts_0x80 = 0
    for residue in range(256):
        name = f"len{residue:03d}.safetensors"
        file = path(name)
        with open(file, "wb") as f:
            f.write(with_header_length(data, residue))
        back = load_file(file)  # the reference reads it
        if set(back) != set(TENSORS):
            raise CheckError(f"{name}: safetensors itself reads {sorted(back)}")
        with open(file, "rb") as f:
            starts_0x80 += f.read(1) == b"\x80"
        compare_inspect(name, file)
        compare_convert(name, file)
        remove(file)
    if starts_0x80 != 1:
        raise CheckError(f"{starts_0x80} files start with 0x80, expected 1")
    return f"256 files inspected and converted (Python's own header: {natural} bytes); the one starting 0x80 too"


@check("empty_tensor_with_huge_dimensions")
def _():
    # torch.empty refuses the shape (its contiguous strides overflow); a view of an empty storage
    # takes it, and torch.save / torch.load round-trip it. Strides (1, 2^62, 1) made zoo's
    # contiguity test multiply 2^62 by 2^62.
    done = []
    for strides in [(1, 1, 1), (1, 2 ** 62, 1)]:
        file = path("empty.pth")
        empty = torch.empty(0).as_strided((0, 2 ** 62, 2 ** 62), strides)
        torch.save({"e": empty, "w": torch.ones(3)}, file)
        loaded = torch.load(file, weights_only=True)
        r, _ = zoo("inspect", "--json", file)
        if r.returncode != 0:
            raise CheckError(f"strides {strides}: inspect exit {r.returncode}: {tail(r.stderr)}")
        shapes = {t["key"]: t["shape"] for t in json_object(r.stdout)["tensors"]}
        if shapes.get("e") != list(loaded["e"].shape):
            raise CheckError(f"strides {strides}: inspect says {shapes.get('e')}, torch {list(loaded['e'].shape)}")
        out = path("empty.safetensors")
        r, _ = zoo("convert", file, "-o", out)
        if r.returncode != 0:
            raise CheckError(f"strides {strides}: convert exit {r.returncode}: {tail(r.stderr)}")
        with open(out, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        if header["e"]["shape"] != [0, 2 ** 62, 2 ** 62] or not torch.equal(load_file(out)["w"], torch.ones(3)):
            raise CheckError(f"strides {strides}: converted header {header['e']}")
        remove(file, out)
        done.append(str(strides))
    return f"strides {', '.join(done)}: inspected and converted, 0 elements"


@check("empty_tensor_with_offset_past_its_storage")
def _():
    # torch checks no offset of an empty tensor: set_() puts it a million elements past a
    # 4-element storage, and torch.save / torch.load keep it. A tar file of that kind, found by
    # fuzzing, made zoo's float32 read (`bench --load`, model loading) slice past the mapping.
    done = []
    storage = torch.zeros(4).untyped_storage()
    empty = torch.empty(0).set_(storage, 10 ** 6, (2051, 0), (1, 1))
    for name, legacy in [("zip", False), ("legacy", True)]:
        file = path(f"offset_{name}.pth")
        torch.save({"e": empty, "w": torch.ones(4)}, file, _use_new_zipfile_serialization=not legacy)
        loaded = torch.load(file, weights_only=True)
        assert loaded["e"].storage_offset() == 10 ** 6
        for args in [("inspect", "--json", file), ("bench", file, "--load", "--iterations", "1", "--json"),
                     ("convert", file, "-o", path("offset.safetensors"), "--force")]:
            r, _ = zoo(*args)
            if r.returncode != 0:
                raise CheckError(f"{name}: zoo {args[0]} exit {r.returncode}: {tail(r.stderr)}")
        converted = load_file(path("offset.safetensors"))
        if list(converted["e"].shape) != [2051, 0] or not torch.equal(converted["w"], torch.ones(4)):
            raise CheckError(f"{name}: converted {converted}")
        remove(file, path("offset.safetensors"))
        done.append(name)
    return f"{', '.join(done)}: inspected, materialised and converted"


@check("convert_errors_name_the_input")
def _():
    file = path("garbage.pth")
    with open(file, "wb") as f:
        f.write(b"\x80\x02}q\x00.")  # a plain pickle: refused
    r, _ = zoo("convert", file, "-o", path("garbage.safetensors"))
    if r.returncode != 1:
        raise CheckError(f"exit {r.returncode}, expected 1")
    if file not in r.stderr or ".partial" in r.stderr:
        raise CheckError(f"stderr does not name the input: {tail(r.stderr)}")
    leftovers = [n for n in os.listdir(WORK) if n.endswith(".partial") or n == "garbage.safetensors"]
    if leftovers:
        raise CheckError(f"left behind: {leftovers}")
    remove(file)
    return tail(r.stderr, 120)


interop.finish("check_sniff", elapsed=True)
