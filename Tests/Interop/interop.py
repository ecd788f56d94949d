"""Shared harness for the Tests/Interop/check_*.py scripts (imported, never run).

Each check script calls setup(__doc__, ...) first, which parses

    --zoo PATH --workdir DIR   (defaults: $ZOO_BIN / $ZOO_INTEROP_WORKDIR)

then runs its checks with check(name), which prints one stdout line per check,
"PASS <name>[ (info)]" or "FAIL <name>: reason" (Tests/Interop/run counts those
lines), and ends with finish("check_X"), which prints the summary line and exits
1 if any check failed.

Also here: zoo(*argv) (the binary under test, with a timeout), describe (a zoo
run in one line), json_object (its --json output), sandbox_env (an environment
that keeps zoo off the real caches and the network), FileServer (files over
HTTP on 127.0.0.1, Range requests honoured, every request logged), scratch-file
helpers (path, remove, save, sha256), torchvision model building with
randomized BatchNorm statistics (build, make_input), and the seed tutorial's
VGG (TutorialVGG, from zoo's own torch_check.py).
"""

import argparse
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(REPO, "Tests", "Fixtures")
# The script zoo runs for `verify --against-torch`, which holds the tutorial VGG.
sys.path.insert(0, os.path.join(REPO, "Sources", "ZooKit", "Resources"))
from torch_check import TutorialVGG  # noqa: E402

TOL = 1e-4  # zoo run fidelity: max|zoo - torch| / max|torch|
THREADS = max(1, min(2, os.cpu_count() or 1))

# Set by setup().
ZOO = None          # absolute path of the zoo binary
WORK = None         # absolute path of the scratch directory
ZOO_TIMEOUT = 300   # seconds per zoo invocation
T_START = time.perf_counter()

n_pass = 0
n_fail = 0


# --------------------------------------------------------------------------
# command line, summary

def setup(doc, timeout=300, timeout_env=None):
    """Parse --zoo / --workdir, create the workdir, limit torch threads; returns (ZOO, WORK).

    doc is the script's __doc__ (its first line is the --help description);
    timeout_env names an environment variable that overrides `timeout` (seconds per zoo run)."""
    global ZOO, WORK, ZOO_TIMEOUT, T_START
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--zoo", default=os.environ.get("ZOO_BIN"), help="path to the zoo binary")
    ap.add_argument("--workdir", default=os.environ.get("ZOO_INTEROP_WORKDIR"), help="scratch directory")
    args = ap.parse_args()
    if not args.zoo or not args.workdir:
        ap.error("--zoo and --workdir (or $ZOO_BIN / $ZOO_INTEROP_WORKDIR) are required")
    ZOO = os.path.abspath(args.zoo)
    WORK = os.path.abspath(args.workdir)
    os.makedirs(WORK, exist_ok=True)
    ZOO_TIMEOUT = float(os.environ.get(timeout_env, str(timeout))) if timeout_env else timeout
    torch.set_num_threads(THREADS)
    T_START = time.perf_counter()
    return ZOO, WORK


def finish(label, elapsed=False):
    """Print "<label>: N passed, M failed[, T s]" and exit 1 if any check failed."""
    took = f", {time.perf_counter() - T_START:.0f} s" if elapsed else ""
    print(f"{label}: {n_pass} passed, {n_fail} failed{took}", flush=True)
    sys.exit(1 if n_fail else 0)


# --------------------------------------------------------------------------
# PASS / FAIL

class CheckError(Exception):
    pass


def passed(name, info=""):
    global n_pass
    n_pass += 1
    print(f"PASS {name}" + (f" ({info})" if info else ""), flush=True)


def failed(name, reason):
    global n_fail
    n_fail += 1
    reason = " ".join(str(reason).split())  # keep it on one line
    if len(reason) > 600:
        reason = reason[:600] + "..."
    print(f"FAIL {name}: {reason}", flush=True)


def check(name):
    """Decorator-ish runner: run fn(); exception -> FAIL, returned string -> PASS info."""

    def wrap(fn):
        try:
            info = fn()
            passed(name, info or "")
        except CheckError as e:
            failed(name, e)
        except Exception as e:  # harness or torch problem: still a failure, keep going
            failed(name, f"{type(e).__name__}: {e}")
        return fn

    return wrap


def info(msg):
    print(f"info: {msg}", flush=True)


def tail(s, n=300):
    s = " ".join(s.split())
    return s if len(s) <= n else "..." + s[-n:]


def json_object(stdout, what="--json stdout"):
    """zoo's JSON output parsed; CheckError unless it is a JSON object."""
    try:
        doc = json.loads(stdout)
    except ValueError as e:
        raise CheckError(f"{what} is not JSON ({e}): {tail(stdout)}")
    if not isinstance(doc, dict):
        raise CheckError(f"JSON top level is {type(doc).__name__}, expected object")
    return doc


# --------------------------------------------------------------------------
# running zoo, scratch files

def zoo(*argv, cwd=None, env=None):
    """Run zoo (stdin closed, ZOO_TIMEOUT); returns (CompletedProcess, wall ms).

    env, when given, is the whole environment of the process."""
    t0 = time.perf_counter()
    try:
        r = subprocess.run([ZOO, *argv], capture_output=True, text=True, timeout=ZOO_TIMEOUT,
                           stdin=subprocess.DEVNULL, errors="replace", cwd=cwd, env=env)
    except subprocess.TimeoutExpired:
        raise CheckError(f"`zoo {' '.join(argv)}` timed out after {ZOO_TIMEOUT:.0f} s")
    return r, (time.perf_counter() - t0) * 1000.0


