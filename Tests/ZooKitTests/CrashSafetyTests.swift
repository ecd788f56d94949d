import Checkpoint
import Foundation
import Testing
@testable import ZooKit
#if canImport(Glibc)
import Glibc
#endif

/// What a killed or concurrent zoo process leaves behind, and what prune may remove
/// (Tests/Interop/check_crash.py kills real processes; these pin the rules down).
@Suite struct CrashSafetyTests {
    /// The id of a process that has exited.
    func deadPID() throws -> pid_t {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    @Test func pruneSparesWhatLiveProcessesAreWriting() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let entry = try zoo.importFile(Repo.demoCheckpoint, name: "d")
        let cache = zoo.cache
        let hashFolder = cache.path((entry.original! as NSString).deletingLastPathComponent)
        let dead = try deadPID()
        var live: [String] = [], stale: [String] = []
        for folder in [cache.root, cache.native, cache.references, cache.downloads, hashFolder] {
            live.append(try scratch.write(String((folder + "/.f.safetensors.\(getpid()).0a1b2c3d.partial").dropFirst(scratch.path.count + 1)), [1]))
            stale.append(try scratch.write(String((folder + "/.f.safetensors.\(dead).0a1b2c3d.partial").dropFirst(scratch.path.count + 1)), [1]))
        }
        let busy = try scratch.write("cache/downloads/busy.pth.partial", [1, 2])
        let idle = try scratch.write("cache/downloads/idle.pth.partial", [1, 2])
        let orphan = try scratch.write("cache/native/orphan.1234567890ab.safetensors", [1])

        // A pull downloading busy.pth and an import at work (the shared work lock) in other processes.
        let removed = try cache.withLock(Cache.downloadLock("busy.pth")) {
            try cache.withLock(Cache.workLock, shared: true) { try zoo.prune() }
        }
        #expect(Set(removed) == Set(stale + [idle]))
        for path in live + [busy, orphan] { #expect(FileManager.default.fileExists(atPath: path), "\(path)") }

        // Once nothing runs, the unlocked download and the orphan go; temporary files of live writers stay.
        #expect(Set(try zoo.prune()) == Set([busy, orphan]))
        for path in live { #expect(FileManager.default.fileExists(atPath: path)) }
        #expect(try zoo.verify("d").ok)
    }

    @Test func reimportingANameKeepsTheOldFilesUntilTheIndexMovesOn() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let first = try zoo.importFile(Repo.demoCheckpoint, name: "d")
        let firstNative = try #require(first.native), firstReference = try #require(first.reference)
        #expect(firstNative.hasPrefix("native/d.") && firstNative.hasSuffix(".safetensors"))
        #expect(firstNative.contains(String(try #require(first.nativeSHA256).prefix(12))))

        // Other bytes under the same name: new file names; the replaced ones removed after the index update.
        let other = scratch.path + "/other.safetensors"
        try FileManager.default.copyItem(atPath: zoo.cache.path(firstNative), toPath: other)
        let second = try zoo.importFile(other, name: "d")
        #expect(second.sha256 != first.sha256 && second.native != first.native && second.reference != first.reference)
        #expect(!FileManager.default.fileExists(atPath: zoo.cache.path(firstNative)))
        #expect(!FileManager.default.fileExists(atPath: zoo.cache.path(firstReference)))
        #expect(try zoo.cache.entry("d")?.nativeSHA256 == second.nativeSHA256)
        #expect(try zoo.verify("d").ok)

        // The same file again: the same names, still verified; no staging file left.
        let again = try zoo.importFile(other, name: "d")
        #expect(again.native == second.native && again.reference == second.reference)
        #expect(try zoo.verify("d").ok)
        #expect(try FileManager.default.contentsOfDirectory(atPath: zoo.cache.native) == [(try #require(again.native) as NSString).lastPathComponent])
        // The first original is an orphan now; prune removes it and its folder, nothing else.
        #expect(try zoo.prune() == [zoo.cache.path(first.original!)])
        #expect(try zoo.verify("d").ok)
    }

    @Test func pullUsesACompleteCopyAStoppedPullLeft() throws {
        for place in ["downloads", "originals/\(ZooTests.demoSHA.prefix(16))"] {
            let server = try TestHTTPServer()
            defer { server.stop() }
            let scratch = try Scratch()
            let zoo = try makeZoo(scratch, extra: try ZooTests().catalog(server.base, scratch))
            try FileManager.default.createDirectory(atPath: zoo.cache.root + "/" + place, withIntermediateDirectories: true)
            _ = try scratch.write("cache/\(place)/digits-d40edd31.pth", ZooTests.demoBytes)
            let report = try zoo.pull("served")
            #expect(report.origin == "download" && report.resumedFrom == ZooTests.demoBytes.count, "\(place)")
            #expect(server.requests.isEmpty, "\(place)")
            #expect(report.verification?.ok == true)
            #expect(try FileManager.default.contentsOfDirectory(atPath: zoo.cache.downloads).isEmpty)
        }
    }

    @Test func aDamagedCopyInDownloadsIsDownloadedAgain() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let scratch = try Scratch()
        server.serve("/models/digits-d40edd31.pth", ZooTests.demoBytes)
        let zoo = try makeZoo(scratch, extra: try ZooTests().catalog(server.base, scratch))
        var damaged = ZooTests.demoBytes
        damaged[100] ^= 1
        _ = try scratch.write("cache/downloads/digits-d40edd31.pth", damaged)
        let report = try zoo.pull("served")
        #expect(report.resumedFrom == 0 && server.requests.count == 1)
        #expect(report.entry.sha256 == ZooTests.demoSHA)
    }

    @Test func removeForgetsTheModelBeforeDeletingItsFiles() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let entry = try zoo.importFile(Repo.demoCheckpoint, name: "d")
        _ = try zoo.importFile(Repo.demoCheckpoint, name: "e")  // shares the original
        #expect(try zoo.remove("d").count == 2)
        #expect(FileManager.default.fileExists(atPath: zoo.cache.path(entry.original!)))
        #expect(try zoo.verify("e").ok)
        #expect(try zoo.remove("e").count == 3)
        #expect(!FileManager.default.fileExists(atPath: zoo.cache.path((entry.original! as NSString).deletingLastPathComponent)))
    }

    @Test func removeLeavesTheOriginalWhileAnImportMayBeAboutToIndexIt() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let entry = try zoo.importFile(Repo.demoCheckpoint, name: "d")
        let original = zoo.cache.path(entry.original!)
        // Another process importing the same file under another name holds the work lock shared.
        let removed = try zoo.cache.withLock(Cache.workLock, shared: true) { try zoo.remove("d") }
        #expect(removed.count == 2 && !removed.contains(original))
        #expect(FileManager.default.fileExists(atPath: original))
        // Once nothing runs, prune removes the now unreferenced original.
        #expect(try zoo.prune().contains(original))
        #expect(!FileManager.default.fileExists(atPath: original))
    }

    @Test(.timeLimit(.minutes(1))) func aModelNamedIndexDoesNotDeadlock() throws {
        // Model locks and the index's lock live in one folder; they must never share a name.
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        #expect(try zoo.importFile(Repo.demoCheckpoint, name: "index").verification?.ok == true)
        #expect(try zoo.verify("index").ok)
        #expect(try zoo.remove("index").count == 3)
    }
}
