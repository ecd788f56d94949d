import Checkpoint
import Foundation
import Models
#if canImport(Glibc)
import Glibc
#endif

/// `zoo import`: a checkpoint copied into the cache, converted to the native format, verified.
extension Zoo {
    /// Copies a checkpoint into the cache, converts it to the native format and verifies it.
    /// - Parameters:
    ///   - path: the checkpoint, in any format zoo reads.
    ///   - name: the cache name (default: the catalog name of a catalog file, else the file's stem).
    ///   - architecture: a named architecture; detected from the keys when nil.
    ///   - force: import even when the hash prefix in the file name does not match.
    ///   - keepOriginal: false: keep only the native file (and the probe reference), not a copy of `path`.
    public func importFile(_ path: String, name: String? = nil, architecture: String? = nil, force: Bool = false,
                           keepOriginal: Bool = true) throws -> CacheEntry {
        try Self.checkFile(path)
        let file = URL(fileURLWithPath: path).lastPathComponent
        let catalogEntry = catalog.entries.first { $0.file == file }
        let name = name ?? catalogEntry?.name ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        try Self.checkName(name)
        return try cache.withLock(Cache.workLock, shared: true) {
            try cache.withLock(Cache.modelLock(name)) {
                try importLocked(path, name: name, catalogEntry: catalogEntry, architecture: architecture, force: force,
                                 source: URL(fileURLWithPath: path).standardized.path, copy: true, keepOriginal: keepOriginal)
            }
        }
    }

