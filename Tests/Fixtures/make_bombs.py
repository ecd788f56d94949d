#!/usr/bin/env python3
"""Writes the bomb corpus: small files (< 1 MB each) that cost a careless reader gigabytes of
memory or minutes of CPU, one file per class of issue 12 item 4.

    python3 Tests/Fixtures/make_bombs.py [OUT_DIR]     (default: Tests/Fixtures/bombs)

Standard library only: every pickle is written opcode by opcode and every zip record by hand,
so each file is exactly the shape it names. `Tests/Interop/check_bombs.py` runs every zoo
command that reads a file on each of them in a child process and asserts < 2 GB peak RSS and
< 10 s. The files are deterministic; rerun this script to regenerate them.
"""

import os
import struct
import sys
import zlib

# --------------------------------------------------------------------------
# Pickle opcodes (protocol 2)

PROTO = b"\x80\x02"
STOP = b"."
POP = b"0"
MARK = b"("
EMPTY_DICT = b"}"
EMPTY_LIST = b"]"
EMPTY_TUPLE = b")"
SETITEM = b"s"
SETITEMS = b"u"
APPENDS = b"e"
TUPLE = b"t"
REDUCE = b"R"
NEWOBJ = b"\x81"
BUILD = b"b"
BINPERSID = b"Q"
NEWFALSE = b"\x89"


def s(text):
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def i(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def g(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def put(k):
    return b"r" + struct.pack("<I", k)


def get(k):
    return b"j" + struct.pack("<I", k)


def tup(*items):
    return MARK + b"".join(items) + TUPLE


def tensor(key, shape, stride, numel=None, storage="FloatStorage"):
    """torch._utils._rebuild_tensor_v2 of a storage record `key`."""
    if numel is None:
        numel = 1
        for d in shape:
            numel *= d
    pid = tup(s("storage"), g("torch", storage), s(key), s("cpu"), i(numel)) + BINPERSID
    return (g("torch._utils", "_rebuild_tensor_v2")
            + tup(pid, i(0), tup(*map(i, shape)), tup(*map(i, stride)), NEWFALSE,
                  g("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE)
            + REDUCE)


# --------------------------------------------------------------------------
# Zip, written by hand


def zip_file(records, extra_central=()):
    """records: [(name, data, deflate)]. extra_central: [(name, index of a record whose local
    header the entry points at)]: central-directory entries sharing another entry's body."""
    out = bytearray()
    central = []
    for name, data, deflate in records:
        body = zlib.compress(data, 9)[2:-4] if deflate else data
        method = 8 if deflate else 0
        crc = zlib.crc32(data)
        offset = len(out)
        nb = name.encode()
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(body), len(data), len(nb), 0)
        out += nb + body
        central.append((nb, method, crc, len(body), len(data), offset))
    for name, target in extra_central:
        _, method, crc, csize, usize, offset = central[target]
        central.append((name.encode(), method, crc, csize, usize, offset))
    start = len(out)
    for nb, method, crc, csize, usize, offset in central:
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, csize, usize,
                           len(nb), 0, 0, 0, 0, 0, offset)
        out += nb
    size = len(out) - start
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), size, start, 0)
    return bytes(out)


def checkpoint(pickle, storages=(), deflate_pickle=False, extra_central=()):
    records = [("archive/data.pkl", pickle, deflate_pickle), ("archive/version", b"3\n", False)]
    records += [("archive/data/" + key, data, deflate) for key, data, deflate in storages]
    return zip_file(records, extra_central)


ONE_FLOAT = [("0", struct.pack("<f", 1.0), False)]

# --------------------------------------------------------------------------
# The classes


def inflated_pickle():
    """A deflated data.pkl inflating to ~300 MB of empty lists (one object per pickle byte)."""
    chunk = MARK + EMPTY_LIST * 1_000_000 + APPENDS
    pickle = PROTO + EMPTY_LIST + chunk * 300 + STOP
    return checkpoint(pickle, deflate_pickle=True)


def inflated_within_limit():
    """A deflated data.pkl of 15 MB (under the inflated-size limit) of empty lists: the value budget."""
    chunk = MARK + EMPTY_LIST * 1_000_000 + APPENDS
    pickle = PROTO + EMPTY_LIST + chunk * 15 + STOP
    return checkpoint(pickle, deflate_pickle=True)


