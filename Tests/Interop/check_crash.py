#!/usr/bin/env python3
"""Crash safety: zoo pull / import / convert killed with SIGKILL at random moments, concurrent pulls, prune beside live work.

Invoked by Tests/Interop/run as

    python -u check_crash.py --zoo /path/to/zoo --workdir /tmp/scratch

(--zoo / --workdir default to $ZOO_BIN / $ZOO_INTEROP_WORKDIR). Prints one line
per invariant on stdout, "PASS <name> (info)" or "FAIL <name>: reason", then a
summary line, and exits 1 if any invariant was violated. Uses torch, torchvision,
safetensors, numpy, the standard library (http.server on 127.0.0.1 only) and the
shared harness interop.py beside this file.

Setup: a resnet18 with random weights (fixed seeds, ~47 MB, torch.save) served by
a slow HTTP server in a thread (64 KiB chunks with a short sleep between them,
Range requests honoured, every GET and every byte counted) under a user catalog
(ZOO_CATALOG) entry `crashnet` with the file's full SHA-256; a second and third
resnet18 (other seeds) for import and convert; the demo model imported as
`victim` into a template cache that pre-populated trials start from.

Trials (at least 50, ZOO_CRASH_TRIALS, seeded by ZOO_CRASH_SEED): `zoo pull
crashnet`, `zoo import NEW --name crashimp` and `zoo convert NEW -o OUT`, each
started on a fresh or a pre-populated ZOO_HOME (the victim cached; for import
also `crashimp` already cached with other weights, which the import replaces;
for convert OUT already holding an older conversion), killed with SIGKILL after
a delay spread over the command's whole duration (measured first by the
fastest of two or three un-killed runs of each). After each kill:

  (a) final_files_complete: every file under a final name is complete:
      index.json parses; each indexed original matches its SHA-256, each native
      file its native_sha256, opens with safetensors.safe_open and equals the
      source tensors, each reference loads; every non-temporary file in
      originals/, native/, downloads/ is complete (orphans too); a partial
      download is a prefix of the served file; OUT is absent or a complete
      safetensors file equal to one of its sources; `zoo verify` passes for
      every indexed model.
  (b) cached_model_kept: the victim (and, for replacing imports, crashimp in its
      old or new version) is still listed and `zoo verify` passes.
  (c) rerun_recovers: the same command, run again, exits 0 and leaves the
      expected result; a pull resumes (serves only the missing bytes, none when
      a complete copy was already in the cache); temporary files of dead
      processes are gone after the rerun (next to OUT) or after `zoo prune` (in
      the cache), and prune leaves every cached model intact.

Then:
  (d) concurrent_pull_one_download: two `zoo pull crashnet` started together on
      an empty ZOO_HOME: one full download served, both exit 0, verify passes.
  (e) prune_spares_live_work: `zoo prune` while a pull is downloading keeps the
      partial download (one full download, the pull succeeds); prune keeps
      temporary files whose owner is alive and removes those of dead processes.

Environment: ZOO_CRASH_SEED (default 1), ZOO_CRASH_TRIALS (default 54),
ZOO_CRASH_CHUNK_DELAY (seconds between 64 KiB chunks, default 0.0015),
ZOO_CRASH_VERBOSE=1 (one info line per trial).
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # interop.py, even under python -P
import interop
from interop import REPO, CheckError, FileServer, describe, info, path, sha256, tail

ZOO, WORK = interop.setup(__doc__, timeout=120, timeout_env="ZOO_ZOO_TIMEOUT")

SEED = int(os.environ.get("ZOO_CRASH_SEED", "1"))
TRIALS = max(3, int(os.environ.get("ZOO_CRASH_TRIALS", "54")))
CHUNK = 64 << 10
CHUNK_DELAY = float(os.environ.get("ZOO_CRASH_CHUNK_DELAY", "0.0015"))
VERBOSE = os.environ.get("ZOO_CRASH_VERBOSE") == "1"
T0 = time.perf_counter()

FAKE_HOME = path("home")
HOME = path("zoo_home")                  # the cache every trial runs on
OUT_DIR = path("convert_out")
OUT = os.path.join(OUT_DIR, "converted.safetensors")
SRC = path("src")
for d in (FAKE_HOME, OUT_DIR, SRC):
    os.makedirs(d, exist_ok=True)

ENV = interop.sandbox_env(HOME, FAKE_HOME)


def zoo(*argv, home=HOME):
    """Run zoo to completion with the sandboxed environment; returns the CompletedProcess."""
    return interop.zoo(*argv, env={**ENV, "ZOO_HOME": home}, cwd=WORK)[0]


def spawn(*argv, home=HOME):
    return subprocess.Popen([ZOO, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**ENV, "ZOO_HOME": home}, cwd=WORK, text=True, errors="replace")


def served(epoch):
    """(GET count, bytes sent, statuses) of the requests of one epoch."""
    recs = server.requests(epoch)
    return len(recs), sum(r["sent"] for r in recs), [r["status"] for r in recs]


def new_epoch():
    return server.new_epoch()


# --------------------------------------------------------------------------
# sources



_sha_memo = {}


def sha_cached(p):
    st = os.stat(p)
    key = (p, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _sha_memo:
        _sha_memo[key] = sha256(p)
    return _sha_memo[key]


def save_resnet18(seed, name):
    torch.manual_seed(seed)
    m = torchvision.models.resnet18()
    interop.randomize_bn(m)
    tmp = os.path.join(SRC, name + ".tmp")
    torch.save(m.state_dict(), tmp)
    return tmp


t = time.perf_counter()
serve_dir = path("served")
os.makedirs(serve_dir, exist_ok=True)
tmp = save_resnet18(SEED * 10 + 1, "crashnet")
PULL_SHA = sha256(tmp)
PULL_FILE = f"crashnet-{PULL_SHA[:8]}.pth"
PULL_SRC = os.path.join(serve_dir, PULL_FILE)
os.replace(tmp, PULL_SRC)
PULL_SIZE = os.path.getsize(PULL_SRC)
with open(PULL_SRC, "rb") as fh:
    PULL_BYTES = fh.read()

IMP_OLD = os.path.join(SRC, "crashimp_old.pth")
os.replace(save_resnet18(SEED * 10 + 2, "crashimp_old"), IMP_OLD)
IMP_NEW = os.path.join(SRC, "crashimp_new.pth")
os.replace(save_resnet18(SEED * 10 + 3, "crashimp_new"), IMP_NEW)
VICTIM_SRC = os.path.join(REPO, "demo", "digits_resnet.pth")

SOURCES = {}  # sha256 -> (label, state dict)
for label, p in (("crashnet", PULL_SRC), ("crashimp_old", IMP_OLD), ("crashimp_new", IMP_NEW), ("victim", VICTIM_SRC)):
    SOURCES[sha256(p)] = (label, torch.load(p, map_location="cpu", weights_only=True))
SHA_OF = {label: sha for sha, (label, _) in SOURCES.items()}
info(f"made 3 resnet18 checkpoints ({PULL_SIZE / 1e6:.0f} MB each) and loaded 4 sources, {time.perf_counter() - t:.1f} s")

server = FileServer(serve_dir, chunk=CHUNK, delay=CHUNK_DELAY)  # the slow HTTP server

CATALOG = path("user_catalog.json")
with open(CATALOG, "w") as fh:
    json.dump({"version": 1, "models": [
        {"name": "crashnet", "architecture": "resnet18", "file": PULL_FILE,
         "url": server.url(PULL_FILE), "sha256_prefix": PULL_SHA[:8], "sha256": PULL_SHA},
    ]}, fh, indent=1)
ENV["ZOO_CATALOG"] = CATALOG


# --------------------------------------------------------------------------
# invariants

TEMP_RE = re.compile(r"^\..+\.(\d+)\.[^.]+\.partial$")


def temp_owner(name):
    m = TEMP_RE.match(name)
    return int(m.group(1)) if m else None


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def dead_temps(folders):
    """Temporary files (AtomicFile's .name.<pid>.<random>.partial) of dead processes under folders."""
    found = []
    for top in folders:
        if not os.path.isdir(top):
            continue
        for dirpath, _, files in os.walk(top):
            for f in files:
                pid = temp_owner(f)
                if pid is not None and not alive(pid):
                    found.append(os.path.relpath(os.path.join(dirpath, f), WORK))
    return found


_st_memo = {}


def safetensors_source(p):
    """Label of the source a safetensors file equals, tensor for tensor; raises CheckError otherwise."""
    st = os.stat(p)
    key = (p, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _st_memo:
        return _st_memo[key]
    try:
        with safe_open(p, framework="pt") as f:
            meta = f.metadata() or {}
            src = SOURCES.get(meta.get("source_sha256", ""))
            if src is None:
                raise CheckError(f"{os.path.basename(p)}: source_sha256 {meta.get('source_sha256')!r} is none of the sources")
            label, sd = src
            keys = set(f.keys())
            aliases = json.loads(meta.get("aliases") or "{}")  # alias -> stored key (none in a resnet18)
            missing = [k for k in sd if k not in keys and k not in aliases]
            extra = [k for k in keys if k not in sd]
            if missing or extra:
                raise CheckError(f"{os.path.basename(p)}: keys differ from {label} (missing {missing[:3]}, extra {extra[:3]})")
            for k in keys:
                a, b = f.get_tensor(k), sd[k]
                if a.dtype != b.dtype or a.shape != b.shape or not torch.equal(a, b):
                    raise CheckError(f"{os.path.basename(p)}: tensor {k} differs from {label}")
    except CheckError:
        raise
    except Exception as e:
        raise CheckError(f"{os.path.relpath(p, WORK)} does not open as safetensors: {type(e).__name__}: {e}")
    _st_memo[key] = label
    return label


def load_index(home):
    p = os.path.join(home, "index.json")
    if not os.path.exists(p):
        return {}
    try:
        with open(p) as fh:
            doc = json.load(fh)
        return doc["models"]
    except Exception as e:
        raise CheckError(f"index.json does not parse: {type(e).__name__}: {e}")


def check_cache_files(home, problems):
    """(a) for the cache: index entries and every non-temporary file are complete. Returns the index."""
    try:
        models = load_index(home)
    except CheckError as e:
        problems.append(str(e))
        return {}
    for name, e in models.items():
        orig = os.path.join(home, e["original"]) if e.get("original") else None  # None: not kept (--no-original)
        if orig is None:
            pass
        elif not os.path.isfile(orig):
            problems.append(f"index entry {name}: original {e.get('original')} is missing")
        elif sha_cached(orig) != e.get("sha256"):
            problems.append(f"index entry {name}: original {e.get('original')} does not match its SHA-256")
        if e.get("native"):
            nat = os.path.join(home, e["native"])
            if not os.path.isfile(nat):
                problems.append(f"index entry {name}: native {e['native']} is missing")
            elif sha_cached(nat) != e.get("native_sha256"):
                problems.append(f"index entry {name}: native {e['native']} does not match native_sha256")
            else:
                try:
                    label = safetensors_source(nat)
                    if SHA_OF[label] != e.get("sha256"):
                        problems.append(f"index entry {name}: native holds {label}, original is {e.get('sha256', '')[:12]}")
                except CheckError as err:
                    problems.append(f"index entry {name}: {err}")
        if e.get("reference"):
            ref = os.path.join(home, e["reference"])
            try:
                np.load(ref)
            except Exception as err:
                problems.append(f"index entry {name}: reference {e['reference']}: {type(err).__name__}: {err}")
    # every file under a final name, referenced or not
    for dirpath, _, files in os.walk(home):
        rel_dir = os.path.relpath(dirpath, home)
        top = rel_dir.split(os.sep)[0]
        for f in files:
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, home)
            if temp_owner(f) is not None or top == "locks":
                continue
            if top == "originals":
                folder = os.path.basename(dirpath)
                if not sha_cached(p).startswith(folder):
                    problems.append(f"{rel} is not the file its folder names (SHA-256 {sha_cached(p)[:16]})")
            elif top == "native":
                try:
                    safetensors_source(p)
                except CheckError as err:
                    problems.append(str(err))
            elif top == "references":
                try:
                    np.load(p)
                except Exception as err:
                    problems.append(f"{rel}: {type(err).__name__}: {err}")
            elif top == "downloads":
                if f == PULL_FILE + ".partial":
                    with open(p, "rb") as fh:
                        data = fh.read()
                    if len(data) > PULL_SIZE or data != PULL_BYTES[:len(data)]:
                        problems.append(f"{rel} ({len(data)} bytes) is not a prefix of the served file")
                elif f == PULL_FILE:
                    if sha_cached(p) != PULL_SHA:
                        problems.append(f"{rel} is under its final name but incomplete or wrong")
                else:
                    problems.append(f"unexpected file {rel}")
            elif rel in ("index.json", "CACHEDIR.TAG"):
                continue
            else:
                problems.append(f"unexpected file {rel}")
    return models


def zoo_verify(name, home=HOME):
    r = zoo("verify", name, "--json", home=home)
    return r.returncode == 0, r


def listed(name, home=HOME):
    r = zoo("list", "--json", home=home)
    try:
        rows = json.loads(r.stdout)
    except ValueError:
        return False
    return any(row.get("name") == name and row.get("cached") for row in rows)


def check_out(allowed, problems, must_exist=False):
    """(a) for convert: OUT is absent or a complete conversion of one of the allowed sources."""
    if not os.path.exists(OUT):
        if must_exist:
            problems.append("the output does not exist")
        return None
    try:
        label = safetensors_source(OUT)
    except CheckError as e:
        problems.append(f"output: {e}")
        return None
    if label not in allowed:
        problems.append(f"output holds {label}, expected one of {allowed}")
    return label


# --------------------------------------------------------------------------
# templates

def reset_home(template):
    shutil.rmtree(HOME, ignore_errors=True)
    if template:
        shutil.copytree(template, HOME, symlinks=True)


TPL_VICTIM = path("tpl_victim")
TPL_REPLACE = path("tpl_replace")
OUT_OLD = path("old_conversion.safetensors")
t = time.perf_counter()
for home, imports in ((TPL_VICTIM, [(VICTIM_SRC, "victim")]),
                      (TPL_REPLACE, [(VICTIM_SRC, "victim"), (IMP_OLD, "crashimp")])):
    shutil.rmtree(home, ignore_errors=True)
    for src, name in imports:
        r = zoo("import", src, "--name", name, home=home)
        if r.returncode != 0:
            interop.failed("crash_setup", f"zoo import {src} --name {name}: {describe(r)}")
            interop.finish("check_crash")
r = zoo("convert", IMP_OLD, "-o", OUT_OLD)
if r.returncode != 0:
    interop.failed("crash_setup", f"zoo convert: {describe(r)}")
    interop.finish("check_crash")
info(f"template caches and the old conversion made, {time.perf_counter() - t:.1f} s")

# --------------------------------------------------------------------------
# the commands, and one un-killed run of each to measure it

COMMANDS = {
    "pull": ["pull", "crashnet", "--json"],
    "import": ["import", IMP_NEW, "--name", "crashimp", "--json"],
    "convert": ["convert", IMP_NEW, "-o", OUT, "--json", "--force"],
}
VARIANTS = {
    "pull": [("fresh", None), ("victim", TPL_VICTIM)],
    "import": [("fresh", None), ("victim", TPL_VICTIM), ("replace", TPL_REPLACE)],
    "convert": [("fresh", None), ("old-output", None)],
}


def prepare(cmd, variant):
    tpl = dict(VARIANTS[cmd])[variant]
    reset_home(tpl)
    for f in os.listdir(OUT_DIR):
        os.remove(os.path.join(OUT_DIR, f))
    if cmd == "convert" and variant == "old-output":
        shutil.copyfile(OUT_OLD, OUT)


DURATION = {}
for cmd, runs in (("pull", 2), ("import", 2), ("convert", 3)):
    for _ in range(runs):  # the fastest of a few: a busy machine only makes the kills land earlier
        prepare(cmd, "fresh")
        new_epoch()
        t = time.perf_counter()
        r = zoo(*COMMANDS[cmd])
        DURATION[cmd] = min(DURATION.get(cmd, 1e9), time.perf_counter() - t)
        if r.returncode != 0:
            interop.failed("crash_setup", f"un-killed `zoo {cmd}`: {describe(r)}")
            interop.finish("check_crash")
info("un-killed runs: " + ", ".join(f"{c} {d:.2f} s" for c, d in DURATION.items())
     + f" (pull: {PULL_SIZE / 1e6:.0f} MB at {CHUNK >> 10} KiB / {CHUNK_DELAY * 1000:.1f} ms)")

# --------------------------------------------------------------------------
# the trials

rng = random.Random(SEED)
share = {"pull": 0.4, "import": 0.35, "convert": 0.25}
counts = {"pull": round(TRIALS * share["pull"]), "import": round(TRIALS * share["import"])}
counts["convert"] = TRIALS - counts["pull"] - counts["import"]
plan = []
for cmd, n in counts.items():
    # stratified delays over [0, 1.05 x duration]: every part of the run gets kills
    delays = [DURATION[cmd] * 1.05 * (k + rng.random()) / n for k in range(n)]
    rng.shuffle(delays)
    variants = [VARIANTS[cmd][k % len(VARIANTS[cmd])][0] for k in range(n)]
    plan += [(cmd, v, d) for v, d in zip(variants, delays)]
rng.shuffle(plan)

violations = {"a": [], "b": [], "c": []}
stats = {c: {"trials": 0, "killed": 0, "finished": 0} for c in COMMANDS}
resume = {"partial": 0, "resumed": 0, "complete_local": 0, "reused": 0, "in_download": 0}
temps_after_kill = 0          # temporary files of the killed process, found right after the kill
leftover_after_rerun = 0
leftover_after_prune = 0


def violate(kind, trial, what):
    violations[kind].append(f"#{trial}: {what}")


def run_trial(i, cmd, variant, delay):
    global temps_after_kill, leftover_after_rerun, leftover_after_prune
    tag = f"{cmd}/{variant}@{delay:.2f}s"
    prepare(cmd, variant)
    epoch_kill = new_epoch()
    p = spawn(*COMMANDS[cmd])
    time.sleep(delay)
    killed = p.poll() is None
    if killed:
        p.send_signal(signal.SIGKILL)
    p.communicate()
    stats[cmd]["trials"] += 1
    stats[cmd]["killed" if killed else "finished"] += 1
    if not killed and p.returncode != 0:
        violate("c", tag, f"finished before the kill with exit {p.returncode}")

    # (a) and (b) right after the kill
    problems = []
    temps_after_kill += len(dead_temps([OUT_DIR] if cmd == "convert" else [HOME]))
    if cmd == "convert":
        allowed = ["crashimp_new"] + (["crashimp_old"] if variant == "old-output" else [])
        check_out(allowed, problems, must_exist=(variant == "old-output"))
    else:
        models = check_cache_files(HOME, problems)
        for name in models:
            ok, r = zoo_verify(name)
            if not ok:
                (violations["b"] if name in ("victim",) or (name == "crashimp" and variant == "replace") else violations["a"]) \
                    .append(f"#{tag}: zoo verify {name} after the kill: {describe(r)}")
        keep = ["victim"] if variant in ("victim", "replace") else []
        if variant == "replace":
            keep.append("crashimp")
            e = models.get("crashimp")
            if e and e.get("sha256") not in (SHA_OF["crashimp_old"], SHA_OF["crashimp_new"]):
                violate("b", tag, f"crashimp is indexed with SHA-256 {e.get('sha256', '')[:12]}, neither version")
        for name in keep:
            if name not in models:
                violate("b", tag, f"{name} is no longer in the index")
            elif not listed(name):
                violate("b", tag, f"{name} is not listed as cached")
    for prob in problems:
        violate("a", tag, prob)

    # what a pull could resume from
    partial = os.path.join(HOME, "downloads", PULL_FILE + ".partial")
    partial_bytes = os.path.getsize(partial) if cmd == "pull" and os.path.exists(partial) else 0
    complete_local = cmd == "pull" and (
        os.path.exists(os.path.join(HOME, "downloads", PULL_FILE))
        or os.path.exists(os.path.join(HOME, "originals", PULL_SHA[:16], PULL_FILE)))
    indexed_before = cmd == "pull" and "crashnet" in load_index_quiet()
    if cmd == "pull" and killed and partial_bytes > 0 and not complete_local:
        resume["in_download"] += 1

    # (c) the same command again
    epoch_rerun = new_epoch()
    r = zoo(*COMMANDS[cmd])
    if r.returncode != 0:
        violate("c", tag, f"rerun: {describe(r)}")
        return
    if cmd == "pull":
        gets, sent, statuses = served(epoch_rerun)
        if indexed_before:
            if sent > 0:
                violate("c", tag, f"rerun of a cached pull downloaded {sent} bytes")
        elif complete_local:
            resume["complete_local"] += 1
            if sent == 0:
                resume["reused"] += 1
            else:
                violate("c", tag, f"rerun downloaded {sent} bytes ({gets} GETs) although the complete file was in the cache")
        elif partial_bytes > 0:
            resume["partial"] += 1
            if sent <= PULL_SIZE - partial_bytes:
                resume["resumed"] += 1
            else:
                violate("c", tag, f"rerun served {sent} bytes though {partial_bytes} of {PULL_SIZE} were downloaded ({statuses})")
        elif sent > PULL_SIZE:
            violate("c", tag, f"rerun served {sent} bytes for a {PULL_SIZE}-byte file")
    problems = []
    if cmd == "convert":
        if check_out(["crashimp_new"], problems, must_exist=True) != "crashimp_new":
            problems.append("after the rerun the output is not the new conversion")
        left = dead_temps([OUT_DIR])
        if left:
            problems.append(f"temporary files of dead processes left beside the output after the rerun: {left}")
    else:
        target = "crashnet" if cmd == "pull" else "crashimp"
        models = check_cache_files(HOME, problems)
        want = PULL_SHA if cmd == "pull" else SHA_OF["crashimp_new"]
        if models.get(target, {}).get("sha256") != want:
            problems.append(f"after the rerun {target} is not the expected file")
        ok, rv = zoo_verify(target)
        if not ok:
            problems.append(f"zoo verify {target} after the rerun: {describe(rv)}")
        left = dead_temps([HOME])
        leftover_after_rerun += len(left)
        rp = zoo("prune", "--json")
        if rp.returncode != 0:
            problems.append(f"zoo prune: {describe(rp)}")
        left = dead_temps([HOME])
        leftover_after_prune += len(left)
        if left:
            problems.append(f"temporary files of dead processes left after the rerun and zoo prune: {left}")
        dl = os.listdir(os.path.join(HOME, "downloads"))
        if dl:
            problems.append(f"downloads/ not empty after the rerun and prune: {dl}")
        after = check_cache_files(HOME, problems)
        for name in [target] + (["victim"] if variant in ("victim", "replace") else []):
            if name not in after:
                problems.append(f"{name} missing from the index after prune")
        ok, rv = zoo_verify("victim" if "victim" in after else target)
        if not ok:
            problems.append(f"zoo verify after prune: {describe(rv)}")
    for prob in problems:
        violate("c", tag, prob)
    if VERBOSE:
        info(f"trial {i}: {tag} {'killed' if killed else 'finished'}"
             + (f", partial {partial_bytes}" if partial_bytes else "") + (", complete copy" if complete_local else ""))


def load_index_quiet():
    try:
        return load_index(HOME)
    except CheckError:
        return {}


t_trials = time.perf_counter()
for i, (cmd, variant, delay) in enumerate(plan):
    try:
        run_trial(i, cmd, variant, delay)
    except Exception as e:  # a harness problem is still a finding
        violate("c", f"{cmd}/{variant}@{delay:.2f}s", f"harness: {type(e).__name__}: {e}")
trial_secs = time.perf_counter() - t_trials

# --------------------------------------------------------------------------
# (d) two concurrent pulls of one model into one empty cache

conc_problems = []
conc_info = []
for k, stagger in enumerate((0.0, 0.05, 0.3)):
    reset_home(None)
    ep = new_epoch()
    a = spawn(*COMMANDS["pull"])
    time.sleep(stagger)
    b = spawn(*COMMANDS["pull"])
    try:
        outs = [x.communicate(timeout=120) for x in (a, b)]
    except subprocess.TimeoutExpired:
        a.kill(), b.kill()
        conc_problems.append(f"run {k}: timed out")
        continue
    gets, sent, statuses = served(ep)
    origins = []
    for x, (so, se) in zip((a, b), outs):
        if x.returncode != 0:
            conc_problems.append(f"run {k}: a pull exited {x.returncode}: {tail(se)}")
        else:
            try:
                origins.append(json.loads(so).get("origin"))
            except ValueError:
                conc_problems.append(f"run {k}: pull --json stdout is not JSON: {tail(so)}")
    if gets != 1 or sent != PULL_SIZE:
        conc_problems.append(f"run {k} (stagger {stagger}s): server saw {gets} GETs {statuses}, {sent} bytes (file {PULL_SIZE})")
    ok, rv = zoo_verify("crashnet")
    if not ok:
        conc_problems.append(f"run {k}: verify: {describe(rv)}")
    conc_info.append("/".join(sorted(str(o) for o in origins)))


# --------------------------------------------------------------------------
# (e) prune beside live work

prune_problems = []
prune_info = ""
reset_home(TPL_VICTIM)
ep = new_epoch()
puller = spawn(*COMMANDS["pull"])
partial = os.path.join(HOME, "downloads", PULL_FILE + ".partial")
deadline = time.time() + 30
while time.time() < deadline and (not os.path.exists(partial) or os.path.getsize(partial) < PULL_SIZE // 4):
    if puller.poll() is not None:
        break
    time.sleep(0.01)
at = os.path.getsize(partial) if os.path.exists(partial) else -1
rp = zoo("prune", "--json")
so, se = puller.communicate(timeout=120)
gets, sent, statuses = served(ep)
try:
    pruned = json.loads(rp.stdout).get("removed", []) if rp.returncode == 0 else None
except ValueError:
    pruned = None
if pruned is None:
    prune_problems.append(f"zoo prune during a pull: {describe(rp)}")
elif any(PULL_FILE in x for x in pruned):
    prune_problems.append(f"zoo prune removed the live download: {pruned}")
if puller.returncode != 0:
    prune_problems.append(f"the pull that prune ran beside failed: exit {puller.returncode}: {tail(se)}")
if gets != 1 or sent != PULL_SIZE:
    prune_problems.append(f"pull beside prune: server saw {gets} GETs {statuses}, {sent} bytes")
prune_info = f"prune at {at} of {PULL_SIZE} bytes"

# temporary files of a live process (this one) and of a dead one, in every cache folder
dead = subprocess.Popen(["true"])
dead.wait()
live_files, dead_files = [], []
for sub in ("native", "references", "originals/" + PULL_SHA[:16], "downloads", "."):
    folder = os.path.join(HOME, sub)
    os.makedirs(folder, exist_ok=True)
    for pid, bucket in ((os.getpid(), live_files), (dead.pid, dead_files)):
        f = os.path.join(folder, f".x.safetensors.{pid}.0123abcd.partial")
        with open(f, "wb") as fh:
            fh.write(b"half")
        bucket.append(f)
rp = zoo("prune", "--json")
if rp.returncode != 0:
    prune_problems.append(f"zoo prune: {describe(rp)}")
gone = [os.path.relpath(f, HOME) for f in live_files if not os.path.exists(f)]
kept = [os.path.relpath(f, HOME) for f in dead_files if os.path.exists(f)]
if gone:
    prune_problems.append(f"prune removed temporary files of a live process: {gone}")
if kept:
    prune_problems.append(f"prune kept temporary files of a dead process: {kept}")
for f in live_files:
    if os.path.exists(f):
        os.remove(f)
for name in ("victim", "crashnet"):
    ok, rv = zoo_verify(name)
    if not ok:
        prune_problems.append(f"verify {name} after the prunes: {describe(rv)}")


# --------------------------------------------------------------------------
# report

def report(name, items, extra):
    if items:
        interop.failed(name, f"{len(items)} violation(s): " + " | ".join(items[:6]) + (" ..." if len(items) > 6 else ""))
    else:
        interop.passed(name, extra)


kills = ", ".join(f"{c} {s['killed']}/{s['trials']}" for c, s in stats.items())
report("crash_final_files_complete", violations["a"], f"after {sum(s['killed'] for s in stats.values())} kills: {kills}")
report("crash_cached_model_kept", violations["b"], "victim and replaced crashimp intact after every kill")
report("crash_rerun_recovers", violations["c"],
       f"pull resumed {resume['resumed']}/{resume['partial']} partial downloads, reused {resume['reused']}/{resume['complete_local']} complete copies;"
       f" dead temporary files: {temps_after_kill} after the kills, {leftover_after_rerun} left after reruns (cache), {leftover_after_prune} after prune")
report("crash_concurrent_pull_one_download", conc_problems, f"3 runs, one GET each, origins {', '.join(conc_info)}")
report("crash_prune_spares_live_work", prune_problems, prune_info + "; live temporary files kept, dead ones removed")

n_viol = sum(len(v) for v in violations.values()) + len(conc_problems) + len(prune_problems)
per_cmd = ", ".join(f"{c} {s['trials']}" for c, s in stats.items())
print(f"crash summary: seed {SEED}, {len(plan)} trials ({per_cmd}), "
      f"killed {kills}, {sum(s['finished'] for s in stats.values())} finished before the kill, "
      f"{resume['in_download']} pull kills mid-download, resumed {resume['resumed']}/{resume['partial']}, "
      f"reused complete copies {resume['reused']}/{resume['complete_local']}, {temps_after_kill} dead temporary files after the kills, "
      f"{n_viol} violations (a {len(violations['a'])}, b {len(violations['b'])}, c {len(violations['c'])}, "
      f"d {len(conc_problems)}, e {len(prune_problems)}); trials {trial_secs:.0f} s, total {time.perf_counter() - T0:.0f} s",
      flush=True)
interop.finish("check_crash", elapsed=True)
