#!/usr/bin/env python3
"""Interop checks for everyday CLI behaviour (issue 15) against real PyTorch and safetensors.

Invoked by Tests/Interop/run as

    python -u check_cli.py --zoo /path/to/zoo --workdir /tmp/scratch

Prints one line per check, "PASS <name> (info)" or "FAIL <name>: reason"; exits 1 if any failed.

Checks:
  1. A state dict with tied weights (two keys, one view) converted by `zoo convert`:
     safetensors.torch.load_file returns every key of torch.load's dict; with --dedup it
     returns one key fewer and the metadata's aliases name the other; `zoo inspect` lists
     every key either way.
  2. `zoo convert X -o EXISTING` exits 2 and leaves EXISTING alone; --force replaces it.
"""

import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # interop.py, even under python -P
import interop
from interop import CheckError, check, json_object, path, tail, zoo

ZOO, WORK = interop.setup(__doc__, timeout=120)

tied = path("tied.pth")
weight = torch.randn(4, 3)
torch.save({"embed.weight": weight, "head.weight": weight, "head.bias": torch.zeros(4)}, tied)
want = torch.load(tied, weights_only=True)


def convert(*extra):
    out = path("tied" + "".join(extra).replace("-", "_") + ".safetensors")
    if os.path.exists(out):
        os.remove(out)
    r, _ = zoo("convert", tied, "-o", out, "--json", *extra)
    if r.returncode != 0:
        raise CheckError(f"zoo convert {extra} exit {r.returncode}: {tail(r.stderr)}")
    return out, json_object(r.stdout)


def inspect_keys(out):
    r, _ = zoo("inspect", out, "--json")
    if r.returncode != 0:
        raise CheckError(f"zoo inspect exit {r.returncode}: {tail(r.stderr)}")
    doc = json_object(r.stdout)
    return sorted(t["key"] for t in doc["tensors"])


@check("convert_writes_every_key")
def _():
    out, doc = convert()
    got = load_file(out)
    if sorted(got) != sorted(want):
        raise CheckError(f"load_file keys {sorted(got)}, torch.load keys {sorted(want)}")
    for k in want:
        if not torch.equal(got[k], want[k]):
            raise CheckError(f"{k} differs")
    with safe_open(out, framework="pt") as f:
        if "aliases" in (f.metadata() or {}):
            raise CheckError(f"aliases in the metadata without --dedup: {f.metadata()['aliases']}")
    if inspect_keys(out) != sorted(want):
        raise CheckError("zoo inspect lists other keys")
    return f"{len(got)} keys, as torch.load"


@check("convert_dedup_stores_views_once")
def _():
    out, doc = convert("--dedup")
    got = load_file(out)
    with safe_open(out, framework="pt") as f:
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    if len(got) != len(want) - 1 or len(aliases) != 1:
        raise CheckError(f"load_file keys {sorted(got)}, aliases {aliases}")
    alias, stored = next(iter(aliases.items()))
    if not torch.equal(got[stored], want[alias]):
        raise CheckError(f"alias {alias} -> {stored} is not the same tensor")
    if inspect_keys(out) != sorted(want):
        raise CheckError(f"zoo inspect does not restore the alias: {inspect_keys(out)}")
    return f"{len(got)} stored + aliases {aliases}"


@check("convert_refuses_existing_output")
def _():
    existing = path("precious.safetensors")
    with open(existing, "w") as f:
        f.write("precious")
    r, _ = zoo("convert", tied, "-o", existing)
    if r.returncode != 2 or open(existing).read() != "precious":
        raise CheckError(f"exit {r.returncode}, file {'kept' if open(existing).read() == 'precious' else 'replaced'}")
    r, _ = zoo("convert", tied, "-o", existing, "--force")
    if r.returncode != 0 or sorted(load_file(existing)) != sorted(want):
        raise CheckError(f"--force: exit {r.returncode}: {tail(r.stderr)}")
    return "exit 2 without --force, replaced with it"


interop.finish("check_cli")
