#!/usr/bin/env python3
"""Bounded work: every zoo command that reads a file, on each bomb of make_bombs.py, in a child.

Invoked by Tests/Interop/run as

    python -u check_bombs.py --zoo /path/to/zoo --workdir /tmp/scratch

Writes the bomb corpus (Tests/Fixtures/make_bombs.py: files under 1 MB, one per class of
issue 12 item 4) into the workdir, then runs `inspect`, `inspect --json`, `convert`, `verify`,
`run` and `import` on each in a child process and checks < 2 GB peak RSS (getrusage of the
child) and < 10 s wall time. The child's address space is capped (ZOO_BOMB_AS_LIMIT_MB, default
3072) and it is killed after ZOO_BOMB_KILL_S (default 30) s, so that a reader without the bounds
fails here instead of taking the machine down. Which exit status a bomb ends in is not checked
(refused or read, both are fine); only the cost.

ZOO_BOMBS=name,name runs only those bombs. `--table` prints the peak RSS and time of every run instead of PASS/FAIL lines (the figures
of SECURITY.md); it does not fail.
"""

import os
import signal
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Fixtures"))
TABLE = "--table" in sys.argv
if TABLE:
    sys.argv.remove("--table")

import interop  # noqa: E402
from interop import CheckError, check, path, sandbox_env  # noqa: E402
import make_bombs  # noqa: E402

ZOO, WORK = interop.setup(__doc__)
MAX_RSS_MB = 2048
MAX_SECONDS = 10.0
AS_LIMIT = int(os.environ.get("ZOO_BOMB_AS_LIMIT_MB", "3072")) << 20
KILL_AFTER = float(os.environ.get("ZOO_BOMB_KILL_S", "30"))


def measure(argv, env=None):
    """Runs zoo argv under prlimit (address space) and /usr/bin/time, whose own fork is tiny, so
    the peak RSS is zoo's alone (a child forked from this Python would inherit its high-water
    mark); (exit status, peak RSS MB, seconds, killed, stderr)."""
    report = path("time.out")
    t0 = time.perf_counter()
    p = subprocess.Popen(["prlimit", f"--as={AS_LIMIT}", "/usr/bin/time", "-f", "%M %x", "-o", report,
                          "timeout", "--foreground", "-s", "KILL", str(KILL_AFTER), ZOO, *argv],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=env, start_new_session=True)
    try:
        _, err = p.communicate(timeout=KILL_AFTER + 30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
    seconds = time.perf_counter() - t0
    killed = seconds >= KILL_AFTER
    lines = open(report).read().splitlines()
    words = lines[-1].split() if lines else []
    rss = int(words[0]) / 1024 if len(words) == 2 else float("nan")
    status = int(words[1]) if len(words) == 2 else -1
    for line in lines:  # "Command terminated by signal N"
        if line.startswith("Command terminated by signal"):
            status = -int(line.split()[-1])
    return status, rss, seconds, killed, err.decode(errors="replace")


def write_npy(file):
    """A float32 [1, 3, 8, 8] batch of zeros, for `zoo run`."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 8, 8), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(file, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * (4 * 192))


bombs = os.path.join(WORK, "bombs")
os.makedirs(bombs, exist_ok=True)
npy = path("batch.npy")
write_npy(npy)
rows = []
ONLY = [n for n in os.environ.get("ZOO_BOMBS", "").split(",") if n]
for name, make in make_bombs.BOMBS.items():
    if ONLY and name not in ONLY:
        continue
    data = make()
    file = os.path.join(bombs, name + ".pth")
    with open(file, "wb") as f:
        f.write(data)
    home = path("home-" + name)
    commands = {
        "inspect": (["inspect", file], None),
        "inspect --json": (["inspect", "--json", file], None),
        "convert": (["convert", file, "-o", path(name + ".safetensors")], None),
        "verify": (["verify", file], None),
        "run": (["run", file, "--input", npy, "--output", path(name + ".out.npy")], None),
        "import": (["import", file, "--name", "bomb-" + name.replace("_", "-")],
                   sandbox_env(os.path.join(home, "zoo"), home)),
    }
    for label, (argv, env) in commands.items():
        status, rss, seconds, killed, err = measure(argv, env)
        first = err.strip().splitlines()[0][:160] if err.strip() else ""
        rows.append((name, len(data), label, status, rss, seconds, killed, first))
        if TABLE:
            print(f"{name:16} {len(data):>7} B  {label:15} exit {status:>4}  {rss:8.0f} MB  {seconds:7.2f} s"
                  f"{'  KILLED' if killed else ''}  {first}", flush=True)
            continue

        @check(f"bomb {name}: zoo {label}")
        def _():
            if killed or rss >= MAX_RSS_MB or seconds >= MAX_SECONDS or status < 0:
                raise CheckError(f"{rss:.0f} MB peak, {seconds:.1f} s, exit {status}"
                                 f"{' (killed)' if killed else ''}: {first}")
            return f"{rss:.0f} MB, {seconds:.2f} s, exit {status}"

if not TABLE:
    interop.finish("check_bombs")
