#!/usr/bin/env python3
"""`zoo convert` of a 553 MB VGG16 against cp, cp + sync and PyTorch + safetensors, side by side.

In one run, on this machine, with both checkpoints in the page cache:

  * a VGG16 state dict (torchvision.models.vgg16(), random init, seed 0) saved in the legacy
    magic-number format (like the official vgg16-397923af.pth) and in the zip format;
  * `cp FILE COPY` (median of 5) and `cp FILE COPY && sync COPY` (median of 3): zoo convert
    fsyncs its output and cp does not, so both are reported;
  * `zoo convert FILE -o OUT` (median of 3) and `--dtype float16` (once): wall time and peak
    RSS from /usr/bin/time -f "%e %M";
  * the Python reference, torch.load(weights_only=True) + safetensors.torch.save_file in a fresh
    `python -c` (median of 3; wall and peak RSS), and the time to import torch on its own;
  * `zoo bench OUT --load --iterations 5 --json` (3 invocations) on the converted file (open, typed views,
    float32 materialisation) next to this machine's memcpy bandwidth (numpy copy of 500 MB);
  * `openssl dgst -sha256 FILE` for reference (zoo hashes the source with libcrypto on a
    second thread while it converts).

The commands run in interleaved rounds (cp, cp + sync, zoo, python, openssl; cp alone in the
last two) so that they share the machine's background noise. Every timed run starts after an
untimed `sync`, so no write-back from the previous run is pending, and outputs are deleted
between runs. Wall times are measured around the subprocess
(perf_counter), peak RSS comes from /usr/bin/time's %M.

    /root/.cache/zoo-dev/venv/bin/python benchmarks/convert.py              # writes benchmarks/CONVERT.md
    ... benchmarks/convert.py --no-write --workdir /tmp/b --keep             # look only, keep files

Targets (stated by the project): zoo convert <= 1.5x the wall time of cp; peak RSS <= 100 MB;
open + typed views of all tensors <= 10 ms; materialising as float32 at memory bandwidth
(judged here as >= 80% of numpy's copy of 500 MB into a fresh allocation).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME = "/usr/bin/time"
RSS_TARGET_MB = 100.0
CP_RATIO_TARGET = 1.5
OPEN_VIEWS_TARGET_MS = 10.0
# "Memory-bandwidth speed", read here as at least 80% of numpy's copy into a fresh allocation
# (materialising allocates its arrays, so it pays the page faults that copy pays too).
MATERIALISE_TARGET = 0.8


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sync():
    subprocess.run(["sync"], check=True)


def remove(*files):
    for f in files:
        try:
            os.remove(f)
        except FileNotFoundError:
            pass


def timed(argv, check=True):
    """Runs argv under /usr/bin/time; returns (wall s measured here, peak RSS MB, stdout)."""
    sync()
    t0 = time.perf_counter()
    r = subprocess.run([TIME, "-f", "%e %M", *argv], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if check and r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(argv)}\n{r.stderr}")
    last = r.stderr.strip().splitlines()[-1].split()
    return wall, int(last[1]) / 1024.0, r.stdout


def median_of(n, argv, cleanup=()):
    walls, rss, out = [], [], ""
    for _ in range(n):
        remove(*cleanup)
        w, m, out = timed(argv)
        walls.append(w)
        rss.append(m)
    remove(*cleanup)
    return {"wall": statistics.median(walls), "walls": walls, "rss": statistics.median(rss),
            "rss_max": max(rss), "stdout": out}


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def machine_info():
    info = {"nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "Thread(s) per core", "L3 cache"):
                info[key.strip()] = value.strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return info


def filesystem_of(path):
    try:
        r = subprocess.run(["df", "-T", path], capture_output=True, text=True).stdout.splitlines()
        fields = r[-1].split()
        return f"{fields[1]} ({fields[0]})"
    except (OSError, IndexError):
        return "unknown"


def memcpy_bandwidth(py):
    """numpy copies of a 500 MB float32 array, median of 3 after a warm-up, in GB/s of bytes copied:
    (into a buffer whose pages are already mapped, into a fresh allocation that page-faults)."""
    code = (
        "import numpy as np, time, statistics\n"
        "n = 500_000_000 // 4\n"
        "a = np.random.default_rng(0).random(n, dtype=np.float32); b = np.empty_like(a); np.copyto(b, a)\n"
        "t, u = [], []\n"
        "for _ in range(3):\n"
        "    t0 = time.perf_counter(); np.copyto(b, a); t.append(time.perf_counter() - t0)\n"
        "for _ in range(3):\n"
        "    t0 = time.perf_counter(); c = a.copy(); u.append(time.perf_counter() - t0); del c\n"
        "print(a.nbytes / statistics.median(t) / 1e9, a.nbytes / statistics.median(u) / 1e9)\n")
    out = subprocess.run([py, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


REFERENCE = (
    "import sys, time\n"
    "t0 = time.perf_counter()\n"
    "import torch\n"
    "from safetensors.torch import save_file\n"
    "t1 = time.perf_counter()\n"
    "sd = torch.load(sys.argv[1], weights_only=True, map_location='cpu')\n"
    "t2 = time.perf_counter()\n"
    "save_file(sd, sys.argv[2], metadata={'format': 'pt'})\n"
    "t3 = time.perf_counter()\n"
    "print(t1 - t0, t2 - t1, t3 - t2)\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", default=str(ROOT / ".build" / "release" / "zoo"), help="zoo binary")
    ap.add_argument("--python", default=sys.executable, help="python with torch + safetensors for the reference")
    ap.add_argument("--workdir", help="scratch directory (default: a new temp dir, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the workdir")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/CONVERT.md")
    args = ap.parse_args()
    zoo = os.path.abspath(args.zoo)
    if not os.access(zoo, os.X_OK):
        raise SystemExit(f"no zoo binary at {zoo}: swift build -c release --product zoo")
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"{TIME} is needed for peak RSS")
    made = args.workdir is None
    work = args.workdir or tempfile.mkdtemp(prefix="zoo-convert-bench.")
    os.makedirs(work, exist_ok=True)
    work = os.path.abspath(work)
    started = time.perf_counter()
    load_before = open("/proc/loadavg").read().split()[:3]

    # ---- checkpoints
    log("saving VGG16 (legacy + zip) ...")
    subprocess.run([args.python, "-c",
                    "import sys, torch, torchvision\n"
                    "torch.manual_seed(0)\n"
                    "sd = torchvision.models.vgg16().state_dict()\n"
                    "torch.save(sd, sys.argv[1], _use_new_zipfile_serialization=False)\n"
                    "torch.save(sd, sys.argv[2])\n",
                    os.path.join(work, "vgg16_legacy.pth"), os.path.join(work, "vgg16_zip.pth")], check=True)
    sources = {"legacy": os.path.join(work, "vgg16_legacy.pth"), "zip": os.path.join(work, "vgg16_zip.pth")}
    for p in sources.values():
        warm(p)

    results = {}
    for fmt, src in sources.items():
        log(f"[{fmt}] cp, cp + sync, zoo convert, python reference ...")
        copy = os.path.join(work, "copy.pth")
        out = os.path.join(work, f"vgg16_{fmt}.safetensors")
        out16 = os.path.join(work, f"vgg16_{fmt}.float16.safetensors")
        ref_out = os.path.join(work, "reference.safetensors")
        r = {"size": os.path.getsize(src)}
        # Interleaved rounds, so that cp and zoo share whatever else this machine is doing.
        commands = {
            "cp": (5, ["cp", src, copy], [copy]),
            "cp_sync": (3, ["sh", "-c", 'cp "$1" "$2" && sync "$2"', "sh", src, copy], [copy]),
            "zoo": (3, [zoo, "convert", src, "-o", out, "--json"], [out]),
            "zoo16": (1, [zoo, "convert", src, "-o", out16, "--dtype", "float16", "--json"], [out16]),
            "py": (3, [args.python, "-c", REFERENCE, src, ref_out], [ref_out]),
            "sha256": (3, ["openssl", "dgst", "-sha256", src], []),
        }
        runs = {k: [] for k in commands}
        for round_ in range(max(n for n, _, _ in commands.values())):
            for k, (n, argv, cleanup) in commands.items():
                if round_ < n:
                    runs[k].append(median_of(1, argv, cleanup=cleanup))
        for k, rs in runs.items():
            walls = [x["wall"] for x in rs]
            rss = [x["rss"] for x in rs]
            mid = sorted(rs, key=lambda x: x["wall"])[len(rs) // 2]
            r[k] = {"wall": statistics.median(walls), "walls": walls, "rss": statistics.median(rss),
                    "rss_max": max(rss), "stdout": mid["stdout"]}
        r["zoo_report"] = json.loads(r["zoo"]["stdout"])
        r["zoo16_report"] = json.loads(r["zoo16"]["stdout"])
        r["py_parts"] = [float(x) for x in r["py"]["stdout"].split()]  # of the median run
        # converted file for zoo bench (kept in the page cache: it was just written and read back)
        w, _, _ = timed([zoo, "convert", src, "-o", out])
        warm(out)
        benches = [json.loads(subprocess.run([zoo, "bench", out, "--load", "--iterations", "5", "--json"],
                                             capture_output=True, text=True, check=True).stdout) for _ in range(3)]
        benches.sort(key=lambda b: b["materialise_ms"])
        r["bench"] = benches[1]  # the invocation with the median materialise time
        r["bench"]["open_views_ms"] = statistics.median(b["open_ms"] + b["views_ms"] for b in benches)
        r["out_size"] = os.path.getsize(out)
        remove(out)
        results[fmt] = r

    log("import torch alone, memcpy bandwidth ...")
    imp = median_of(3, [args.python, "-c", "import torch"])
    memcpy, memcpy_fresh = memcpy_bandwidth(args.python)
    versions = subprocess.run([args.python, "-c", "import torch, safetensors; print(torch.__version__, safetensors.__version__)"],
                              capture_output=True, text=True).stdout.split()
    zoo_version = subprocess.run([zoo, "--version"], capture_output=True, text=True).stdout.strip()
    fs = filesystem_of(work)
    load_after = open("/proc/loadavg").read().split()[:3]
    if made and not args.keep:
        shutil.rmtree(work, ignore_errors=True)

    # ---- report
    minfo = machine_info()
    ms = lambda s: f"{s * 1000:.0f} ms"
    lines = []
    add = lines.append
    add("# zoo convert: VGG16 (553 MB) benchmark")
    add("")
    add(f"Generated by `benchmarks/convert.py` on {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}. "
        f"Machine: {minfo.get('nproc')} CPUs ({minfo.get('Model name', '?')}), {minfo.get('memory', '?')} RAM, "
        f"kernel {minfo.get('kernel')}; scratch filesystem {fs}. zoo {zoo_version}, torch {versions[0] if versions else '?'}, "
        f"safetensors {versions[1] if len(versions) > 1 else '?'}.")
    add("")
    add("Both source files are in the page cache. Wall times are medians (cp: 5 runs; cp + sync, "
        "zoo convert, Python: 3 runs; --dtype float16: 1 run), in interleaved rounds; each run starts after an untimed `sync`. "
        "Peak RSS is /usr/bin/time's %M (median). `zoo bench --load` figures are from the median of 3 "
        "invocations (each reporting medians of 5 iterations).")
    add("")
    add("| | legacy (magic number) | zip |")
    add("|---|---:|---:|")
    L, Z = results["legacy"], results["zip"]

    def row(label, f):
        add(f"| {label} | {f(L)} | {f(Z)} |")

    row("source file", lambda r: f"{r['size'] / 1e6:.1f} MB")
    row("`cp`", lambda r: ms(r["cp"]["wall"]))
    row("`cp` + `sync` of the copy", lambda r: ms(r["cp_sync"]["wall"]))
    row("**`zoo convert`** (fsync + verify + SHA-256)", lambda r: f"**{ms(r['zoo']['wall'])}** "
        f"({', '.join(f'{w * 1000:.0f}' for w in r['zoo']['walls'])})")
    row("zoo convert / cp (target <= 1.5)",
        lambda r: f"{r['zoo']['wall'] / r['cp']['wall']:.1f}x " + ("met" if r['zoo']['wall'] / r['cp']['wall'] <= CP_RATIO_TARGET else "**not met**"))
    row("zoo convert / (cp + sync)", lambda r: f"{r['zoo']['wall'] / r['cp_sync']['wall']:.2f}x")
    row("zoo convert peak RSS (target <= 100 MB)",
        lambda r: f"{r['zoo']['rss']:.0f} MB " + ("met" if r['zoo']['rss_max'] <= RSS_TARGET_MB else "**not met**"))
    row("`zoo convert --dtype float16` (1 run)", lambda r: f"{ms(r['zoo16']['wall'])}, {r['zoo16']['rss']:.0f} MB RSS, "
        f"{r['zoo16_report']['file_bytes'] / 1e6:.0f} MB out")
    row("Python: torch.load(weights_only) + save_file", lambda r: f"{ms(r['py']['wall'])}, {r['py']['rss']:.0f} MB RSS")
    row("... of which import torch + safetensors / load / save", lambda r: " / ".join(ms(x) for x in r["py_parts"]))
    row("zoo convert / Python", lambda r: f"{r['zoo']['wall'] / r['py']['wall']:.2f}x")
    row("`openssl dgst -sha256` of the source (reference)", lambda r: ms(r["sha256"]["wall"]))
    row("converted file", lambda r: f"{r['out_size'] / 1e6:.1f} MB, {r['bench']['tensors']} tensors")
    row("`zoo bench --load`: open", lambda r: f"{r['bench']['open_ms']:.2f} ms")
    row("typed views of all float32 tensors", lambda r: f"{r['bench']['views_ms']:.3f} ms "
        f"({r['bench'].get('zero_copy_views', '?')} zero-copy)")
    row("open + views (target <= 10 ms)", lambda r: f"{r['bench']['open_views_ms']:.2f} ms " +
        ("met" if r['bench']['open_views_ms'] <= OPEN_VIEWS_TARGET_MS else "**not met**"))
    row("materialise all as float32", lambda r: f"{r['bench']['materialise_ms']:.0f} ms, "
        f"{r['bench']['materialise_gb_per_s']:.2f} GB/s")
    row(f"... vs memcpy {memcpy:.1f} GB/s (numpy copyto, 500 MB, mapped target)",
        lambda r: f"{r['bench']['materialise_gb_per_s'] / memcpy:.0%}")
    row(f"... vs copy into a fresh allocation {memcpy_fresh:.1f} GB/s (numpy a.copy())",
        lambda r: f"{r['bench']['materialise_gb_per_s'] / memcpy_fresh:.0%}")
    add("")
    add(f"Load average (1/5/15 min) before: {' '.join(load_before)}, after: {' '.join(load_after)} "
        f"(on {minfo.get('nproc')} CPUs; anything above ~0.5 before means other work shared the machine).")
    add("")
    add(f"`python -c 'import torch'` alone: {ms(imp['wall'])} (median of 3), {imp['rss']:.0f} MB RSS.")
    add("")
    verdicts = []
    for fmt, r in results.items():
        ratio = r["zoo"]["wall"] / r["cp"]["wall"]
        ov = r["bench"]["open_views_ms"]
        mat = r["bench"]["materialise_gb_per_s"] / memcpy
        mat_fresh = r["bench"]["materialise_gb_per_s"] / memcpy_fresh
        verdicts.append(f"{fmt}: convert {ratio:.1f}x cp ({'met' if ratio <= CP_RATIO_TARGET else 'NOT met'}), "
                        f"{r['zoo']['wall'] / r['cp_sync']['wall']:.2f}x cp + sync; "
                        f"peak RSS {r['zoo']['rss_max']:.0f} MB ({'met' if r['zoo']['rss_max'] <= RSS_TARGET_MB else 'NOT met'}); "
                        f"open + views {ov:.2f} ms ({'met' if ov <= OPEN_VIEWS_TARGET_MS else 'NOT met'}); "
                        f"materialise at {mat:.0%} of memcpy and {mat_fresh:.0%} of a copy into fresh memory "
                        f"({'met' if mat_fresh >= MATERIALISE_TARGET else 'NOT met'})")
    add("Targets: " + "; ".join(verdicts) + ".")
    add("")
    add(f"Total benchmark time {time.perf_counter() - started:.0f} s.")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        dst = ROOT / "benchmarks" / "CONVERT.md"
        dst.write_text(text)
        log(f"wrote {dst}")


if __name__ == "__main__":
    main()
