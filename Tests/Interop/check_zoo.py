#!/usr/bin/env python3
"""Interop checks for the model-zoo commands: import, verify, pull, list, info, rm, prune, demo.

Invoked by Tests/Interop/run as

    python -u check_zoo.py --zoo /path/to/zoo --workdir /tmp/scratch

(--zoo / --workdir default to $ZOO_BIN / $ZOO_INTEROP_WORKDIR). Prints one line
per check on stdout, "PASS <name> (info)" or "FAIL <name>: reason", and exits 1
if any check failed. Uses torch/torchvision/numpy, the standard library
(http.server for the download tests, on 127.0.0.1 only) and the shared harness
interop.py beside this file.

Every zoo invocation runs with ZOO_HOME and HOME (and TORCH_HOME, XDG_CACHE_HOME)
inside --workdir, ZOO_PYTHON set to this Python, and ZOO_CATALOG / ZOO_MIRROR /
ZOO_OFFLINE / proxies cleared, so no real cache is read or written and nothing
leaves the machine (the only URLs zoo is given are http://127.0.0.1:PORT/...;
the ZOO_OFFLINE check names a catalog model but must not download it).

Also: a copy of the zoo binary alone in another folder, run from / or beside planted
catalog.json files, lists the built-in catalog and nothing planted; `verify --against-torch`
imports no Python module planted in the working directory, beside the model, on PYTHONPATH,
in PYTHONUSERBASE's site-packages or as PYTHONSTARTUP, and still passes.

Contract under test (exit 0 ok, 1 a check failed or refused, 2 usage/input error):
    zoo import FILE [--name N] [--force] --json   -> cache entry JSON with verification.ok
    zoo verify NAME_OR_FILE [--input X --expect Y] [--against-torch] --json
                                                  -> {ok, verification: {ok, checks: [{name, ok, detail}]}}
    zoo pull MODEL [--catalog C] --json           -> {origin: download|cache|..., entry, ...}
    zoo list --json, zoo info NAME --json ({cached: {native, ...}}), zoo rm, zoo prune --json, zoo demo --json

Environment: ZOO_ZOO_TIMEOUT (default 300) seconds per zoo invocation.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # interop.py, even under python -P
import interop
from interop import REPO, CheckError, FileServer, build, check, describe, info, make_input, path, remove, sha256, tail

ZOO, WORK = interop.setup(__doc__, timeout=300, timeout_env="ZOO_ZOO_TIMEOUT")

ZOO_HOME = os.path.join(WORK, "zoo_home")
FAKE_HOME = os.path.join(WORK, "home")
os.makedirs(FAKE_HOME, exist_ok=True)

ENV = interop.sandbox_env(ZOO_HOME, FAKE_HOME, ZOO_PYTHON=sys.executable)


def zoo(*argv, env=None, cwd=None):
    """Run zoo in WORK (or cwd) with the sandboxed environment (plus env); returns the CompletedProcess."""
    return interop.zoo(*argv, env={**ENV, **(env or {})}, cwd=cwd or WORK)[0]


def zoo_json(*argv, code=0, env=None):
    """`zoo ... --json` expecting exit `code`; returns the parsed JSON (and the process)."""
    r = zoo(*argv, "--json", env=env)
    if r.returncode != code:
        raise CheckError(f"`zoo {' '.join(argv)} --json`: expected exit {code}, got {describe(r)}")
    try:
        doc = json.loads(r.stdout)
    except ValueError as e:
        raise CheckError(f"`zoo {' '.join(argv)} --json` stdout is not JSON ({e}): {tail(r.stdout)}")
    return doc, r


def save_named(model, stem, hashed):
    """torch.save the state dict; with hashed, rename to torchvision's stem-<sha[:8]>.pth."""
    tmp = path(stem + ".tmp")
    torch.save(model.state_dict(), tmp)
    sha = sha256(tmp)
    final = path(f"{stem}-{sha[:8]}.pth" if hashed else f"{stem}.pth")
    os.replace(tmp, final)
    info(f"saved {os.path.basename(final)} ({os.path.getsize(final) / 1e6:.0f} MB)")
    return final, sha


