import Foundation
import Testing
@testable import Checkpoint

/// The work budgets of SECURITY.md §2, each against a small input that would cost a reader
/// without it gigabytes or minutes (the whole-file versions are Tests/Fixtures/make_bombs.py,
/// run by Tests/Interop/check_bombs.py).
struct BoundsTests {
    static func le32(_ n: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(n).littleEndian, Array.init) }
    static func le16(_ n: Int) -> [UInt8] { withUnsafeBytes(of: UInt16(n).littleEndian, Array.init) }

    static func run(_ bytes: [UInt8], fileBytes: Int? = nil) throws -> PickleValue {
        try bytes.withUnsafeBytes { raw in
            var u = Unpickler(bytes: raw, record: "bomb.pkl", fileBytes: fileBytes, arena: PickleArena()) { _ in .none }
            return try u.load()
        }
    }

    static func binUnicode(_ text: String) -> [UInt8] { [0x58] + le32(text.utf8.count) + Array(text.utf8) }

    @Test func inflatedPickleRunsOutOfValues() throws {
        // 3M empty lists from a pickle said to occupy 1,000 bytes of the file (as a deflated
        // data.pkl would): the value budget (2^20 + 4 per file byte) stops it.
        var bytes: [UInt8] = [0x80, 0x02, 0x5D]
        for _ in 0 ..< 3 { bytes += [0x28] + Array(repeating: 0x5D, count: 1_000_000) + [0x65] }
        bytes += [0x2E]
        #expect {
            try Self.run(bytes, fileBytes: 1_000)
        } throws: { error in
            (error as? CheckpointError)?.kind == .corrupt && "\(error)".contains("values from 1000 bytes")
        }
        // The same pickle stored (its own size in the file) is read.
        let arena = PickleArena()  // kept alive: the arena empties its lists when freed
        let count = try bytes.withUnsafeBytes { raw in
            var u = Unpickler(bytes: raw, record: "stored.pkl", arena: arena) { _ in .none }
            return try u.load().elements?.count
        }
        #expect(count == 3_000_000)
    }

    @Test func longKeySetAgainAndAgainIsBounded() throws {
        // {k: 0} with a 256 KB key, then 100,000 more SETITEMs of the memoised key: 25 GB of hashing.
        var bytes: [UInt8] = [0x80, 0x02, 0x7D] + Self.binUnicode(String(repeating: "k", count: 256 << 10)) + [0x71, 0, 0x4B, 0, 0x73]
        for _ in 0 ..< 100_000 { bytes += [0x68, 0, 0x4B, 0, 0x73] }
        bytes += [0x2E]
        let clock = ContinuousClock()
        let start = clock.now
        #expect {
            try Self.run(bytes)
        } throws: { error in
            (error as? CheckpointError)?.kind == .corrupt && "\(error)".contains("copy more than")
        }
        #expect(clock.now - start < .seconds(5))
    }

    @Test func longDottedSymbolIsCheckedInLinearTime() {
        let module = Array(repeating: "a", count: 250_000).joined(separator: ".")
        let clock = ContinuousClock()
        let start = clock.now
        #expect(!SymbolPolicy.isHostile(module: module, name: "b"))
        #expect(SymbolPolicy.isHostile(module: "os." + module, name: "b"))
        #expect(clock.now - start < .seconds(2))
    }

    @Test func sharedLongStringIsRenderedWithinTheTextBudget() {
        // 64^3 references to one 256 KB string: 64 GB of text if each were rendered.
        let arena = PickleArena()
        var level = PickleValue.string(String(repeating: "x", count: 256 << 10))
        for _ in 0 ..< 3 { level = .list(arena.list(Array(repeating: level, count: 64))) }
        let summary = MetadataValue.summarise([(key: .string("meta"), value: level)])
        let text = try? JSONEncoder().encode(MetadataValue.object(summary))
        #expect((text?.count ?? .max) < 8 << 20)
    }

    @Test func longNamesOnSharedModulesAreBounded() throws {
        // 30 levels, each holding the next twice under 8 KB names: keys of ~250 KB each.
        let arena = PickleArena()
        let weight = try TensorRecord.validated(storage: StorageRef(key: "0", dtype: .float32, byteCount: 4, location: "cpu"),
                                                dtype: .float32, shape: [1], strides: [1], storageOffset: 0)
        func module(_ children: [(String, PickleValue)], parameters: [(String, PickleValue)] = []) -> PickleValue {
            let state = arena.dict(), modules = arena.dict(), params = arena.dict()
            for (name, child) in children { modules.set(.string(name), child) }
            for (name, value) in parameters { params.set(.string(name), value) }
            state.set(.string("_parameters"), .dict(params))
            state.set(.string("_modules"), .dict(modules))
            let object = arena.object(module: "torch.nn.modules.module", name: "Module", arguments: [])
            object.state = .dict(state)
            return .object(object)
        }
        var level = module([], parameters: [("w", .tensor(weight))])
        for depth in 0 ..< 30 {
            level = module([(String(repeating: "a\(depth)", count: 3000), level), (String(repeating: "b\(depth)", count: 3000), level)])
        }
        let clock = ContinuousClock()
        let start = clock.now
        #expect {
            try StateDictExtractor.extract(level, format: .zip, path: "walk.pth")
        } throws: { error in
            (error as? CheckpointError)?.kind == .corrupt && "\(error)".contains("bytes of")
        }
        #expect(clock.now - start < .seconds(5))
    }

    /// A zip of one stored record plus `extra` central-directory entries pointing at its body.
    static func overlappingZip(extra: Int) -> [UInt8] {
        let name = Array("archive/data/0".utf8), body = [UInt8](repeating: 0, count: 64)
        var out: [UInt8] = le32(0x0403_4B50) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21)
        out += le32(0) + le32(body.count) + le32(body.count) + le16(name.count) + le16(0) + name + body
        let start = out.count
        for k in 0 ... extra {
            let n = Array("archive/data/\(k)".utf8)
            out += le32(0x0201_4B50) + le16(20) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21)
            out += le32(0) + le32(body.count) + le32(body.count) + le16(n.count) + le16(0) + le16(0) + le16(0) + le16(0)
            out += le32(0) + le32(0) + n
        }
        let size = out.count - start
        out += le32(0x0605_4B50) + le16(0) + le16(0) + le16(extra + 1) + le16(extra + 1) + le32(size) + le32(start) + le16(0)
        return out
    }

    @Test func overlappingZipEntriesAreRefused() throws {
        try Self.overlappingZip(extra: 0).withUnsafeBytes { try ZipLayout.check($0, path: "one.zip") }
        #expect {
            try Self.overlappingZip(extra: 1000).withUnsafeBytes { try ZipLayout.check($0, path: "bomb.zip") }
        } throws: { error in
            (error as? CheckpointError)?.kind == .corrupt && "\(error)".contains("overlap")
        }
    }

    @Test func zipEntryPastTheDirectoryIsRefused() throws {
        var bytes = Self.overlappingZip(extra: 0)
        bytes[18] = 0xFF  // the local header's compressed size: 64 -> 0xFF40... past the directory
        bytes[19] = 0xFF
        // The central directory's copy is what counts: make it claim more than the file holds.
        let central = bytes.count - 22 - 60
        bytes[central + 20] = 0xFF
        bytes[central + 21] = 0xFF
        #expect {
            try bytes.withUnsafeBytes { try ZipLayout.check($0, path: "oob.zip") }
        } throws: { error in
            (error as? CheckpointError)?.kind == .corrupt && "\(error)".contains("past the start of the central directory")
        }
    }
}
