#!/usr/bin/env python3
"""Forward-pass speed of zoo against PyTorch eager, side by side.

For each model and batch size: PyTorch (torch.set_num_threads(T), no_grad, eval mode,
torchvision model with random weights) and `zoo bench ARCH --batch B --iterations N --json`
run in alternating rounds, so both see the same noise of this shared machine. Medians pool
the timed iterations of all rounds.

    /root/.cache/zoo-dev/venv/bin/python benchmarks/forward.py            # all, writes RESULTS.md
    ... benchmarks/forward.py --models resnet50 --batches 1 --no-write      # one quick look

The table replaces the part of benchmarks/RESULTS.md between the forward.py markers; the
rest of that file (notes written by hand) is kept.
"""

import argparse
import ctypes
import ctypes.util
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- forward.py:begin -->"
END = "<!-- forward.py:end -->"


def machine_info():
    info = {"nproc": os.cpu_count(), "python": platform.python_version()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU family", "Model", "Thread(s) per core", "L2 cache", "L3 cache"):
                info[key.strip()] = value.strip()
        flags = next((l for l in out.splitlines() if l.startswith("Flags:")), "")
        info["simd"] = " ".join(f for f in ("avx2", "fma", "avx512f") if f" {f}" in flags)
    except OSError:
        pass
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        info[var] = os.environ.get(var, "(unset)")
    # The OpenBLAS zoo links, loaded here with the same environment: its version and the core
    # type its dynamic dispatch picked (OPENBLAS_CORETYPE overrides the detection).
    for name in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info["openblas"] = lib.openblas_get_config().decode().strip()
            info["openblas core"] = lib.openblas_get_corename().decode()
            break
        except (OSError, AttributeError):
            continue
    return info


def torch_model(name):
    import torchvision.models as tvm
    model = getattr(tvm, name)(weights=None)
    return model.eval()


def time_torch(model, x, iterations):
    import torch
    times = []
    with torch.no_grad():
        for _ in range(iterations):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1000)
    return times


def run_zoo(zoo, arch, batch, size, iterations, threads):
    cmd = [zoo, "bench", arch, "--batch", str(batch), "--size", str(size), "--iterations", str(iterations),
           "--threads", str(threads), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"forward.py: {' '.join(cmd)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet18,resnet50,vgg16")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--iterations", type=int, default=5, help="timed runs per round (each side)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating torch/zoo rounds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--zoo", default=str(ROOT / ".build/release/zoo"))
    parser.add_argument("--results", default=str(ROOT / "benchmarks/RESULTS.md"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--json", action="store_true", help="also print the raw rows as JSON")
    args = parser.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not os.path.exists(args.zoo):
        sys.exit(f"forward.py: no zoo binary at {args.zoo}: swift build -c release --product zoo")

    rows = []
    for name in args.models.split(","):
        model = torch_model(name)
        for batch in (int(b) for b in args.batches.split(",")):
            x = torch.randn(batch, 3, args.size, args.size)
            with torch.no_grad():
                model(x)  # warm-up (oneDNN primitive creation, allocator)
            torch_times, zoo_times, flops = [], [], None
            for _ in range(args.rounds):
                torch_times += time_torch(model, x, args.iterations)
                time.sleep(0.5)  # let OpenMP's spinning workers go idle before zoo starts
                report = run_zoo(args.zoo, name, batch, args.size, args.iterations, args.threads)
                zoo_times += report["iterations_ms"]
                flops = report["gflops"] * report["median_ms"] / 1000  # GFLOP per forward
            t, z = statistics.median(torch_times), statistics.median(zoo_times)
            row = {"model": name, "batch": batch, "torch_ms": t, "zoo_ms": z, "ratio": z / t, "gflop": flops,
                   "torch_gflops": flops / t * 1000, "zoo_gflops": flops / z * 1000}
            rows.append(row)
            print(f"{name:9s} batch {batch}: torch {t:8.1f} ms  zoo {z:8.1f} ms  zoo/torch {z / t:5.2f}  "
                  f"GFLOP/s torch {row['torch_gflops']:6.1f} zoo {row['zoo_gflops']:6.1f}", flush=True)
        del model

    info = machine_info()
    info["torch"] = torch.__version__
    lines = [BEGIN,
             f"Measured {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} by `benchmarks/forward.py` "
             f"({args.size}x{args.size}, {args.threads} threads, medians of {args.rounds} x {args.iterations} "
             f"interleaved runs per side).",
             "",
             "| model | batch | GFLOP | torch ms | zoo ms | zoo/torch | torch GFLOP/s | zoo GFLOP/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['batch']} | {r['gflop']:.1f} | {r['torch_ms']:.1f} | {r['zoo_ms']:.1f} | "
                     f"{r['ratio']:.2f} | {r['torch_gflops']:.1f} | {r['zoo_gflops']:.1f} |")
    lines += ["", "Machine:", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines.append(END)
    table = "\n".join(lines)
    print()
    print(table)
    if args.json:
        print(json.dumps(rows, indent=1))
    if args.no_write:
        return
    path = Path(args.results)
    old = path.read_text() if path.exists() else "# Forward-pass benchmarks\n\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + table + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + table + "\n"
    path.write_text(new)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