def checks_of(doc):
    v = doc.get("verification")
    if not isinstance(v, dict) or not isinstance(v.get("checks"), list):
        raise CheckError(f"JSON has no verification.checks: {tail(json.dumps(doc))}")
    return v, v["checks"]


def fmt_checks(checks):
    return "; ".join(f"{c.get('name')}={'ok' if c.get('ok') else 'FAIL'}" for c in checks)


def failing(checks):
    return [c for c in checks if not c.get("ok")]


def require_verified(doc, what):
    v, cs = checks_of(doc)
    if v.get("ok") is not True or failing(cs):
        raise CheckError(f"{what}: verification not ok: "
                         + "; ".join(f"{c.get('name')}: {c.get('detail')}" for c in failing(cs) or cs))
    if "ok" in doc and doc["ok"] is not True:
        raise CheckError(f"{what}: top-level ok is {doc['ok']!r} but verification.ok is true")
    return cs


def list_rows(*argv):
    doc, _ = zoo_json("list", *argv)
    if not isinstance(doc, list):
        raise CheckError(f"zoo list --json is {type(doc).__name__}, expected an array")
    return doc


def row_of(rows, name):
    hits = [r for r in rows if r.get("name") == name]
    return hits[0] if hits else None


def cached_entry(name):
    doc, _ = zoo_json("info", name)
    c = doc.get("cached") if isinstance(doc, dict) else None
    if not isinstance(c, dict):
        raise CheckError(f"`zoo info {name} --json` has no cached object: {tail(json.dumps(doc), 250)}")
    return c


# --------------------------------------------------------------------------
# 0. the catalog is built into zoo: a binary copied alone lists it from /, and a catalog.json in
# the working directory or beside (or above) the binary is never read


def catalog_names(file):
    with open(file) as fh:
        return [m["name"] for m in json.load(fh)["models"]]


@check("catalog_built_in")
def _():
    lonely = path("lonely", "bin")
    os.makedirs(lonely, exist_ok=True)
    copy = os.path.join(lonely, "zoo")
    shutil.copy2(ZOO, copy)
    planted = {"version": 1, "models": [{"name": "planted_model", "architecture": "resnet18", "file": "planted.pth",
                                         "url": "http://127.0.0.1:9/planted.pth", "sha256_prefix": "00000000"}]}
    for folder in (lonely, os.path.dirname(lonely), path("planted_cwd")):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "catalog.json"), "w") as fh:
            json.dump(planted, fh)
    want = catalog_names(os.path.join(REPO, "catalog.json"))
    try:
        for cwd in ("/", path("planted_cwd")):
            r = subprocess.run([copy, "list", "--json"], capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL, errors="replace", env=ENV, cwd=cwd)
            if r.returncode != 0:
                raise CheckError(f"{copy} list --json from {cwd}: {describe(r)}")
            names = [row.get("name") for row in json.loads(r.stdout)]
            if "planted_model" in names:
                raise CheckError(f"from {cwd}, zoo list shows the catalog.json planted beside the binary or in the working directory")
            missing = [n for n in want if n not in names]
            if missing:
                raise CheckError(f"from {cwd}, zoo list lacks {missing[:5]} ({len(missing)} of {len(want)} catalog models)")
    finally:
        shutil.rmtree(path("lonely"), ignore_errors=True)
        shutil.rmtree(path("planted_cwd"), ignore_errors=True)
    return f"{len(want)} models listed by a lone copy of zoo, from / and beside planted catalog.json files"


# --------------------------------------------------------------------------
# 1. import / verify --against-torch / list / info for resnet18 (hashed name) and vgg11_bn

