/// Entry points for the fuzz targets in `Fuzz/` (package access: not public API).
package enum Fuzzing {
    /// Unpickles `bytes` as a torch.save pickle whose persistent ids are zip storages of any
    /// size, then extracts the state dict and summarises the rest, as opening a file would.
    package static func unpickle(_ bytes: UnsafeRawBufferPointer) throws -> StateDict {
        let arena = PickleArena()
        var unpickler = Unpickler(bytes: bytes, record: "data.pkl", arena: arena) { pid in
            let fail = { (message: String) in CheckpointError(.corrupt, path: "", at: "data.pkl", message) }
            guard let fields = pid.elements, fields.count >= 5 else { throw fail("persistent id \(pid.kindName)") }
            return .storage(try storageReference(fields[1], key: fields[2], location: fields[3], numel: fields[4], fail: fail))
        }
        let root = try unpickler.load()
        let stateDict = try StateDictExtractor.extract(root, format: .zip, path: "")
        try CheckpointFile.checkExpansion(stateDict)
        return stateDict
    }
}
