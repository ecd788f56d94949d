import Foundation
import Testing
@testable import Checkpoint

/// Broken files: seeded random byte flips, truncations, extensions and overwritten length
/// fields of one fixture per format. Each mutant must end in a `CheckpointError` or in a
/// complete load (every tensor readable); none may crash, hang or allocate without bound. Zip
/// records are CRC-checked, so a zip mutant that loads must load exactly the original tensors.
/// The inputs the fuzzers (`scripts/fuzz`) once found are replayed here too.
@Suite struct MutationTests {
    /// One fixture per reader and layout: zip, strided zip views, legacy, legacy views, tar,
    /// TorchScript, a pickled nn.Module, safetensors.
    static let seeds = ["tiny_net.pth", "views.pth", "tiny_net_legacy.pth", "views_legacy.pth", "tiny_net_tar.pth",
                        "scripted.pt", "pickled_module.pth", "tiny.safetensors"]
    static let mutantsPerSeed = 400

    /// SplitMix64: the same mutants on every run and machine.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    }

    /// What a load gave: every key with its dtype, shape and bytes.
    struct Loaded: Equatable {
        var tensors: [String]
        var data: [[UInt8]]
    }

    /// Opens `path` and reads everything a caller can ask for.
    static func load(_ path: String) throws -> Loaded {
        let checkpoint = try CheckpointFile(path: path)
        var loaded = Loaded(tensors: [], data: [])
        for (key, tensor) in checkpoint.stateDict.entries {
            loaded.tensors.append("\(key) \(tensor.dtype.rawValue) \(tensor.shape)")
            loaded.data.append(try checkpoint.data(of: tensor))
            _ = try checkpoint.floats(of: tensor)
            try checkpoint.streamElements(of: tensor, chunkBytes: 16) { _ in }
        }
        _ = try JSONEncoder().encode(checkpoint.stateDict.metadata.map(\.value))
        return loaded
    }

    static func mutate(_ original: [UInt8], _ random: inout Random) -> [UInt8] {
        var bytes = original
        switch random.below(6) {
        case 0, 1:  // flip 1-4 random bits
            for _ in 0 ... random.below(4) { bytes[random.below(bytes.count)] ^= UInt8(1 << random.below(8)) }
        case 2:     // truncate
            bytes.removeLast(1 + random.below(bytes.count - 1))
        case 3:     // extend with random bytes
            bytes += (0 ..< 1 + random.below(64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        case 4:     // an extreme integer over a random 1-8 byte field (lengths, counts, offsets)
            let width = 1 + random.below(8), at = random.below(bytes.count - width)
            let value: UInt64 = [0, .max, UInt64(Int64.max), 0x8000_0000, 0xFFFF_FFFF, 0x7FFF_FFFF][random.below(6)]
            for i in 0 ..< width { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        default:    // replace a random run with bytes copied from elsewhere in the file
            let count = 1 + random.below(32), from = random.below(bytes.count - count), to = random.below(bytes.count - count)
            bytes.replaceSubrange(to ..< to + count, with: bytes[from ..< from + count])
        }
        return bytes
    }

    @Test(arguments: seeds)
    func mutantsFailCleanlyOrLoad(_ seed: String) throws {
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(seed))))
        let reference = try Self.load(Fixtures.path(seed))
        let isZip = original.starts(with: [0x50, 0x4B, 0x03, 0x04])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-mutant-\(getpid())-\(seed)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var random = Random(state: UInt64(truncatingIfNeeded: seed.utf8.reduce(5381) { $0 &* 33 &+ Int($1) }))
        var refused = 0, identical = 0, different = 0
        for trial in 0 ..< Self.mutantsPerSeed {
            let mutant = Self.mutate(original, &random)
            try Data(mutant).write(to: URL(fileURLWithPath: path))
            do {
                let loaded = try Self.load(path)
                if loaded == reference { identical += 1 } else { different += 1 }
                #expect(!isZip || loaded == reference, "\(seed) mutant \(trial): a zip mutant loaded other tensors than the original")
            } catch let error as CheckpointError {
                refused += 1
                #expect(error.path == path && !error.message.isEmpty, "\(seed) mutant \(trial): \(error)")
            }
        }
        #expect(refused >= Self.mutantsPerSeed / 10, "\(seed): only \(refused) of \(Self.mutantsPerSeed) mutants refused: the mutations miss the format")
        print("mutants of \(seed): \(refused) refused, \(identical) loaded unchanged, \(different) loaded different valid content")
    }

    /// Inputs the fuzzers found (crashes, hangs, runaway allocations), kept once fixed.
    static func findings(_ target: String) -> [String] {
        let folder = Fixtures.folder.appendingPathComponent("fuzz/\(target)").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted().map { folder + "/" + $0 }
    }

    @Test func fuzzFindingsReplay() throws {
        #expect(!Self.findings("pickle").isEmpty)
        for path in Self.findings("pickle") {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            _ = bytes.withUnsafeBytes { try? Fuzzing.unpickle($0) }
        }
        for (target, format) in [("zip", CheckpointFormat.zip), ("legacy", .legacy), ("tar", .tar), ("safetensors", .safetensors)] {
            for path in Self.findings(target) {
                guard let checkpoint = try? CheckpointFile(path: path, format: format) else { continue }
                for (_, tensor) in checkpoint.stateDict.entries {  // every way Fuzz.swift reads a tensor
                    _ = try? checkpoint.data(of: tensor)
                    _ = try? checkpoint.floats(of: tensor)
                    try? checkpoint.streamElements(of: tensor, chunkBytes: 64) { _ in }
                    _ = try? checkpoint.withUnsafeElements(of: tensor, as: Float.self) { $0.reduce(0, +) }
                }
            }
        }
    }
}
