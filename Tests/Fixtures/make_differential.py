#!/usr/bin/env python3
"""Makes Tests/Fixtures/differential/: one small file per parser-differential class that
Tests/Interop/check_differential.py found, each with the answer zoo must give (torch's state
dict, or a refusal) in <name>.expected.json:

    {"keys": [...]}            zoo lists exactly these keys (torch's state dict, after unwrapping)
    {"refused": "<substring>"}  zoo refuses, naming the ambiguity

Regenerate with ~/.cache/zoo-dev/venv/bin/python Tests/Fixtures/make_differential.py (needs torch).
"""

import collections
import io
import json
import os
import struct
import warnings
import zipfile

import torch
import torch.nn as nn

warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "differential")
torch.manual_seed(0)


def write(name, data, expected):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    with open(os.path.join(OUT, name.rsplit(".", 1)[0] + ".expected.json"), "w") as f:
        json.dump(expected, f, ensure_ascii=False, sort_keys=True)
        f.write("\n")


def saved(obj, legacy=False):
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def rezip(data, extra=(), drop=()):
    """The archive's entries (minus `drop`), then `extra` (name, bytes), written by zipfile."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            if info.filename not in drop:
                dst.writestr(info.filename, src.read(info))
        for name, raw in extra:
            dst.writestr(name, raw)
    return out.getvalue()


class Bare:
    """torch.FloatTensor() then BUILD (storage, offset, size, stride): torch < 0.4's tensors."""

    def __init__(self, t):
        self.t = t

    def __reduce_ex__(self, protocol):
        return (torch.FloatTensor, (), (self.t.storage(), 1, (2,), (1,)))


class Repointed:
    """A rebuilt tensor that BUILD then points at another storage (torch: tensor.set_)."""

    def __init__(self, t, other):
        self.t, self.other = t, other

    def __reduce_ex__(self, protocol):
        func, args = self.t.__reduce_ex__(protocol)[:2]
        return (func, args, (self.other.storage(), 0, (1,), (1,)))


def main():
    os.makedirs(OUT, exist_ok=True)
    w = torch.arange(4.0)
    plain = saved({"w": w})
    other_pickle = zipfile.ZipFile(io.BytesIO(saved({"v": w}))).read("archive/data.pkl")
    write("dup_entry.pth", rezip(plain, extra=[("archive/data.pkl", other_pickle)]), {"refused": "appears twice"})
    write("second_prefix.pth", rezip(plain, extra=[("other/data.pkl", b"\x80\x02}q\x00.")]), {"refused": "outside the folder"})
    second = io.BytesIO()
    second.write(plain)
    with zipfile.ZipFile(io.BytesIO(saved({"v": w + 1}))) as src, zipfile.ZipFile(second, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    write("two_eocd.pth", second.getvalue(), {"refused": "end-of-central-directory records"})
    write("bare_build.pth", saved({"w": Bare(w), "b": w}), {"keys": ["w", "b"]})
    write("build_set.pth", saved({"w": Repointed(w, torch.ones(1))}), {"refused": "set_"})
    write("bytes_key.pth", saved({b"w": w, "epoch": 1}), {"refused": "not a string"})
    write("nfc_nfd.pth", saved({"caf\u00e9": w, "cafe\u0301": torch.ones(2)}), {"keys": ["caf\u00e9", "cafe\u0301"]})
    write("prefix_combining.pth", saved({"module.\u0301a": w, "module.b": w}), {"keys": ["\u0301a", "b"]})

    class Leaf(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self._context = torch.zeros(3)
            self.register_buffer("stat", torch.ones(2))

        def forward(self, x):
            return self.fc(x) + self._context.sum() + self.stat.sum()

    leaf = Leaf()
    leaf._state = torch.arange(2)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(leaf), buffer)
    write("script_plain_attributes.pt", buffer.getvalue(),
          {"keys": list(torch.jit.load(io.BytesIO(buffer.getvalue())).state_dict().keys())})


if __name__ == "__main__":
    main()