def import_suite(label, ctor, seed, hashed, arch, stem=None):
    m = build(label, ctor, seed, announce=False)
    f, sha = save_named(m, stem or label, hashed)
    del m
    state = {"file": f, "sha": sha, "name": None}

    @check(f"import_{label}")
    def _():
        t0 = time.perf_counter()
        doc, _ = zoo_json("import", f)
        secs = time.perf_counter() - t0
        cs = require_verified(doc, "import")
        names = [c.get("name", "") for c in cs]
        for want in ("integrity", "structure", "forward"):
            if not any(n.startswith(want) for n in names):
                raise CheckError(f"no '{want}' check among {names}")
        if doc.get("architecture") != arch:
            raise CheckError(f"architecture {doc.get('architecture')!r}, expected {arch!r}")
        if doc.get("sha256") != sha:
            raise CheckError(f"sha256 {doc.get('sha256')!r}, file has {sha}")
        state["name"] = doc.get("name")
        expected_name = os.path.splitext(os.path.basename(f))[0]
        if state["name"] != expected_name:
            raise CheckError(f"cache name {state['name']!r}, expected the file's stem {expected_name!r}")
        return f"name {state['name']}, {fmt_checks(cs)}, {secs:.1f} s"

    name = state["name"] or os.path.splitext(os.path.basename(f))[0]

    @check(f"verify_{label}_against_torch")
    def _():
        t0 = time.perf_counter()
        doc, _ = zoo_json("verify", name, "--against-torch")
        secs = time.perf_counter() - t0
        cs = require_verified(doc, f"verify {name}")
        # The PyTorch comparison: a check named torch*, or one whose detail says it compared against PyTorch.
        torch_checks = [c for c in cs if str(c.get("name", "")).startswith("torch")
                        or "pytorch" in str(c.get("detail", "")).lower()]
        if not torch_checks:
            raise CheckError(f"no torch check among {fmt_checks(cs)}")
        if not all(c.get("ok") for c in torch_checks):
            raise CheckError(f"torch check failed: {torch_checks}")
        return f"{torch_checks[0].get('name')}: {tail(str(torch_checks[0].get('detail')), 140)}; {secs:.1f} s"

    @check(f"list_{label}_cached_verified")
    def _():
        rows = list_rows()
        row = row_of(rows, name)
        if row is None:
            raise CheckError(f"no row named {name!r} in zoo list --json ({len(rows)} rows)")
        if row.get("cached") is not True or row.get("verified") is not True:
            raise CheckError(f"row {row}")
        if row.get("architecture") != arch:
            raise CheckError(f"row architecture {row.get('architecture')!r}, expected {arch!r}")
        return f"cached_bytes {row.get('cached_bytes')}"

    @check(f"info_{label}")
    def _():
        c = cached_entry(name)
        problems = []
        if c.get("name") != name:
            problems.append(f"name {c.get('name')!r}")
        if c.get("sha256") != sha:
            problems.append(f"sha256 {c.get('sha256')!r} != {sha}")
        if c.get("architecture") != arch:
            problems.append(f"architecture {c.get('architecture')!r}")
        native = c.get("native")
        if not native or not os.path.isfile(os.path.join(ZOO_HOME, native)):
            problems.append(f"native {native!r} is not a file under ZOO_HOME")
        elif c.get("native_sha256") != sha256(os.path.join(ZOO_HOME, native)):
            problems.append("native_sha256 does not match the native file")
        if problems:
            raise CheckError(f"zoo info {name} --json: " + "; ".join(problems))
        r = zoo("info", name)
        if r.returncode != 0 or name not in r.stdout:
            raise CheckError(f"text `zoo info {name}`: {describe(r)}")
        return f"native {native}"

    return state, name


r18, R18 = import_suite("resnet18", torchvision.models.resnet18, 18, hashed=True, arch="resnet18")
# Random weights: the file's stem must not be a catalog name (checked below).
vgg, VGG = import_suite("vgg11_bn", torchvision.models.vgg11_bn, 111, hashed=False, arch="vgg11_bn", stem="my_vgg11_bn")


