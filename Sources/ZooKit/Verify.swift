import Checkpoint
import Foundation
import Models

/// `zoo verify`: integrity (hashes), structure (keys, shapes, dtypes, finite values, positive
/// BatchNorm variances) and the forward pass (a fixed probe against a reference).
extension Zoo {
    /// What `zoo verify` found for one cached model or file; `ok` is encoded too.
    public struct VerifyReport: Sendable, Codable {
        /// The cached model's name, or the path of the file verified.
        public var target: String
        /// The architecture's name; nil when it could not be determined.
        public var architecture: String?
        /// The checks and their results.
        public var verification: Verification
        /// True when every check passed.
        public var ok: Bool { verification.ok }

        enum CodingKeys: String, CodingKey { case target, architecture, verification, ok }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(target, forKey: .target)
            try c.encodeIfPresent(architecture, forKey: .architecture)
            try c.encode(verification, forKey: .verification)
            try c.encode(ok, forKey: .ok)
        }

        /// A report on `target`.
        ///
        /// - Parameters:
        ///   - target: The cached model's name or the file's path.
        ///   - architecture: The architecture's name, when known.
        ///   - verification: The checks run.
        public init(target: String, architecture: String?, verification: Verification) {
            self.target = target
            self.architecture = architecture
            self.verification = verification
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            target = try c.decode(String.self, forKey: .target)
            architecture = try c.decodeIfPresent(String.self, forKey: .architecture)
            verification = try c.decode(Verification.self, forKey: .verification)
        }
    }

    /// Relative tolerance of the forward check: max |got - reference| <= tolerance * max |reference|.
    public static let tolerance: Float = 1e-4

    /// Verifies a cached model by name, or any checkpoint file by path.
    /// - Parameters:
    ///   - target: a cached model's name, or a checkpoint file.
    ///   - input: a probe batch (`.npy`), with `expect`.
    ///   - expect: the output `input` must give (`.npy`).
    ///   - againstTorch: also run the probe through PyTorch (needs a Python with torch and torchvision).
    public func verify(_ target: String, input: String? = nil, expect: String? = nil, againstTorch: Bool = false) throws -> VerifyReport {
        if !FileManager.default.fileExists(atPath: target),
           let report = try verifyCached(named: target, input: input, expect: expect, againstTorch: againstTorch) {
            return report
        }
        guard FileManager.default.fileExists(atPath: target) else {
            if (try? catalog.entry(target)) != nil {
                throw ZooError(.usage, "\(target) is not cached", fix: "zoo pull \(target)")
            }
            throw ZooError(.usage, "\(target) is neither a cached model nor a file", fix: "zoo list shows the cached models")
        }
        return try verifyFile(target, input: input, expect: expect, againstTorch: againstTorch)
    }

    /// Verifies the cached model `target` names (see `cacheName`) and records the result; nil
    /// when none is cached. The index is read once, under the model's lock (an import may be
    /// replacing the entry), so the lock is taken on the name `target` most likely resolves to,
    /// the catalog's, and taken again only when the index resolves it to another.
    func verifyCached(named target: String, input: String?, expect: String?, againstTorch: Bool) throws -> VerifyReport? {
        let catalogName = (try? catalog.entry(target).name) ?? target
        var lockName = catalogName
        for _ in 0 ..< 3 {
            let outcome = try cache.withLock(Cache.modelLock(lockName)) { () -> (report: VerifyReport?, relock: String?) in
                let index = try cache.index()
                let canonical = cacheName(target, in: index)
                guard canonical == lockName else { return (nil, canonical) }
                guard let cached = index.models[canonical] else { return (nil, nil) }
                let report = try verifyCached(cached, input: input, expect: expect, againstTorch: againstTorch, index: index)
                try cache.updateIndex { index in
                    if index.models[canonical]?.nativeSHA256 == cached.nativeSHA256, index.models[canonical]?.sha256 == cached.sha256 {
                        index.models[canonical]?.verification = report.verification
                    }
                }
                return (report, nil)
            }
            guard let relock = outcome.relock else { return outcome.report }
            lockName = relock
        }
        throw ZooError(.io, "the cache index kept changing while \(target) was looked up", fix: "try again")
    }

    /// What an import has just read and computed, which its verification reuses instead of
    /// reading the files again: the original's checkpoint and the model loaded from it (the
    /// native file was compared with the original byte for byte as it was written), and the hashes.
    struct Imported {
        var checkpoint: CheckpointFile
        var model: Model
        var sha256: String
        var nativeSHA256: String
    }

    /// - Parameter index: the index `entry` was read from, when the caller has it.
    func verifyCached(_ entry: CacheEntry, input: String? = nil, expect: String? = nil, againstTorch: Bool,
                      imported: Imported? = nil, index: CacheIndex? = nil) throws -> VerifyReport {
        var checks: [Verification.Check] = []
        if let official = officialEntry(named: entry.name), let (expected, pin) = expectedHash(official, index: try index ?? cache.index()) {
            checks.append(catalogCheck(official, sha256: entry.sha256, expected: expected, pin: pin))
        }
        if againstTorch && entry.original == nil { throw originalNotKept(entry, needed: "verify --against-torch") }
        let original = entry.original.map(cache.path)
        if let original {
            checks.append(hashCheck("integrity: original", original, expected: entry.sha256, computed: imported?.sha256))
        } else {
            checks.append(.init(name: "integrity: original", ok: true,
                                detail: imported != nil ? "SHA-256 \(entry.sha256.prefix(16))... matched; not kept (--no-original)"
                                    : "skipped: not kept (--no-original or zoo prune --originals); \(fetchAgain(entry)) fetches it again"))
        }
        if let native = entry.native, let sha = entry.nativeSHA256 {
            checks.append(hashCheck("integrity: native", cache.path(native), expected: sha, computed: imported?.nativeSHA256))
        }
        guard let file = entry.loadable.map(cache.path) else {
            throw ZooError(.io, "\(entry.name) is cached without a file to verify", fix: fetchAgain(entry))
        }
        let architecture = try self.architecture(of: entry)
        let (structure, model) = imported.map { structureCheck($0.checkpoint, architecture: architecture, loaded: $0.model) }
            ?? structureCheck(file, architecture: architecture)
        checks.append(structure)
        if let model {
            if let input, let expect {
                checks.append(forwardCheck(model, input: try NPY.read(path: input), expected: try NPY.read(path: expect), against: expect))
            } else if let reference = entry.reference, let shape = entry.probeShape {
                checks.append(forwardCheck(model, input: Synthetic.input(shape), expected: try? NPY.read(path: cache.path(reference)),
                                           against: "the reference recorded at import (\(entry.referenceSource ?? "zoo"))"))
            }
            if againstTorch, let original {  // refused above when no original is kept
                let probe = try input.map(NPY.read) ?? Synthetic.input(entry.probeShape ?? Self.probeShape(architecture, catalogEntry: nil))
                checks.append(try torchCheck(model, architecture: architecture, original: original, native: entry.native.map(cache.path), input: probe))
            }
        }
        return VerifyReport(target: entry.name, architecture: architecture.name, verification: Verification(time: Self.now(), checks: checks))
    }

    func verifyFile(_ path: String, input: String?, expect: String?, againstTorch: Bool) throws -> VerifyReport {
        var checks: [Verification.Check] = []
        let file = URL(fileURLWithPath: path).lastPathComponent
        if let prefix = catalog.entries.first(where: { $0.file == file })?.expectedHash ?? HashPrefix.of(fileName: file) {
            checks.append(hashCheck("integrity: hash in the file name", path, expected: prefix))
        }
        let checkpoint = try CheckpointFile(path: path)
        let architecture = try Architecture.detect(checkpoint)
        let (structure, model) = structureCheck(checkpoint, architecture: architecture)
        checks.append(structure)
        if let model {
            if let input, let expect {
                checks.append(forwardCheck(model, input: try NPY.read(path: input), expected: try NPY.read(path: expect), against: expect))
            } else if input != nil || expect != nil {
                throw ZooError(.usage, "--input and --expect go together")
            }
            if againstTorch {
                let probe = try input.map(NPY.read) ?? Synthetic.input(Self.probeShape(architecture, catalogEntry: nil))
                checks.append(try torchCheck(model, architecture: architecture, original: path, native: nil, input: probe))
            }
            if !checks.contains(where: { $0.name.hasPrefix("forward") || $0.name.hasPrefix("torch") }) {
                checks.append(.init(name: "forward", ok: true,
                                    detail: "skipped: no reference for a file outside the cache (pass --input X.npy --expect Y.npy, or --against-torch, or zoo import it)"))
            }
        }
        return VerifyReport(target: path, architecture: architecture.name, verification: Verification(time: Self.now(), checks: checks))
    }

    // MARK: The checks

    /// Whether a model under a catalog name holds the catalog's file.
    func catalogCheck(_ official: CatalogEntry, sha256: String, expected: String, pin: HashPin) -> Verification.Check {
        let ok = sha256.lowercased().hasPrefix(expected)
        let by = switch pin {
        case .catalog: "pinned by the catalog"
        case .firstUse: "pinned at its first download or import"
        case .prefix: "only the catalog's prefix is known"
        }
        return .init(name: "catalog", ok: ok, detail: ok ? "the original is \(official.name)'s file (SHA-256 \(by))"
                     : "the original's SHA-256 \(sha256) is not \(official.name)'s \(expected) (\(by)); zoo rm it and zoo pull \(official.name)")
    }

    /// - Parameter computed: the file's SHA-256 when the caller has just computed it.
    func hashCheck(_ name: String, _ path: String, expected: String, computed: String? = nil) -> Verification.Check {
        guard let sha = computed ?? (try? SHA256Hasher.file(path)) else {
            return .init(name: name, ok: false, detail: "\(path) cannot be read")
        }
        let ok = sha.hasPrefix(expected.lowercased())
        return .init(name: name, ok: ok, detail: ok ? "SHA-256 \(sha.prefix(16))... matches" : "SHA-256 \(sha) does not match the expected \(expected)")
    }

    /// Strict load, dtypes, finite values, positive BatchNorm variances.
    func structureCheck(_ path: String, architecture: Architecture) -> (Verification.Check, Model?) {
        do {
            return structureCheck(try CheckpointFile(path: path), architecture: architecture)
        } catch {
            return (.init(name: "structure", ok: false, detail: "\(error)"), nil)
        }
    }

    /// The same for an open checkpoint; `loaded` is a model already loaded from it.
    func structureCheck(_ checkpoint: CheckpointFile, architecture: Architecture, loaded: Model? = nil) -> (Verification.Check, Model?) {
        let name = "structure"
        do {
            var problems: [String] = []
            for (key, tensor) in checkpoint.stateDict.entries {
                let counter = key.hasSuffix("num_batches_tracked")
                if counter != (tensor.dtype == .int64) {
                    problems.append("\(key) is \(tensor.dtype.rawValue), expected \(counter ? "int64" : "a floating type")")
                }
            }
            let model: Model
            if let loaded {
                model = loaded
            } else {
                model = architecture.build()
                try model.load(checkpoint)
            }
            for (key, parameter) in model.namedParameters where parameter.kind != .counter {
                if let bad = parameter.values.firstIndex(where: { !$0.isFinite }) {
                    problems.append("\(key)[\(bad)] is \(parameter.values[bad])")
                }
                if key.hasSuffix("running_var"), let bad = parameter.values.firstIndex(where: { $0 <= 0 }) {
                    problems.append("\(key)[\(bad)] = \(parameter.values[bad]) is not a positive variance")
                }
            }
            let detail = problems.isEmpty
                ? "\(checkpoint.stateDict.entries.count) tensors fit \(architecture.name) exactly; all finite; variances positive"
                : problems.prefix(5).joined(separator: "; ") + (problems.count > 5 ? "; and \(problems.count - 5) more" : "")
            return (.init(name: name, ok: problems.isEmpty, detail: detail), problems.isEmpty ? model : nil)
        } catch {
            return (.init(name: name, ok: false, detail: "\(error)"), nil)
        }
    }

    func forwardCheck(_ model: Model, input: Tensor, expected: Tensor?, against: String, name: String = "forward") -> Verification.Check {
        guard let expected else { return .init(name: name, ok: false, detail: "the reference output is missing or unreadable") }
        do {
            let output = try model.forward(input)
            guard output.shape == expected.shape else {
                return .init(name: name, ok: false, detail: "output shape \(output.shape), reference \(expected.shape)")
            }
            let ratio = output.maxDifference(expected) / max(expected.maxMagnitude, .leastNormalMagnitude)
            let ok = ratio <= Self.tolerance
            return .init(name: name, ok: ok, detail: String(format: "max |diff| / max |reference| = %.2e (limit %.0e) against %@", ratio, Self.tolerance, against))
        } catch {
            return .init(name: name, ok: false, detail: "\(error)")
        }
    }
}
