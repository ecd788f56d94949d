/// The tensors of a checkpoint under their state-dict keys, and what else the file holds.
public struct StateDict: Sendable {
    /// Tensors in the order the file lists them, keys after unwrapping and prefix stripping.
    public var entries: [(key: String, tensor: TensorRecord)]
    /// The wrapper key(s) the tensors were found under, dotted (`"state_dict"`); empty at top level.
    public var path: String
    /// The prefix removed from every key (`"module."`, `"_orig_mod."`); empty when none.
    public var strippedPrefix: String
    /// Every top-level entry that is not the state dict (epoch, optimizer, args...), summarised.
    public var metadata: [MetadataValue.Pair]
    /// How the tensors were found, when it was not a plain dict (`"pickled module torchvision...ResNet"`).
    public var source: String?

    /// The keys of `entries`, in file order.
    public var keys: [String] { entries.map(\.key) }

    /// The keys a state dict is looked for under when the file holds a dict of other things
    /// (`state_dict`, `model`, `ema`...), in the order they are tried.
    public static var wrapperKeys: [String] { StateDictExtractor.wrapperKeys }
    /// The prefixes removed when every key starts with one (`module.`, `_orig_mod.`).
    public static var strippablePrefixes: [String] { StateDictExtractor.strippablePrefixes }

    /// The tensor under `key` (after prefix stripping), compared by code points as Python does; nil when absent.
    public subscript(key: String) -> TensorRecord? {
        entries.first { $0.key.utf8.elementsEqual(key.utf8) }?.tensor  // code points, as Python compares
    }
}

/// Finds the state dict inside whatever object a checkpoint holds, without running anything.
enum StateDictExtractor {
    /// Wrapper keys training scripts use, in the order they are tried.
    static let wrapperKeys = ["state_dict", "model_state_dict", "model", "net", "network", "state_dict_ema",
                              "model_ema", "ema", "module", "params", "weights", "student", "teacher"]
    static let strippablePrefixes = ["module.", "_orig_mod."]
    static let maxDepth = 64
    /// Modules visited plus keys produced in one walk: a shared submodule is visited once per
    /// path to it, as `state_dict()` does, and a file could make those paths exponentially many.
    static let maxVisits = 100_000
    /// A key or module path also costs one visit per this many bytes: a walk builds at most
    /// ~50 MB of key text, however long the names and however many paths share them.
    static let keyBytesPerVisit = 512

    static func extract(_ root: PickleValue, format: CheckpointFormat, path: String,
                        scriptClasses: ScriptClasses? = nil) throws -> StateDict {
        if format == .torchscript {
            guard case .object(let module) = root else {
                throw CheckpointError(.unsupported, path: path, "a TorchScript archive whose data.pkl is a \(root.kindName), not a module")
            }
            var entries: [(String, TensorRecord)] = []
            var visits = 0
            try walkScriptModule(module, classes: scriptClasses ?? ScriptClasses(), prefix: "", into: &entries,
                                 depth: 0, visits: &visits, path: path)
            return finish(entries, path: "", metadata: [], source: "TorchScript module \(module.qualifiedName)")
        }
        switch root {
        case .dict(let dict):
            return try fromDict(dict, path: path)
        case .object(let object) where object.stateDict?["_modules"] != nil:
            return try fromModule(object, path: path, at: "")
        default:
            throw CheckpointError(.unsupported, path: path,
                "the checkpoint holds a \(root.kindName), not a dict of tensors or an nn.Module")
        }
    }

    /// Keys and tensors of a dict whose values are all tensors; nil otherwise.
    private static func tensorDict(_ dict: PickleDict) -> [(String, TensorRecord)]? {
        var out: [(String, TensorRecord)] = []
        out.reserveCapacity(dict.count)
        for (key, value) in dict.entries {
            guard let name = key.string, let tensor = value.tensor else { return nil }
            out.append((name, tensor))
        }
        return out
    }