@check("import_refuses_a_catalog_name_for_other_weights")
def _():
    # A careless user's vgg11_bn.pth (not torchvision's file) must not be cached as vgg11_bn: code
    # asking for Zoo.pretrained("vgg11_bn") would get it.
    f = path("vgg11_bn.pth")
    shutil.copyfile(vgg["file"], f)
    r = zoo("import", f)
    remove(f)
    if r.returncode != 1 or "--name" not in r.stderr or "6002323d" not in r.stderr:
        raise CheckError(f"expected exit 1 naming the catalog hash and --name: {describe(r)}")
    rows = list_rows()
    if row_of(rows, "vgg11_bn") is not None and row_of(rows, "vgg11_bn").get("cached"):
        raise CheckError("vgg11_bn is cached after a refused import")
    return tail(r.stderr.strip(), 160)


@check("verify_against_torch_runs_no_user_code")
def _():
    # Python modules that leave a marker when imported, planted in the working directory, beside
    # the model, on PYTHONPATH, in the user site (PYTHONUSERBASE), and as PYTHONSTARTUP.
    markers = path("markers")
    os.makedirs(markers, exist_ok=True)
    plant = ("json", "numpy", "torch", "torchvision", "safetensors", "sitecustomize", "usercustomize")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    folders = {"cwd": path("hostile_cwd"), "model": path("hostile_model"), "pythonpath": path("hostile_pythonpath"),
               "usersite": path("hostile_userbase", "lib", version, "site-packages")}
    for where, folder in folders.items():
        os.makedirs(folder, exist_ok=True)
        for module in plant:
            with open(os.path.join(folder, module + ".py"), "w") as fh:
                fh.write(f"open({os.path.join(markers, where + '.' + module)!r}, 'w').close()\n")
    startup = path("hostile_startup.py")
    with open(startup, "w") as fh:
        fh.write(f"open({os.path.join(markers, 'startup')!r}, 'w').close()\n")
    model = os.path.join(folders["model"], "model.pth")
    shutil.copyfile(r18["file"], model)
    hostile = {"PYTHONPATH": folders["pythonpath"], "PYTHONSTARTUP": startup, "PYTHONUSERBASE": path("hostile_userbase")}
    details = []
    try:
        # the model by absolute path from a planted working directory, then by relative path from its own folder
        for cwd, arg in ((folders["cwd"], model), (folders["model"], "model.pth")):
            r = zoo("verify", arg, "--against-torch", "--json", env=hostile, cwd=cwd)
            ran = sorted(os.listdir(markers))
            if ran:
                raise CheckError(f"`zoo verify {arg} --against-torch` in {cwd} ran planted code: {ran}")
            if r.returncode != 0:
                raise CheckError(f"`zoo verify {arg} --against-torch` in {cwd}: {describe(r)}")
            cs = require_verified(json.loads(r.stdout), f"verify {arg}")
            torch_checks = [c for c in cs if str(c.get("name", "")).startswith("torch")]
            if not torch_checks or not all(c.get("ok") for c in torch_checks):
                raise CheckError(f"no passing torch check among {fmt_checks(cs)}")
            details.append(tail(str(torch_checks[0].get("detail")), 60))
    finally:
        for folder in list(folders.values())[:3] + [path("hostile_userbase"), markers]:
            shutil.rmtree(folder, ignore_errors=True)
        remove(startup)
    return f"{len(plant)} modules planted in 4 places, no marker; torch: {details[-1]}"


@check("verify_against_torch_unwraps_like_zoo")
def _():
    # A state dict under a wrapper key and a prefix zoo's reader knows: PyTorch must be handed the
    # same lists (StateDict.wrapperKeys, .strippablePrefixes), or it fails to load what zoo read.
    sd = torch.load(r18["file"], map_location="cpu", weights_only=True)
    wrapped = path("wrapped_teacher.pth")
    torch.save({"epoch": 3, "teacher": {"_orig_mod." + k: v for k, v in sd.items()}}, wrapped)
    try:
        doc, _ = zoo_json("verify", wrapped, "--against-torch")
    finally:
        remove(wrapped)
    cs = require_verified(doc, "verify a wrapped checkpoint")
    torch_checks = [c for c in cs if str(c.get("name", "")).startswith("torch")]
    if not torch_checks or not all(c.get("ok") for c in torch_checks):
        raise CheckError(f"no passing torch check among {fmt_checks(cs)}")
    return fmt_checks(cs)


