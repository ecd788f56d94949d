#!/usr/bin/env python3
"""zoo against PyTorch, ONNX Runtime and OpenVINO, per kernel path, in one interleaved run.

For each ISA (avx512: every tool at its best; avx2: `ZOO_KERNELS=avx2` for zoo and
`ONEDNN_MAX_CPU_ISA=AVX2`, `ATEN_CPU_CAPABILITY=avx2` for torch and OpenVINO), each model and
batch, every tool runs as its own process, `--iterations` timed forwards after one untimed first
forward; rounds visit the tools in a rotating order so all see the same noise of this shared
machine, and the table gives the median over all timed forwards of all rounds, the first
forward (zoo packs its weights then), and the peak RSS of the process (os.wait4).

  torch     torchvision model (random weights), eval, inference_mode, torch.set_num_threads(T),
            OMP_WAIT_POLICY=PASSIVE (spinning OpenMP workers collapse on a shared machine)
  onnxrt    the same model exported by torch.onnx.export, ONNX Runtime CPU provider,
            intra_op_num_threads=T, all graph optimisations
  openvino  the same ONNX file, compiled for CPU with INFERENCE_NUM_THREADS=T,
            INFERENCE_PRECISION_HINT=f32 (this CPU has bf16: without the hint OpenVINO may
            compute in bf16), PERFORMANCE_HINT=LATENCY
  zoo       `zoo bench ARCH --batch B --threads T --iterations N --json` (synthetic weights)

ONNX Runtime has no switch for its instruction set (MLAS picks AVX-512 kernels from cpuid), so
in the avx2 rows it still runs AVX-512: a harder peer than an AVX2 CPU would give.

    PY=/root/.cache/zoo-dev/venv/bin/python
    $PY benchmarks/peers.py                       # everything, writes RESULTS.md (~15 min)
    $PY benchmarks/peers.py --isas avx2 --models resnet18 --batches 1 --rounds 2 --no-write

The table replaces the part of benchmarks/RESULTS.md between the peers.py markers.
Needs benchmarks/requirements-peers.txt in the venv and a release build of zoo.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- peers.py:begin -->"
END = "<!-- peers.py:end -->"
TOOLS = ["zoo", "torch", "onnxrt", "openvino"]
VERSIONS = {}
ONNX_DIR = Path(tempfile.gettempdir()) / "zoo-peers-onnx"


# ---------------------------------------------------------------------------------------
# Workers: one process per measurement, printing one JSON line.

def worker(tool, arch, batch, threads, iterations):
    import numpy as np
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    if tool == "torch":
        import torch
        import torchvision
        torch.set_num_threads(threads)
        model = getattr(torchvision.models, arch)(weights=None).eval()
        tx = torch.from_numpy(x)

        def run():
            with torch.inference_mode():
                model(tx)
    elif tool == "onnxrt":
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(ONNX_DIR / f"{arch}.onnx"), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run():
            session.run(None, {name: x})
    elif tool == "openvino":
        import openvino as ov
        core = ov.Core()
        model = core.read_model(str(ONNX_DIR / f"{arch}.onnx"))
        model.reshape([batch, 3, 224, 224])
        compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
                                                     "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()

        def run():
            request.infer({0: x})
    else:
        raise SystemExit(f"unknown tool {tool}")
    start = time.perf_counter()
    run()
    first = (time.perf_counter() - start) * 1e3
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    versions = {"torch": lambda: __import__("torch").__version__, "onnxrt": lambda: __import__("onnxruntime").__version__,
                "openvino": lambda: __import__("openvino").__version__}
    print(json.dumps({"iterations_ms": times, "first_ms": first, "version": versions[tool]()}))


def export(arch):
    """The model as ONNX with a dynamic batch, once (in its own process: see measure_once)."""
    import torch
    import torchvision
    ONNX_DIR.mkdir(exist_ok=True)
    path = ONNX_DIR / f"{arch}.onnx"
    if path.exists():
        return
    model = getattr(torchvision.models, arch)(weights=None).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17, dynamo=False)


# ---------------------------------------------------------------------------------------

def run_process(command, env):
    """Popen + wait4: the exit status and the peak RSS (KB) of exactly this child."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Read the pipes on the side (outputs are small), then reap with wait4 for the rusage.
    out_chunks, err_chunks = [], []
    readers = [threading.Thread(target=lambda s=process.stdout, c=out_chunks: c.append(s.read())),
               threading.Thread(target=lambda s=process.stderr, c=err_chunks: c.append(s.read()))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(process.pid, 0)
    for r in readers:
        r.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, "".join(out_chunks), "".join(err_chunks), usage.ru_maxrss


def measure_once(tool, isa, arch, batch, threads, iterations, zoo):
    """One process of `tool`: its timed forwards, first forward and peak RSS (MB). This parent
    never imports torch, so a child forked from it starts with a small RSS high-water mark
    (Linux carries it across fork and exec)."""
    env = dict(os.environ)
    # OMP_WAIT_POLICY=PASSIVE: on this shared, oversubscribed machine torch's spinning OpenMP
    # workers measured 10x slower (2.6 s against 0.2 s for resnet18) than with passive waits.
    env.update({"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"})
    if isa == "avx2":
        env.update({"ZOO_KERNELS": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
                    "ATEN_CPU_CAPABILITY": "avx2"})
    else:
        env["ZOO_KERNELS"] = "avx512"
    if tool == "zoo":
        command = [zoo, "bench", arch, "--batch", str(batch), "--threads", str(threads), "--iterations",
                   str(iterations), "--json"]
    else:
        command = [sys.executable, __file__, "--worker", tool, "--models", arch, "--batches", str(batch), "--threads",
                   str(threads), "--iterations", str(iterations)]
    code, out, err, rss = run_process(command, env)
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{err[-2000:]}")
    report = json.loads(out) if tool == "zoo" else json.loads(out.strip().splitlines()[-1])
    if tool == "zoo" and report.get("kernels") != isa:
        raise RuntimeError(f"zoo ran {report.get('kernels')}, not {isa}")
    if "version" in report:
        VERSIONS[tool] = report["version"]
    # zoo's first forward counts the weight layouts it makes before it (`prepare_ms`), as it did
    # when the first forward made them.
    return report["iterations_ms"], report["first_ms"] + report.get("prepare_ms", 0), rss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--isas", nargs="+", default=["avx512", "avx2"])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50", "vgg16"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--tools", nargs="+", default=TOOLS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=0, help="per process (default: by model size)")
    parser.add_argument("--zoo", default=str(ROOT / ".build/release/zoo"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.models[0], args.batches[0], args.threads, args.iterations)

    if args.export:
        return export(args.export)
    if any(t in args.tools for t in ("onnxrt", "openvino")):
        for arch in args.models:
            subprocess.run([sys.executable, __file__, "--export", arch], check=True)
    configs = [(isa, arch, batch) for isa in args.isas for arch in args.models for batch in args.batches]
    results = {}
    started = time.time()
    for round_index in range(args.rounds):
        for c, (isa, arch, batch) in enumerate(configs):
            heavy = arch == "vgg16" or batch > 1
            iterations = args.iterations or (3 if heavy else 7)
            tools = args.tools[(round_index + c) % len(args.tools):] + args.tools[:(round_index + c) % len(args.tools)]
            for tool in tools:
                times, first, rss = measure_once(tool, isa, arch, batch, args.threads, iterations, args.zoo)
                entry = results.setdefault((isa, arch, batch, tool), {"times": [], "first": [], "rss": []})
                entry["times"] += times
                entry["first"].append(first)
                entry["rss"].append(rss)
                print(f"round {round_index + 1} {isa} {arch} b{batch} {tool}: {statistics.median(times):.1f} ms, "
                      f"first {first:.0f} ms, {rss:.0f} MB  [{time.time() - started:.0f} s]", file=sys.stderr, flush=True)

    table = render(results, configs, args)
    print(table)
    if not args.no_write:
        path = ROOT / "benchmarks/RESULTS.md"
        old = path.read_text() if path.exists() else ""
        if BEGIN in old and END in old:
            new = old[:old.index(BEGIN)] + table + old[old.index(END) + len(END):]
        else:
            new = table + "\n" + old
        path.write_text(new)


def render(results, configs, args):
    peers = [t for t in args.tools if t != "zoo"]
    lines = [BEGIN, "## zoo against PyTorch, ONNX Runtime and OpenVINO (benchmarks/peers.py)", "",
             f"{datetime.date.today()}, {args.threads} threads, 224x224 fp32, {args.rounds} interleaved rounds; "
             + ", ".join(f"{t} {v}" for t, v in sorted(VERSIONS.items())) + f"; load average {os.getloadavg()[0]:.1f} at the end. "
             "Median ms per forward (all timed forwards of all rounds); first forward in parentheses (for zoo "
             "with the packing of its weights, `prepare_ms`, before it); peak RSS in MB. avx2 rows: `ZOO_KERNELS=avx2`, torch and OpenVINO with "
             "`ONEDNN_MAX_CPU_ISA=AVX2` (+ `ATEN_CPU_CAPABILITY=avx2` for torch); ONNX Runtime has no such "
             "switch and runs its AVX-512 kernels there too. `OMP_WAIT_POLICY=PASSIVE` for every process (torch's "
             "spinning OpenMP workers were 10x slower on this oversubscribed machine).", "",
             "| ISA | model | batch | " + " | ".join(["zoo"] + peers) + " | zoo / torch | zoo / best peer |",
             "|---|---|---|" + "---|" * (len(peers) + 3)]
    for isa, arch, batch in configs:
        cells, medians = [], {}
        for tool in ["zoo"] + peers:
            entry = results.get((isa, arch, batch, tool))
            if not entry:
                cells.append("-")
                continue
            medians[tool] = statistics.median(entry["times"])
            cells.append(f"{medians[tool]:.1f} ({statistics.median(entry['first']):.0f}) {max(entry['rss']):.0f} MB")
        best = min((t for t in peers if t in medians), key=lambda t: medians[t], default=None)
        vs_torch = f"{medians['zoo'] / medians['torch']:.2f}" if "torch" in medians and "zoo" in medians else "-"
        vs_best = f"**{medians['zoo'] / medians[best]:.2f}** ({best})" if best and "zoo" in medians else "-"
        lines.append(f"| {isa} | {arch} | {batch} | " + " | ".join(cells) + f" | {vs_torch} | {vs_best} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
