/// Which pickle symbols refuse a file outright. The unpickler never calls anything, so this is
/// not what keeps zoo safe; it is a verdict on the file: no honest checkpoint names these, and
/// a user should hear that the file they hold is an attack, not that a tensor is missing.
enum SymbolPolicy {
    /// Modules whose every symbol (and every submodule's) is refused.
    static let hostileModules: Set<String> = [
        "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "_posixsubprocess", "sys", "socket",
        "_socket", "shutil", "runpy", "importlib", "pickle", "_pickle", "cPickle", "dill", "marshal",
        "ctypes", "_ctypes", "multiprocessing", "pty", "code", "codeop", "pdb", "bdb", "timeit",
        "webbrowser", "commands", "popen2", "platform", "signal", "tempfile", "_io", "asyncio",
        "http", "urllib", "urllib2", "requests", "ftplib", "smtplib", "telnetlib", "imp",
        "zipimport", "pydoc", "cProfile", "profile", "trace", "sysconfig", "site", "gc", "inspect",
        "torch.hub", "torch._dynamo", "torch.ops",
    ]

    /// Single symbols of otherwise ordinary modules.
    static let hostileSymbols: Set<String> = [
        "builtins.eval", "builtins.exec", "builtins.compile", "builtins.open", "builtins.getattr",
        "builtins.setattr", "builtins.delattr", "builtins.__import__", "builtins.globals",
        "builtins.locals", "builtins.vars", "builtins.input", "builtins.breakpoint", "builtins.exit",
        "builtins.quit", "builtins.help", "builtins.memoryview", "builtins.apply", "builtins.execfile",
        "builtins.file", "builtins.reload",
        "operator.attrgetter", "operator.methodcaller", "operator.getitem", "functools.partial",
        "functools.reduce", "torch.load",
        "numpy.load", "numpy.testing._private.utils.runstring", "torch.serialization.load",
    ]

    static func isHostile(module: String, name: String) -> Bool {
        let root = module == "__builtin__" ? "builtins" : module
        if hostileSymbols.contains("\(root).\(name)") { return true }
        var prefix = Substring(root)
        while true {
            if hostileModules.contains(String(prefix)) { return true }
            guard let dot = prefix.lastIndex(of: ".") else { return false }
            prefix = prefix[..<dot]
        }
    }
}