@check("verify_vgg11_bn_file_against_torch")
def _():
    # The same comparison on the file itself (independent of cache-name lookup).
    doc, _ = zoo_json("verify", vgg["file"], "--against-torch")
    cs = require_verified(doc, "verify FILE")
    if not any("pytorch" in str(c.get("detail", "")).lower() or str(c.get("name", "")).startswith("torch") for c in cs):
        raise CheckError(f"no torch check among {fmt_checks(cs)}")
    return fmt_checks(cs)


# the VGG files are large; drop them now
remove(vgg["file"])
r = zoo("rm", VGG)
info(f"zoo rm {VGG}: exit {r.returncode}")

# --------------------------------------------------------------------------
# 2. wrong hash prefix in the file name

wrong = path("resnet18-00000000.pth" if not r18["sha"].startswith("00000000") else "resnet18-11111111.pth")
shutil.copyfile(r18["file"], wrong)


@check("import_wrong_hash_prefix_refused")
def _():
    r = zoo("import", wrong)
    if r.returncode != 1:
        raise CheckError(f"expected exit 1, got {describe(r)}")
    if "--force" not in r.stderr:
        raise CheckError(f"stderr does not mention --force: {tail(r.stderr)}")
    rows = list_rows()
    row = row_of(rows, os.path.splitext(os.path.basename(wrong))[0])
    if row is not None and row.get("cached"):
        raise CheckError(f"refused but cached anyway: {row}")
    return f"exit 1: {tail(r.stderr, 120)}"


@check("import_wrong_hash_prefix_force")
def _():
    doc, _ = zoo_json("import", wrong, "--force")
    cs = require_verified(doc, "import --force")
    stem = os.path.splitext(os.path.basename(wrong))[0]
    if doc.get("name") != stem:
        raise CheckError(f"name {doc.get('name')!r}, expected {stem!r}")
    rows = list_rows()
    row = row_of(rows, stem)
    if row is None or row.get("cached") is not True:
        raise CheckError(f"not listed as cached: {row}")
    return fmt_checks(cs)


remove(wrong)

# --------------------------------------------------------------------------
# 3. one flipped byte in the cached native file


@check("verify_detects_flipped_byte_in_native")
def _():
    c = cached_entry(R18)
    native = os.path.join(ZOO_HOME, c["native"])
    size = os.path.getsize(native)
    offset = size // 2
    with open(native, "r+b") as fh:
        fh.seek(offset)
        orig = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([orig[0] ^ 0x40]))
    try:
        r = zoo("verify", R18)
        if r.returncode != 1:
            raise CheckError(f"after flipping byte {offset} of {c['native']}: expected exit 1, got {describe(r)}")
        doc, _ = zoo_json("verify", R18, code=1)
        v, cs = checks_of(doc)
        bad = failing(cs)
        if v.get("ok") is not False or ("ok" in doc and doc["ok"] is not False):
            raise CheckError(f"verification.ok {v.get('ok')!r}, top-level ok {doc.get('ok')!r}")
        if not any(str(b.get("name", "")).startswith("integrity") for b in bad):
            raise CheckError(f"no failing integrity check: {fmt_checks(cs)}")
        which = [b.get("name") for b in bad]
    finally:
        with open(native, "r+b") as fh:
            fh.seek(offset)
            fh.write(orig)
    r = zoo("verify", R18)
    if r.returncode != 0:
        raise CheckError(f"after restoring the byte: expected exit 0, got {describe(r)}")
    row = row_of(list_rows(), R18)
    if not row or row.get("verified") is not True:
        raise CheckError(f"after restoring, zoo list shows {row}")
    return f"byte {offset} of {size}: failing {which}; restored: exit 0"