    /// Imports under the model's lock, each step once: the original is opened once and hashed
    /// once (unless the caller has just hashed it: `sha256`), one model is built and loaded, the
    /// native file is hashed as it is written, and verification reuses all of these.
    func importLocked(_ path: String, name: String, catalogEntry: CatalogEntry?, architecture: String?, force: Bool,
                      source: String, copy: Bool, sha256 known: String? = nil, keepOriginal: Bool = true) throws -> CacheEntry {
        let checkpoint = try CheckpointFile(path: path)
        // The hash runs on the second core while the first builds the model and loads it.
        let hashing = known == nil ? BackgroundTask { try SHA256Hasher.file(path) } : nil
        let loaded = Result { () throws -> (Architecture, Model) in
            let arch: Architecture
            if let architecture {
                arch = try Architecture.named(architecture).withClassCount(of: checkpoint)
            } else if let catalogEntry, catalogEntry.architecture != nil || catalogEntry.resnet != nil {
                arch = try catalogEntry.resolvedArchitecture().withClassCount(of: checkpoint)
            } else {
                arch = try Architecture.detect(checkpoint)
            }
            let model = arch.build()
            try model.load(checkpoint)
            return (arch, model)
        }
        let sha = try known ?? hashing!.wait()  // one of the two is always set
        let file = URL(fileURLWithPath: path).lastPathComponent
        // A catalog name holds only the catalog's file, --force or not.
        if let official = officialEntry(named: name) {
            try checkOfficial(official, sha256: sha, index: try cache.index(), what: file,
                              fix: "import it under a name of your own: zoo import \(path) --name my-\(name)")
        } else if let expected = catalogEntry?.expectedHash ?? HashPrefix.of(fileName: file), !sha.hasPrefix(expected.lowercased()), !force {
            throw ZooError(.failed, "\(file): SHA-256 is \(sha) but \(catalogEntry != nil ? "the catalog" : "the file name") expects \(expected)...",
                           fix: "the file is damaged or not the published one; re-download it, or pass --force to import it anyway")
        }
        let (arch, model) = try loaded.get()

        // The original under its own name, in a folder named by its hash, so that two different
        // files of the same name never replace each other; renamed into place when complete. The
        // copy runs on the second core while the first writes the native file.
        let original = "originals/\(sha.prefix(16))/" + file
        if keepOriginal {
            try FileManager.default.createDirectory(atPath: cache.path("originals/\(sha.prefix(16))"), withIntermediateDirectories: true)
        }
        var copying: BackgroundTask<Void>?
        if !keepOriginal {
            // --no-original: the native file is made from `path` where it is; a download of zoo's
            // own is removed once the index records the import.
        } else if URL(fileURLWithPath: path).standardized.path != URL(fileURLWithPath: cache.path(original)).standardized.path {
            if copy {
                let destination = cache.path(original)
                if isInTorchCache(path) {
                    // A file of PyTorch's cache is shared as pull shares it: hard-linked (then
                    // hashed again under its temporary name), or copied on another file system.
                    copying = BackgroundTask { _ = try Self.linkOrCopy(path, to: destination, expected: sha) }
                } else {
                    copying = BackgroundTask { try Self.copyFile(path, to: destination) }
                }
            } else if rename(path, cache.path(original)) != 0 {
                throw ZooError(.io, "cannot move \(path) into the cache: \(String(cString: strerror(errno)))")
            }
        }
        // The native file and the reference are named by the native file's own hash, so that a
        // model imported again never overwrites the files its current index entry points at: a
        // crash before the index update leaves the old version whole (and the new files orphans).
        // The checkpoint opened above still reads the same bytes (copied, or moved: same inode).
        let staging = "native/.\(name).incoming.safetensors"
        let written: NativeWriter.Report
        do {
            written = try NativeWriter.write(checkpoint, to: cache.path(staging),
                                             options: .init(architecture: arch.name, version: zooVersion, sourceSHA256: sha))
            try copying?.wait()
        } catch {
            _ = try? copying?.wait()  // no-op when it already finished or failed
            unlink(cache.path(staging))
            throw error
        }
        let nativeSHA = written.sha256!  // set whenever sourceSHA256 is given
        let native = "native/\(name).\(nativeSHA.prefix(12)).safetensors"
        guard rename(cache.path(staging), cache.path(native)) == 0 else {
            throw ZooError(.io, "cannot move \(cache.path(staging)) to \(cache.path(native)): \(String(cString: strerror(errno)))")
        }
        AtomicFile.syncFolder(cache.native)

        // The probe reference: this model's output on the fixed probe input, from the original file.
        let probe = Self.probeShape(arch, catalogEntry: catalogEntry)
        let reference = "references/\(name).\(nativeSHA.prefix(12)).npy"
        try NPY.write(try model.forward(Synthetic.input(probe)), to: cache.path(reference))

        var entry = CacheEntry(name: name, source: source, original: keepOriginal ? original : nil, sha256: sha, native: native, nativeSHA256: nativeSHA,
                               architecture: arch.name, resnet: Self.customResNet(arch), numClasses: arch.numClasses,
                               importedAt: Self.now(), probeShape: probe, reference: reference, referenceSource: "zoo",
                               verification: nil)
        entry.verification = try verifyCached(entry, againstTorch: false,
                                              imported: Imported(checkpoint: checkpoint, model: model, sha256: sha, nativeSHA256: nativeSHA)).verification
        let foreign = checkpoint.foreignSymbols.map(\.name)
        entry.foreignSymbols = foreign.isEmpty ? nil : foreign
        let recorded = entry
        let pinned = sha.hasPrefix((catalogEntry?.expectedHash ?? "-").lowercased()) ? catalogEntry : nil
        let previous = try cache.updateIndex { index -> CacheEntry? in
            defer {
                index.models[name] = recorded
                Self.pinOnFirstUse(pinned, sha256: sha, in: &index)
            }
            return index.models[name]
        }
        // The replaced version's native file and reference (named after this model, so no other
        // entry uses them). Its original may be shared; zoo prune removes it when it is not.
        for old in [previous?.native, previous?.reference].compactMap({ $0 }) where old != native && old != reference {
            unlink(cache.path(old))
        }
        if !keepOriginal && !copy { unlink(path) }  // zoo's own download, not kept
        return entry
    }