def describe(r):
    """A finished zoo run in one line: exit status and the ends of stdout and stderr."""
    return f"exit {r.returncode}; stdout: {tail(r.stdout, 200)}; stderr: {tail(r.stderr)}"


def sandbox_env(zoo_home, home, **extra):
    """This process's environment for zoo, kept off the real caches and the network: ZOO_HOME and
    HOME (with XDG_CACHE_HOME, TORCH_HOME under it) set, ZOO_CATALOG / ZOO_MIRROR / ZOO_OFFLINE
    and proxies cleared (127.0.0.1 is never proxied); then `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ZOO_CATALOG", "ZOO_MIRROR", "ZOO_OFFLINE", "ZOO_HOME", "TORCH_HOME", "XDG_CACHE_HOME")
           and not k.lower().endswith("_proxy")}
    env.update(ZOO_HOME=zoo_home, HOME=home, XDG_CACHE_HOME=os.path.join(home, ".cache"),
               TORCH_HOME=os.path.join(home, ".cache", "torch"),
               no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    env.update(extra)
    return env


def path(*parts):
    return os.path.join(WORK, *parts)


def remove(*files):
    for f in files:
        try:
            os.remove(f)
        except FileNotFoundError:
            pass


def save(obj, name, legacy=False, show_format=False):
    """torch.save obj to path(name), zip or legacy format; returns the path.

    show_format adds "zip" / "legacy" to the info line."""
    p = path(name)
    t0 = time.perf_counter()
    if legacy:
        torch.save(obj, p, _use_new_zipfile_serialization=False)
    else:
        torch.save(obj, p)
    fmt = f"{'legacy' if legacy else 'zip'}, " if show_format else ""
    info(f"saved {name} ({os.path.getsize(p) / 1e6:.0f} MB, {fmt}{time.perf_counter() - t0:.1f} s)")
    return p


def sha256(file):
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def send_range_headers(handler, size):
    """Answers an HTTP GET for a file of `size` bytes, honouring `Range: bytes=N-` as zoo's
    downloader sends it: writes the status (200, 206 or 416) and headers, returns
    (status, first byte of the body to send); a 416 has no body."""
    rng = handler.headers.get("Range")
    if rng and rng.startswith("bytes=") and rng.endswith("-") and rng[6:-1].isdigit():
        start = int(rng[6:-1])
        if start >= size:
            handler.send_response(416)
            handler.send_header("Content-Range", f"bytes */{size}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return 416, size
        status = 206
        handler.send_response(206)
        handler.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
    else:
        status, start = 200, 0
        handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(size - start))
    handler.send_header("Accept-Ranges", "bytes")
    handler.end_headers()
    return status, start


class FileServer(http.server.ThreadingHTTPServer):
    """Serves the files of `root` as http://127.0.0.1:PORT/NAME from a daemon thread, answering
    Range requests, `chunk` bytes at a time with `delay` seconds between chunks. Every GET is
    logged in `log` as a dict: epoch (see new_epoch), name, range (the header or None), status,
    sent (body bytes). A name put in `truncate` has its next response cut after half its body."""

    daemon_threads = True

    def __init__(self, root, chunk=64 << 10, delay=0.0):
        super().__init__(("127.0.0.1", 0), _FileHandler)
        self.root, self.chunk, self.delay = root, chunk, delay
        self.lock = threading.Lock()
        self.log = []
        self.truncate = set()
        self.epoch = 0
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def new_epoch(self):
        with self.lock:
            self.epoch += 1
            return self.epoch

    def requests(self, epoch=None):
        """The log entries (of one epoch)."""
        with self.lock:
            return [r for r in self.log if epoch is None or r["epoch"] == epoch]

    def close(self):
        self.shutdown()
        self.server_close()


class _FileHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        server = self.server
        name = self.path.lstrip("/").split("?")[0]
        with server.lock:
            rec = {"epoch": server.epoch, "name": name, "range": self.headers.get("Range"), "status": 0, "sent": 0}
            server.log.append(rec)
            cut = name in server.truncate
            server.truncate.discard(name)
        p = os.path.join(server.root, name)
        if "/" in name or not os.path.isfile(p):
            rec["status"] = 404
            self.send_error(404)
            return
        size = os.path.getsize(p)
        rec["status"], start = send_range_headers(self, size)
        if rec["status"] == 416:
            return
        end = start + (size - start) // 2 if cut else size
        try:
            with open(p, "rb") as fh:
                fh.seek(start)
                while start + rec["sent"] < end:
                    block = fh.read(min(server.chunk, end - start - rec["sent"]))
                    if not block:
                        break
                    self.wfile.write(block)
                    rec["sent"] += len(block)
                    if server.delay > 0:
                        time.sleep(server.delay)
            if cut:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


def dtype_name(dt):
    return str(dt).replace("torch.", "")


# --------------------------------------------------------------------------
# models

def randomize_bn(model):
    """Non-default BN statistics and affine parameters (uses the global torch RNG); returns how many."""
    n = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.num_batches_tracked.fill_(int(torch.randint(1, 100000, ())))
                n += 1
    return n


def build(label, ctor, seed, announce=True):
    """ctor() (random init, weights=None) after torch.manual_seed(seed), BN randomized, eval mode."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    m = ctor()
    n_bn = randomize_bn(m)
    m.eval()
    if announce:
        info(f"built {label} ({n_bn} BatchNorm2d randomized, {time.perf_counter() - t0:.1f} s)")
    return m


def make_input(shape, seed, numpy=True):
    """Standard-normal float32 batch from its own generator; a numpy array, or a tensor."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float32)
    return x.numpy() if numpy else x


def tutorial_vgg11():
    return TutorialVGG([1, 1, 2, 2, 2], num_classes=1000)