# --------------------------------------------------------------------------
# 4. verify FILE --input X --expect Y


@check("verify_file_input_expect")
def _():
    m = build("resnet18", torchvision.models.resnet18, 18, announce=False)  # same weights as r18["file"]
    x = make_input((2, 3, 64, 64), seed=4)
    with torch.no_grad():
        y = m(torch.from_numpy(x)).numpy()
    xp, yp, bp = path("probe_x.npy"), path("probe_y.npy"), path("probe_y_bad.npy")
    np.save(xp, x)
    np.save(yp, y)
    np.save(bp, (y * 1.01).astype(np.float32))
    doc, _ = zoo_json("verify", r18["file"], "--input", xp, "--expect", yp)
    cs = require_verified(doc, "verify FILE --input --expect")
    fwd = [c for c in cs if str(c.get("name", "")).startswith("forward")]
    if not fwd:
        raise CheckError(f"no forward check: {fmt_checks(cs)}")
    r = zoo("verify", r18["file"], "--input", xp, "--expect", bp)
    if r.returncode != 1:
        raise CheckError(f"expect perturbed by 1%: expected exit 1, got {describe(r)}")
    doc, _ = zoo_json("verify", r18["file"], "--input", xp, "--expect", bp, code=1)
    _, cs2 = checks_of(doc)
    bad = [c.get("name") for c in failing(cs2)]
    if not any(str(n).startswith("forward") for n in bad):
        raise CheckError(f"perturbed expect: failing checks {bad}, expected a forward check")
    remove(xp, yp, bp)
    return f"exact: {tail(str(fwd[0].get('detail')), 80)}; 1% off: failing {bad}"


# --------------------------------------------------------------------------
# 4b. two different checkpoints with the same file name, imported under two names:
# the second import must not replace the first one's cached original


@check("import_same_file_name_keeps_both")
def _():
    files = []
    for sub, seed in (("a", 21), ("b", 22)):
        os.makedirs(path(sub), exist_ok=True)
        m = build(f"resnet18_{sub}", torchvision.models.resnet18, seed, announce=False)
        files.append(path(f"{sub}/model.pth"))
        torch.save(m.state_dict(), files[-1])
        del m
    for f, n in zip(files, ("same_file_a", "same_file_b")):
        doc, _ = zoo_json("import", f, "--name", n)
        require_verified(doc, f"import {f} --name {n}")
    try:
        for n in ("same_file_a", "same_file_b"):
            r = zoo("verify", n, "--json")
            if r.returncode != 0:
                try:
                    bad = "; ".join(f"{c.get('name')}: {c.get('detail')}" for c in failing(checks_of(json.loads(r.stdout))[1]))
                except Exception:
                    bad = describe(r)
                raise CheckError(f"after importing a/model.pth as same_file_a, then b/model.pth as same_file_b: "
                                 f"`zoo verify {n}` exit {r.returncode}: {bad}")
    finally:
        for n in ("same_file_a", "same_file_b"):
            zoo("rm", n)
        for f in files:
            remove(f)
            os.rmdir(os.path.dirname(f))
    return "both verify"


# --------------------------------------------------------------------------
# 5. pull over HTTP from 127.0.0.1

serve_dir = path("served")
os.makedirs(serve_dir, exist_ok=True)
server = FileServer(serve_dir, chunk=1 << 20)
info(f"HTTP server on 127.0.0.1:{server.port}")


def requests():
    """(name, Range header) of each GET since the log was last cleared."""
    return [(r["name"], r["range"]) for r in server.requests()]