def module_walk():
    """A pickled nn.Module: a chain of 60 modules, each holding the next twice under two 8 KB
    names, the last a parameter. state_dict() would make 2^60 keys, each ~500 KB long."""
    depth, width = 60, 8192
    module = g("torch.nn.modules.module", "Module")
    body = PROTO + tensor("0", [1], [1]) + put(0)
    leaf = (module + EMPTY_TUPLE + NEWOBJ + EMPTY_DICT
            + s("_parameters") + g("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + s("w") + get(0) + SETITEM
            + SETITEM + BUILD)
    body += leaf + put(1)
    for level in range(depth):
        a, b = ("a%d" % level) * (width // 3), ("b%d" % level) * (width // 3)
        body += (module + EMPTY_TUPLE + NEWOBJ + EMPTY_DICT
                 + s("_modules") + g("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
                 + MARK + s(a) + get(level + 1) + s(b) + get(level + 1) + SETITEMS
                 + SETITEM + BUILD + put(level + 2))
    return checkpoint(body + STOP, ONE_FLOAT)


def shared_metadata():
    """Metadata beside a real tensor: nested lists of 64 references to one 256 KB string, one
    256 KB symbol and one 256 KB integer, each rendered once per reference by a naive summary."""
    big = "x" * (256 * 1024)
    body = PROTO + EMPTY_DICT + s("w") + tensor("0", [1], [1]) + SETITEM
    body += s("meta") + EMPTY_LIST + MARK + s(big) + put(0)
    body += g("mymodule", "y" * (256 * 1024)) + put(1)
    body += b"\x8b" + struct.pack("<i", 256 * 1024) + b"\x01" * (256 * 1024) + put(2)
    body += APPENDS + put(3) + POP
    for level in range(4, 12):
        body += EMPTY_LIST + MARK + get(level - 1) * 64 + APPENDS + put(level) + POP
    body += get(11) + SETITEM + STOP
    return checkpoint(body, ONE_FLOAT)


def dotted_symbol():
    """A symbol whose module is 250,000 dotted parts: checking every prefix by building it is
    quadratic (~60 GB of copying)."""
    module = ".".join(["a"] * 250_000)
    body = PROTO + EMPTY_DICT + s("w") + tensor("0", [1], [1]) + SETITEM
    body += s("s") + g(module, "b") + SETITEM + STOP
    return checkpoint(body, ONE_FLOAT)


def reinserted_key():
    """One 256 KB dict key set 100,000 times through the memo: hashed 100,000 times (25 GB)."""
    key = "k" * (256 * 1024)
    body = PROTO + EMPTY_DICT + s("w") + tensor("0", [1], [1]) + SETITEM
    body += s("m") + EMPTY_DICT + s(key) + put(0) + i(0) + SETITEM
    body += (b"h\x00" + i(0) + SETITEM) * 100_000
    body += SETITEM + STOP
    return checkpoint(body, ONE_FLOAT)


def overlapping_zip():
    """2,000 central-directory entries sharing one deflated 1 MB body: 2 GB of tensors from ~100 KB."""
    count, numel = 2000, 1 << 18
    body = PROTO + EMPTY_DICT + MARK
    for k in range(count):
        body += s("t%d" % k) + tensor(str(k), [numel], [1])
    body += SETITEMS + STOP
    storages = [("0", b"\0" * (4 * numel), True)]
    extra = [("archive/data/%d" % k, 2) for k in range(1, count)]
    return checkpoint(body, storages, extra_central=extra)


def repeated_views():
    """2,000 distinct views (offsets 0..1999) of one 192 KB storage: convert writes each, 390 MB."""
    count, numel = 2000, 48 * 1024
    body = PROTO + EMPTY_DICT + MARK
    for k in range(count):
        pid = tup(s("storage"), g("torch", "FloatStorage"), s("0"), s("cpu"), i(numel)) + BINPERSID
        body += s("v%d" % k) + (g("torch._utils", "_rebuild_tensor_v2")
                                + tup(pid, i(k), tup(i(numel - count)), tup(i(1)), NEWFALSE,
                                      g("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE) + REDUCE)
    body += SETITEMS + STOP
    return checkpoint(body, [("0", b"\1" * (4 * numel), False)])


def empty_huge():
    """An empty tensor of shape [0, 2^62, 2^62] (torch loads it): strides overflow a naive check."""
    body = PROTO + EMPTY_DICT
    body += s("e") + tensor("0", [0, 2**62, 2**62], [2**62, 2**62, 1], numel=0) + SETITEM
    body += s("f") + tensor("1", [2**62, 0, 2**62], [1, 2**62, 1], numel=0) + SETITEM
    return checkpoint(body + STOP, [("0", b"", False), ("1", b"", False)])


BOMBS = {
    "inflated_pickle": inflated_pickle,
    "inflated_within_limit": inflated_within_limit,
    "module_walk": module_walk,
    "shared_metadata": shared_metadata,
    "dotted_symbol": dotted_symbol,
    "reinserted_key": reinserted_key,
    "overlapping_zip": overlapping_zip,
    "repeated_views": repeated_views,
    "empty_huge": empty_huge,
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "bombs")
    os.makedirs(out, exist_ok=True)
    for name, make in BOMBS.items():
        data = make()
        assert len(data) < 1 << 20, f"{name}: {len(data)} bytes"
        with open(os.path.join(out, name + ".pth"), "wb") as f:
            f.write(data)
        print(f"{name}.pth {len(data)} bytes")


if __name__ == "__main__":
    main()
