/// Which pickle symbols refuse a file outright. The unpickler never calls anything, so this is
/// not what keeps zoo safe; it is a verdict on the file: no honest checkpoint names these, and
/// a user should hear that the file they hold is an attack, not that a tensor is missing.
///
/// A symbol is what Python's `find_class(module, name)` would return: it imports `module`,
/// then (protocol 4 and later) walks `name` attribute by attribute, so `("pathlib", "os.system")`
/// is `os.system` and `("torch", "serialization.load")` is `torch.serialization.load`. The
/// verdict therefore looks at the whole path, not at the module alone:
///  1. `builtins` (and the Python 2 names unpicklers map onto it) allows only data constructors;
///  2. a dunder attribute anywhere in the name (`__globals__`, `__builtins__`, `__class__`,
///     `__subclasses__`, `__import__`, ...) is object-graph traversal, never data;
///  3. every prefix of `module.name` is checked against the hostile modules and symbols;
///  4. an attribute of the name that is itself a hostile module (`pathlib.os`, `argparse._os`)
///     reaches that module through an innocent one;
///  5. the last attribute is checked against names that run code, start processes, load
///     further pickles or code, or write and delete files, whichever module re-exports them
///     (`io.open`, `numpy.lib.npyio.load`, `torch.storage._load_from_bytes`).
enum SymbolPolicy {
    /// Modules whose every symbol (and every submodule's) is refused.
    static let hostileModules: Set<String> = [
        // Operating system, processes, files.
        "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "_posixsubprocess", "sys", "shutil", "pty",
        "platform", "signal", "tempfile", "_io", "mmap", "fcntl", "multiprocessing", "concurrent", "asyncio",
        "commands", "popen2", "ctypes", "_ctypes", "cffi", "_cffi_backend", "gc", "inspect", "sysconfig", "site",
        // Running or importing code.
        "runpy", "importlib", "imp", "zipimport", "pkgutil", "code", "codeop", "pdb", "bdb", "timeit", "cProfile",
        "profile", "trace", "doctest", "pydoc", "idlelib", "lib2to3", "functools", "_functools", "operator",
        "_operator", "antigravity", "logging.config",
        // Loading further pickles or code objects.
        "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal",
        // Network.
        "socket", "_socket", "ssl", "http", "httplib", "urllib", "urllib2", "requests", "aiohttp", "ftplib",
        "smtplib", "telnetlib", "poplib", "imaplib", "nntplib", "xmlrpc", "socketserver", "webbrowser",
        // Installing packages.
        "pip", "ensurepip", "venv", "distutils", "setuptools",
        // numpy and torch corners that execute, compile or load.
        "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.ctypeslib", "numpy.lib.npyio",
        "torch.hub", "torch._dynamo", "torch._inductor", "torch.ops", "torch.serialization", "torch.package",
        "torch.multiprocessing", "torch.utils.cpp_extension", "torch.utils.collect_env", "torch.utils.bottleneck",
        "torch.utils._config_module", "torch.utils.data.datapipes.utils.decoder", "torch.jit.unsupported_tensor_ops",
        // Command runners, downloaders and file writers outside the namespaces above.
        "_osx_support", "torch.distributed.run", "torch.distributed.launch", "torch.distributed.elastic",
        "torch.distributed.launcher", "torch.utils.model_zoo", "torchvision.io", "torchvision.datasets.utils",
        "logging.handlers", "zipfile", "tarfile", "_pyio", "numpy.lib.format", "sympy.parsing",
        "SimpleHTTPServer", "SocketServer", "BaseHTTPServer", "CGIHTTPServer",
    ]

    /// Single symbols of otherwise ordinary modules.
    static let hostileSymbols: Set<String> = [
        "torch.load", "torch.save", "torch.storage._load_from_bytes", "torch.jit.load",
        "torch.jit._load_for_lite_interpreter", "torch.fx.graph_module.reduce_graph_module",
        "torch.fx.graph_module.reduce_package_graph_module", "torch.fx.graph_module.reduce_deploy_graph_module",
        "torch.fx.experimental.symbolic_shapes.ShapeEnv.evaluate_guards_expression",
        "numpy.load", "numpy.memmap", "numpy.fromfile", "io.FileIO",
        "types.FunctionType", "types.LambdaType", "types.CodeType", "types.MethodType", "types.ModuleType",
        "types.BuiltinFunctionType", "types.BuiltinMethodType", "types.new_class",
        // eval behind a data-looking name.
        "typing.ForwardRef", "typing._eval_type", "typing.get_type_hints", "typing._type_check",
        "sympy.sympify", "sympy.S", "sympy.core.sympify", "sympy.core.sympify.sympify", "sympy.core.S",
        "sympy.simplify", "sympy.parse_expr", "sympy.lambdify", "sympy.utilities.lambdify",
        // File writers.
        "logging.FileHandler", "logging.basicConfig", "numpy.save", "numpy.savez", "numpy.savez_compressed",
        "numpy.savetxt", "numpy.ndarray.tofile", "numpy.ndarray.dump",
        "pathlib.Path.touch", "pathlib.Path.mkdir", "pathlib.Path.write_text", "pathlib.Path.write_bytes",
        "pathlib.Path.symlink_to", "pathlib.Path.hardlink_to", "pathlib.Path.replace", "pathlib.PosixPath.touch",
        "pathlib.PosixPath.mkdir", "pathlib.PosixPath.replace", "pathlib.WindowsPath.touch", "pathlib.WindowsPath.mkdir",
    ]

