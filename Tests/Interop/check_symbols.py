#!/usr/bin/env python3
"""Symbol verdicts against live torch: zoo's `foreign` symbols are exactly torch's unsafe globals.

Invoked by Tests/Interop/run as

    python -u check_symbols.py --zoo /path/to/zoo --workdir /tmp/scratch

For checkpoints written by the installed torch (plain state dicts of several dtypes, a pickled
nn.Module, Parameters, an argparse.Namespace in the metadata; torch.save drops backward hooks,
so symbols hidden in hooks are covered by SymbolVerdictTests instead), `zoo inspect --json` must list every symbol with a verdict, its `foreign` set
must equal `torch.serialization.get_unsafe_globals_in_checkpoint` (what
`torch.load(weights_only=True)` refuses), `allowed` ones must load with weights_only=True, and
a file with foreign symbols must make `inspect` say so on stderr and `verify --strict` fail.
"""

import argparse
import collections
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop  # noqa: E402
from interop import CheckError, check, json_object, path, tail, zoo  # noqa: E402

interop.setup(__doc__, timeout=120)
torch.manual_seed(0)


def symbols(file):
    r, _ = zoo("inspect", "--json", file)
    if r.returncode != 0:
        raise CheckError(f"inspect exit {r.returncode}: {tail(r.stderr)}")
    doc = json_object(r.stdout)
    if "symbols" not in doc:
        raise CheckError("no 'symbols' in inspect --json")
    for s in doc["symbols"]:
        for field in ("name", "offset", "verdict", "used_at"):
            if field not in s:
                raise CheckError(f"symbol {s} lacks {field}")
    return doc["symbols"], r.stderr


def compare(name, obj):
    file = path(name + ".pth")
    torch.save(obj, file)

    @check(f"symbols {name}: zoo's foreign set is torch's unsafe globals")
    def _():
        listed, stderr = symbols(file)
        foreign = {s["name"] for s in listed if s["verdict"] == "foreign"}
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(file))
        if foreign != unsafe:
            raise CheckError(f"zoo foreign {sorted(foreign)} vs torch unsafe {sorted(unsafe)}")
        if foreign and "foreign symbol" not in stderr:
            raise CheckError(f"inspect said nothing on stderr: {tail(stderr)}")
        if not foreign:
            torch.load(file, weights_only=True)  # every allowed symbol loads
        return f"{len(listed)} symbols, {len(foreign)} foreign"
    return file


compare("plain", {"w": torch.randn(3, 3), "i": torch.arange(4), "h": torch.randn(2).half(), "b": torch.ones(2, dtype=torch.bool)})
compare("parameters", collections.OrderedDict(p=nn.Parameter(torch.randn(2)), q=torch.randn(1, dtype=torch.float64)))
compare("module", nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()))
ns_file = compare("namespace", {"state_dict": {"w": torch.randn(2)}, "args": argparse.Namespace(lr=0.1)})


@check("symbols: used_at names where a foreign symbol sits")
def _():
    listed, _ = symbols(ns_file)
    where = {s["name"]: s["used_at"] for s in listed}
    if where.get("argparse.Namespace") != "args":
        raise CheckError(f"argparse.Namespace used_at {where.get('argparse.Namespace')!r}, expected 'args'")


@check("symbols: verify --strict fails on a foreign symbol")
def _():
    r, _ = zoo("verify", "--strict", ns_file)
    if r.returncode == 0:
        raise CheckError("verify --strict passed")


interop.finish("check_symbols")