    private static func fromDict(_ dict: PickleDict, path: String) throws -> StateDict {
        if let entries = tensorDict(dict) {
            return finish(entries, path: "", metadata: [], source: nil)
        }
        func metadata(except key: String) -> [MetadataValue.Pair] {
            MetadataValue.summarise(dict.entries.filter { !MetadataValue.keyText($0.key).utf8.elementsEqual(key.utf8) })
        }
        // A wrapper key, then any single entry, holding a dict of tensors or a pickled module.
        let candidates = wrapperKeys.filter { dict[$0] != nil }
            + dict.entries.compactMap { $0.key.string }.filter { !wrapperKeys.contains($0) }
        for key in candidates {
            switch dict[key] {
            case .dict(let inner)?:
                if let entries = tensorDict(inner), !entries.isEmpty {
                    return finish(entries, path: key, metadata: metadata(except: key), source: nil)
                }
            case .object(let object)? where object.stateDict?["_modules"] != nil:
                var found = try fromModule(object, path: path, at: key)
                found.metadata = metadata(except: key)
                return found
            default:
                continue
            }
        }
        // A dict mixing tensors with other values: the tensors are the state dict. A tensor under
        // a bytes or int key would be in torch's dict under a key zoo cannot write: refuse.
        if let odd = dict.entries.first(where: { $0.value.tensor != nil && $0.key.string == nil }) {
            throw CheckpointError(.unsupported, path: path,
                "a tensor is stored under the \(odd.key.kindName) key \(MetadataValue.keyText(odd.key)), not a string: torch's state dict would hold it under that key, which no state dict, safetensors file or model can name")
        }
        let tensors = dict.entries.compactMap { entry in entry.value.tensor.flatMap { t in entry.key.string.map { ($0, t) } } }
        if !tensors.isEmpty {
            let rest = MetadataValue.summarise(dict.entries.filter { $0.value.tensor == nil })
            return finish(tensors, path: "", metadata: rest, source: nil)
        }
        let keys = dict.entries.prefix(12).map { MetadataValue.keyText($0.key) }.joined(separator: ", ")
        throw CheckpointError(.unsupported, path: path,
            "no state dict found: the top-level keys (\(keys)) hold no dict of tensors and no nn.Module")
    }

    private static func visit(_ visits: inout Int, keys: Int, depth: Int, prefix: String, path: String) throws {
        visits += 1 + prefix.utf8.count / keyBytesPerVisit
        guard depth < maxDepth, visits + keys <= maxVisits else {
            throw CheckpointError(.corrupt, path: path, depth < maxDepth
                ? "more than \(maxVisits) submodules and keys, or \(maxVisits * keyBytesPerVisit) bytes of their names (shared modules reached by too many paths), at \(prefix.prefix(200))"
                : "modules nested deeper than \(maxDepth) levels at \(prefix.prefix(200))")
        }
    }

    /// Charges the bytes of the key `prefix + name` before it is built.
    private static func spend(_ visits: inout Int, key prefix: String, _ name: String, keys: Int, path: String) throws {
        visits += (prefix.utf8.count + name.utf8.count) / keyBytesPerVisit
        guard visits + keys < maxVisits else {
            throw CheckpointError(.corrupt, path: path,
                "more than \(maxVisits * keyBytesPerVisit) bytes of keys (long names on shared modules), at \(prefix.prefix(200))")
        }
    }

    /// `torch.save(model)`: walks `_parameters`, persistent `_buffers` and `_modules` of the
    /// inert object tree in the order `nn.Module.state_dict()` uses.
    private static func fromModule(_ module: PickleObject, path: String, at key: String) throws -> StateDict {
        var entries: [(String, TensorRecord)] = []
        var visits = 0
        try walkModule(module, prefix: "", into: &entries, depth: 0, visits: &visits, path: path)
        return finish(entries, path: key, metadata: [], source: "pickled module \(module.qualifiedName)")
    }