    /// A ResNet configuration that has no name, so the index can rebuild it.
    static func customResNet(_ architecture: Architecture) -> ResNetConfig? {
        guard case .resnet(let config) = architecture, architecture.name.hasPrefix("resnet(") else { return nil }
        return config
    }

    /// The fixed probe input's shape: small but exercising every layer.
    static func probeShape(_ architecture: Architecture, catalogEntry: CatalogEntry?) -> [Int] {
        if let shape = catalogEntry?.inputShape { return [1] + shape }
        switch architecture {
        case .tutorialVGG: return [1, 3, 224, 224]
        case .vgg: return [1, 3, 32, 32]
        case .resnet: return [1, 3, 64, 64]
        }
    }

    /// Whether `path` is a file in PyTorch's checkpoint cache (`$TORCH_HOME/hub/checkpoints`),
    /// links resolved: PyTorch replaces those files and never edits them, so zoo may share them.
    func isInTorchCache(_ path: String) -> Bool {
        let folder = URL(fileURLWithPath: path).resolvingSymlinksInPath().deletingLastPathComponent().standardized.path
        return folder == URL(fileURLWithPath: Cache.torchCheckpoints(environment)).resolvingSymlinksInPath().standardized.path
    }

    /// Copies `source` into place through `AtomicFile` with sendfile(2): the kernel copies page
    /// to page. (FileHandle.read(upToCount:) reads 4 KiB per system call here: 135,000 of them
    /// for a 553 MB file, most of an import's time.)
    /// - Parameter verify: called with the complete temporary copy before it is renamed into place.
    static func copyFile(_ source: String, to destination: String, verify: (String) throws -> Void = { _ in }) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw ZooError(.io, "cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        try AtomicFile.write(to: destination, { output in
            #if os(Linux)
            while true {
                let n = sendfile(output.fileDescriptor, input, nil, 1 << 30)
                if n == 0 { break }
                if n < 0 && errno != EINTR {
                    throw ZooError(.io, "cannot copy \(source) into the cache: \(String(cString: strerror(errno)))")
                }
            }
            #else
            let reader = FileHandle(fileDescriptor: input, closeOnDealloc: false)
            while let block = try reader.read(upToCount: 8 << 20), !block.isEmpty { try output.write(contentsOf: block) }
            #endif
        }, verify: verify)
    }

    /// Puts `source` at `destination` as a hard link (link(2): the same file, no byte copied)
    /// when both are on one file system and linking is allowed, else as a copy (`copyFile`). Either
    /// way the new name is made under a temporary name, hashed, and renamed into place only when
    /// its SHA-256 starts with `expected`; a mismatch is a `.failed` error and leaves nothing behind.
    /// A linked file is shared: a change made to it in place through the other name would change
    /// zoo's copy too (`zoo verify` would see it); PyTorch replaces files, it does not edit them.
    /// - Parameter makeLink: link(2), replaceable in tests.
    /// - Returns: the file's SHA-256, and whether it was linked.
    static func linkOrCopy(_ source: String, to destination: String, expected: String,
                           makeLink: (String, String) -> Int32 = { link($0, $1) }) throws -> (sha256: String, linked: Bool) {
        var sha = ""
        func check(_ temporary: String) throws {
            sha = try SHA256Hasher.file(temporary)
            guard sha.hasPrefix(expected.lowercased()) else {
                throw ZooError(.failed, "\(source): SHA-256 is \(sha), expected \(expected)...", file: source)
            }
        }
        AtomicFile.removeStale(for: destination)
        let temporary = AtomicFile.temporaryName(for: destination)
        guard makeLink(source, temporary) == 0 else {  // EXDEV (another file system), EPERM (protected_hardlinks), ...
            try copyFile(source, to: destination, verify: check)
            return (sha, false)
        }
        do {
            try check(temporary)
            guard rename(temporary, destination) == 0 else {
                throw ZooError(.io, "cannot move \(temporary) to \(destination): \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            throw error
        }
        AtomicFile.syncFolder((destination as NSString).deletingLastPathComponent)
        return (sha, true)
    }
}