m = build("served_resnet18", torchvision.models.resnet18, 1818, announce=False)
tmp = path("served.tmp")
torch.save(m.state_dict(), tmp)
del m
served_sha = sha256(tmp)
served_file = f"resnet18-{served_sha[:8]}.pth"
resume_file = f"resnet18resume-{served_sha[:8]}.pth"
shutil.copyfile(tmp, os.path.join(serve_dir, resume_file))
os.replace(tmp, os.path.join(serve_dir, served_file))
catalog = path("user_catalog.json")
with open(catalog, "w") as fh:
    json.dump({"version": 1, "models": [
        {"name": "served_resnet18", "architecture": "resnet18", "file": served_file,
         "url": server.url(served_file), "sha256_prefix": served_sha[:8]},
        {"name": "served_resnet18_resume", "architecture": "resnet18", "file": resume_file,
         "url": server.url(resume_file), "sha256_prefix": served_sha[:8]},
    ]}, fh, indent=1)


@check("pull_http_download")
def _():
    server.log.clear()
    doc, _ = zoo_json("pull", "served_resnet18", "--catalog", catalog)
    if doc.get("origin") != "download":
        raise CheckError(f"origin {doc.get('origin')!r}, expected 'download'")
    e = doc.get("entry") or {}
    if e.get("sha256") != served_sha:
        raise CheckError(f"entry sha256 {e.get('sha256')!r}, served {served_sha}")
    v = doc.get("verification") or e.get("verification")
    if not isinstance(v, dict) or v.get("ok") is not True:
        raise CheckError(f"verification {v}")
    gets = [n for n, _ in requests()]
    if gets != [served_file]:
        raise CheckError(f"server saw requests {requests()}, expected one GET of {served_file}")
    leftovers = os.listdir(os.path.join(ZOO_HOME, "downloads"))
    if leftovers:
        raise CheckError(f"downloads/ still holds {leftovers}")
    return f"{doc.get('downloaded_bytes')} bytes, {len(requests())} request(s), {fmt_checks(v.get('checks', []))}"


@check("pull_http_second_time_from_cache")
def _():
    server.log.clear()
    doc, _ = zoo_json("pull", "served_resnet18", "--catalog", catalog)
    if doc.get("origin") != "cache":
        raise CheckError(f"origin {doc.get('origin')!r}, expected 'cache'")
    if requests():
        raise CheckError(f"the server saw requests: {requests()}")
    # ZOO_CATALOG instead of --catalog resolves the same model
    doc, _ = zoo_json("pull", "served_resnet18", env={"ZOO_CATALOG": catalog})
    if doc.get("origin") != "cache":
        raise CheckError(f"with ZOO_CATALOG: origin {doc.get('origin')!r}, expected 'cache'")
    row = row_of(list_rows("--catalog", catalog), "served_resnet18")
    if not row or row.get("cached") is not True or row.get("verified") is not True:
        raise CheckError(f"zoo list row {row}")
    return "origin cache, no request"


@check("pull_http_resume_after_dropped_connection")
def _():
    server.log.clear()
    server.truncate.add(resume_file)
    size = os.path.getsize(os.path.join(serve_dir, resume_file))
    doc, r = zoo_json("pull", "served_resnet18_resume", "--catalog", catalog)
    if doc.get("origin") != "download":
        raise CheckError(f"origin {doc.get('origin')!r}, expected 'download'")
    e = doc.get("entry") or {}
    if e.get("sha256") != served_sha:
        raise CheckError(f"entry sha256 {e.get('sha256')!r}, served {served_sha}")
    log = requests()
    if len(log) < 2:
        raise CheckError(f"server saw {log}: no second request after the cut")
    first, second = log[0], log[1]
    if first[1] is not None:
        raise CheckError(f"first request already had Range {first[1]!r}")
    if not second[1] or not second[1].startswith("bytes="):
        raise CheckError(f"second request carried no Range header: {log}")
    start = int(second[1][6:].split("-")[0] or -1)
    if start <= 0 or start > size // 2:
        raise CheckError(f"second request Range {second[1]!r}; the first response was cut after {size // 2} bytes")
    return f"requests {log}; file {size} bytes"