    private static func walkModule(_ module: PickleObject, prefix: String, into entries: inout [(String, TensorRecord)],
                                   depth: Int, visits: inout Int, path: String) throws {
        try visit(&visits, keys: entries.count, depth: depth, prefix: prefix, path: path)
        guard let state = module.stateDict else { return }
        let nonPersistent = Set(state["_non_persistent_buffers_set"]?.elements?.compactMap { $0.string.map { Array($0.utf8) } } ?? [])
        for field in ["_parameters", "_buffers"] {
            for (key, value) in state[field]?.dict?.entries ?? [] {
                guard let name = key.string, let tensor = value.tensor, !nonPersistent.contains(Array(name.utf8)) else { continue }
                try spend(&visits, key: prefix, name, keys: entries.count, path: path)
                entries.append((prefix + name, tensor))
            }
        }
        for (key, value) in state["_modules"]?.dict?.entries ?? [] {
            guard let name = key.string, case .object(let child) = value else { continue }
            try walkModule(child, prefix: prefix + name + ".", into: &entries, depth: depth + 1, visits: &visits, path: path)
        }
    }

    /// A TorchScript module's state is a dict of attributes, in slot order. As
    /// `torch.jit.load(f).state_dict()`: the attributes its class declares as parameters, then
    /// those it declares as buffers (None ones skipped), then its submodules (attributes whose
    /// class is a `Module`); plain tensor attributes are in no state dict.
    private static func walkScriptModule(_ module: PickleObject, classes: ScriptClasses, prefix: String,
                                         into entries: inout [(String, TensorRecord)],
                                         depth: Int, visits: inout Int, path: String) throws {
        try visit(&visits, keys: entries.count, depth: depth, prefix: prefix, path: path)
        guard let declaration = classes[module.qualifiedName] else {
            throw CheckpointError(.unsupported, path: path, at: prefix.isEmpty ? "the root module" : String(prefix.dropLast()),
                "TorchScript class \(module.qualifiedName) has no definition in the archive's code/, so its parameters and buffers are unknown")
        }
        let attributes = module.stateDict?.entries ?? []
        for declared in [declaration.parameters, declaration.buffers] {
            let names = Set(declared.map { Array($0.utf8) })
            for (key, value) in attributes {
                guard let name = key.string, names.contains(Array(name.utf8)), let tensor = value.tensor else { continue }
                try spend(&visits, key: prefix, name, keys: entries.count, path: path)
                entries.append((prefix + name, tensor))
            }
        }
        for (key, value) in attributes {
            // A TorchScript object whose class has no definition is refused by the recursion.
            guard let name = key.string, case .object(let child) = value, child.module.hasPrefix("__torch__"),
                  classes[child.qualifiedName]?.isModule != false else { continue }
            try walkScriptModule(child, classes: classes, prefix: prefix + name + ".", into: &entries,
                                 depth: depth + 1, visits: &visits, path: path)
        }
    }

    /// Strips a prefix every key carries, repeatedly (`module._orig_mod.`).
    private static func finish(_ entries: [(String, TensorRecord)], path: String, metadata: [MetadataValue.Pair],
                               source: String?) -> StateDict {
        var entries = entries
        var stripped = ""
        while !entries.isEmpty,
              let prefix = strippablePrefixes.first(where: { p in entries.allSatisfy { $0.0.utf8.starts(with: p.utf8) && $0.0.utf8.count > p.utf8.count } }) {
            // By UTF-8 bytes, as Python's startswith: `hasPrefix` compares characters, and a
            // combining mark after the dot would hide the prefix from it.
            entries = entries.map { (String(decoding: $0.0.utf8.dropFirst(prefix.utf8.count), as: UTF8.self), $0.1) }
            stripped += prefix
        }
        return StateDict(entries: entries.map { (key: $0.0, tensor: $0.1) }, path: path, strippedPrefix: stripped,
                         metadata: metadata, source: source)
    }
}