    /// Names that are attacks whichever module they come from (re-exports, aliases, methods).
    static let hostileNames: Set<String> = [
        "system", "popen", "Popen", "spawn", "posix_spawn", "posix_spawnp", "startfile", "fork", "forkpty",
        "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
        "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe",
        "check_output", "check_call", "getoutput", "getstatusoutput",
        "exec", "eval", "execfile", "compile_file", "runstring", "runcode", "runsource", "run_code", "_run_code",
        "_run_module_code", "run_path", "run_module", "runctx", "runcall", "interact", "breakpoint", "set_trace",
        "import_module", "load_library", "LoadLibrary", "dlopen", "CDLL", "PyDLL",
        "getattr", "setattr", "delattr", "attrgetter", "methodcaller", "itemgetter",
        "load", "loads", "_load_from_bytes", "unsafe_load", "full_load", "load_model", "read_pickle",
        "open", "open_code", "write_text", "write_bytes", "rmtree", "remove", "removedirs", "unlink", "rmdir",
        "rename", "chmod", "chown", "symlink", "kill", "killpg",
        "_get_command_stdout", "_popen", "_find_mac_near_keyword", "_find_mac_under_heading", "_find_mac",
        "exec_with_source", "_exec_with_source", "_forward_from_src", "_method_from_src",
        "load_url", "load_state_dict_from_url", "download_url_to_file", "urlretrieve", "urlopen",
        "sympify", "parse_expr", "lambdify", "_evaluate", "savez", "savez_compressed", "savetxt", "tofile",
        "open_memmap", "write_array", "touch", "mkdir", "makedirs", "write_file", "write_png", "write_jpeg",
        "write_video", "FileHandler", "RotatingFileHandler", "TimedRotatingFileHandler", "WatchedFileHandler",
    ]

    /// What `builtins` may contribute: constructors of plain data (and the Python 2 names
    /// that unpicklers map onto them).
    static let builtinData: Set<String> = [
        "set", "frozenset", "bytearray", "bytes", "dict", "list", "tuple", "slice", "complex", "range",
        "object", "int", "float", "str", "bool", "Ellipsis", "NotImplemented", "long", "unicode", "xrange",
    ]

    /// Dunder names a data pickle may carry: copyreg's NEWOBJ helpers for protocols 0 and 1.
    static let allowedDunders: Set<String> = ["__newobj__", "__newobj_ex__"]

    /// Python 2 module names that Python 3 unpicklers (`fix_imports`) resolve to another module.
    static let python2Modules: [String: String] = [
        "__builtin__": "builtins", "exceptions": "builtins", "copy_reg": "copyreg", "cPickle": "pickle",
        "commands": "subprocess", "httplib": "http.client", "urllib2": "urllib.request", "cStringIO": "io",
        "StringIO": "io", "thread": "_thread",
    ]

    /// The longest entry of `hostileModules` and `hostileSymbols`: no longer prefix can match.
    static let longestListed = hostileModules.union(hostileSymbols).map(\.utf8.count).max() ?? 0

    static func isHostile(module: String, name: String) -> Bool {
        let root = python2Modules[module] ?? module
        let nameParts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)

        // 1. builtins: data constructors only.
        if root == "builtins" {
            return !(nameParts.count == 1 && builtinData.contains(name))
        }
        // 2. Dunder attributes: traversal of the object graph.
        for part in nameParts where part.count > 4 && part.hasPrefix("__") && part.hasSuffix("__") {
            if !allowedDunders.contains(part) { return true }
        }
        // 3. Every prefix of the full path, up to the longest listed one (linear in the dots).
        var path = ""
        for part in (root.split(separator: ".", omittingEmptySubsequences: false) + nameParts.map { Substring($0) }) {
            path = path.isEmpty ? String(part) : path + "." + part
            if path.utf8.count > longestListed { break }
            if hostileModules.contains(path) || hostileSymbols.contains(path) { return true }
        }
        // 4. A hostile module reached as an attribute (`pathlib.os`, `argparse._os`).
        for part in nameParts {
            let bare = String(part.drop(while: { $0 == "_" }))
            if hostileModules.contains(part) || hostileModules.contains(bare) || bare == "builtins" { return true }
        }
        // 5. Execution primitives under any module.
        return hostileNames.contains(nameParts.last ?? name)
    }
}