@check("pull_offline_refused")
def _():
    r = zoo("pull", "resnet34", env={"ZOO_OFFLINE": "1"})
    if r.returncode != 1:
        raise CheckError(f"expected exit 1, got {describe(r)}")
    if "ZOO_OFFLINE" not in r.stderr:
        raise CheckError(f"stderr does not mention ZOO_OFFLINE: {tail(r.stderr)}")
    return f"exit 1: {tail(r.stderr, 120)}"


@check("pull_unknown_model_exit_2")
def _():
    r = zoo("pull", "nosuchmodel", env={"ZOO_OFFLINE": "1"})
    if r.returncode != 2:
        raise CheckError(f"expected exit 2, got {describe(r)}")
    if not r.stderr.strip():
        raise CheckError("exit 2 but nothing on stderr")
    return f"exit 2: {tail(r.stderr, 120)}"


server.close()
shutil.rmtree(serve_dir, ignore_errors=True)

# --------------------------------------------------------------------------
# 6. zoo demo


@check("demo")
def _():
    with open(os.path.join(REPO, "demo", "model.json")) as fh:
        meta = json.load(fh)
    doc, _ = zoo_json("demo")
    acc, want = doc.get("accuracy"), meta["test_accuracy"]
    if not isinstance(acc, (int, float)) or abs(acc - want) > 1e-9:
        raise CheckError(f"accuracy {acc!r}, demo/model.json test_accuracy {want}")
    n = doc.get("test_images")
    if n != meta.get("n_test"):
        raise CheckError(f"test_images {n!r}, demo/model.json n_test {meta.get('n_test')}")
    if doc.get("agree_with_torch") != n:
        raise CheckError(f"agree_with_torch {doc.get('agree_with_torch')!r} of {n}")
    if doc.get("verified") is False:
        raise CheckError(f"verified false: {tail(json.dumps(doc))}")
    return f"accuracy {acc:.4f}, agree {n}/{n}, max logit diff {doc.get('max_logit_difference')}"


# --------------------------------------------------------------------------
# 7. rm, prune


@check("rm_then_list_uncached")
def _():
    c = cached_entry(R18)
    files = [os.path.join(ZOO_HOME, c[k]) for k in ("native", "reference") if c.get(k)]
    r = zoo("rm", R18)
    if r.returncode != 0:
        raise CheckError(f"zoo rm {R18}: {describe(r)}")
    row = row_of(list_rows(), R18)
    if row is not None and row.get("cached") is not False:
        raise CheckError(f"after rm, zoo list shows {row}")
    left = [f for f in files if os.path.exists(f)]
    if left:
        raise CheckError(f"after rm these files remain: {left}")
    r = zoo("verify", R18)
    if r.returncode != 2:
        raise CheckError(f"verify after rm: expected exit 2, got {describe(r)}")
    return "row gone" if row is None else "row cached false"


@check("prune_removes_partial_download")
def _():
    partial = os.path.join(ZOO_HOME, "downloads", "x.partial")
    os.makedirs(os.path.dirname(partial), exist_ok=True)
    with open(partial, "wb") as fh:
        fh.write(b"\0" * 1000)
    doc, _ = zoo_json("prune")
    if os.path.exists(partial):
        raise CheckError(f"downloads/x.partial still exists; prune said {tail(json.dumps(doc))}")
    removed = doc.get("removed") if isinstance(doc, dict) else None
    if not isinstance(removed, list) or not any(str(p).endswith("x.partial") for p in removed):
        raise CheckError(f"JSON removed does not list x.partial: {tail(json.dumps(doc))}")
    # what is still cached survives and still verifies
    r = zoo("verify", "served_resnet18", "--catalog", catalog)
    if r.returncode != 0:
        raise CheckError(f"after prune, verify served_resnet18: {describe(r)}")
    return f"removed {len(removed)} path(s)"


shutil.rmtree(ZOO_HOME, ignore_errors=True)
remove(r18["file"], catalog)
interop.finish("check_zoo", elapsed=True)
