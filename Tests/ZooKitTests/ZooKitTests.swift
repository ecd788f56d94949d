import Checkpoint
import Foundation
@testable import Models
import Testing
@testable import ZooKit

enum Repo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var demoCheckpoint: String { root + "/demo/digits_resnet.pth" }
    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
}

/// A scratch folder, removed at the end of the test.
final class Scratch {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-kit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let file = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }
}

/// A zoo over a scratch cache, the shipped catalog, and a controlled environment.
func makeZoo(_ scratch: Scratch, extra: Catalog? = nil, environment: [String: String] = [:]) throws -> Zoo {
    var catalog = try Catalog.load(path: Repo.root + "/catalog.json")
    if let extra { catalog.merge(extra) }
    var env = environment
    env["HOME"] = scratch.path  // no real PyTorch cache
    return try Zoo(catalog: catalog, cache: try Cache(root: scratch.path + "/cache"), progress: false, environment: env)
}

@Suite struct CatalogTests {
    @Test func shippedCatalogIsComplete() throws {
        let catalog = try Catalog.load(path: Repo.root + "/catalog.json")
        let weights = catalog.entries.filter { $0.url != nil }
        #expect(weights.count == 31)  // 26 torchvision weights + 5 older file names
        for entry in catalog.entries {
            #expect((try? entry.resolvedArchitecture()) != nil, "\(entry.name)")
            if let file = entry.file, entry.url != nil {
                #expect(HashPrefix.of(fileName: file) == entry.sha256Prefix, "\(entry.name)")
                #expect(entry.url?.hasSuffix("/" + file) == true)
            }
        }
        #expect(try catalog.entry("resnet50").name == "resnet50.imagenet1k_v2")  // DEFAULT = V2
        #expect(try catalog.entry("vgg16").name == "vgg16.imagenet1k_v1")
        #expect(try catalog.entry("demo").resnet?.planes == [16, 32, 64, 128])
        #expect(try catalog.entry("tutorial_vgg19").hasWeights == false)
        let error = #expect(throws: ZooError.self) { try catalog.entry("resnet5") }
        #expect(error?.fix?.contains("resnet50") == true)
    }

    @Test func userCatalogExtendsAndReplaces() throws {
        let scratch = try Scratch()
        let user = try scratch.write("mine.json", Array(#"""
        {"version": 1, "models": [
          {"name": "my_resnet", "architecture": "resnet18", "file": "my-0123abcd.pth", "url": "https://example.invalid/my-0123abcd.pth", "sha256_prefix": "0123abcd"},
          {"name": "resnet18.imagenet1k_v1", "aliases": ["resnet18"], "architecture": "resnet18", "file": "resnet18-f37072fd.pth",
           "url": "https://mirror.invalid/resnet18-f37072fd.pth", "sha256_prefix": "f37072fd"}]}
        """#.utf8))
        var catalog = try Catalog.load(path: Repo.root + "/catalog.json")
        let count = catalog.entries.count
        catalog.merge(try Catalog.load(path: user))
        #expect(catalog.entries.count == count + 1)
        #expect(try catalog.entry("my_resnet").sha256Prefix == "0123abcd")
        #expect(try catalog.entry("resnet18").url == "https://mirror.invalid/resnet18-f37072fd.pth")
    }

    @Test(arguments: [
        (#"{"version": 1, "models": [{"name": "a"}, {"name": "a"}]}"#, "names a twice"),
        (#"{"version": 1, "models": [{"name": "a", "sha256_prefix": "xyz"}]}"#, "expected at least 8 hex digits"),
        (#"{"version": 2, "models": []}"#, "version 2"),
        (#"{"models": []}"#, "missing version"),
        ("not json", "is not valid"),
        (#"{"version": 1, "models": [{"name": "../../escape"}]}"#, "cannot name a model or file"),
        (#"{"version": 1, "models": [{"name": "a", "aliases": [".hidden"]}]}"#, "cannot name a model or file"),
        (#"{"version": 1, "models": [{"name": "a", "file": "sub/dir.pth"}]}"#, "cannot name a model or file"),
    ])
    func badCatalogs(_ text: String, _ message: String) throws {
        let scratch = try Scratch()
        let path = try scratch.write("c.json", Array(text.utf8))
        let error = #expect(throws: ZooError.self) { try Catalog.load(path: path) }
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
        #expect(error?.kind == .usage)
    }

    @Test func hashPrefixRules() {
        #expect(HashPrefix.of(fileName: "resnet18-f37072fd.pth") == "f37072fd")
        #expect(HashPrefix.of(fileName: "vgg16_features-amdegroot-88682ab5.pth") == "88682ab5")
        #expect(HashPrefix.of(fileName: "resnet50-0676ba61.pth.tar") == "0676ba61")
        #expect(HashPrefix.of(fileName: "model.pth") == nil)
        #expect(HashPrefix.of(fileName: "my-model.pth") == nil)
        #expect(HashPrefix.of(fileName: "net-abc123.pth") == nil)        // fewer than 8 digits
        #expect(HashPrefix.of(fileName: "net-F37072FD.pth") == nil)      // torchvision's are lowercase
    }

    @Test func cacheLocations() {
        #expect(Cache.defaultRoot(["ZOO_HOME": "/z", "XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/z")
        #expect(Cache.defaultRoot(["XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/x/zoo")
        #expect(Cache.defaultRoot(["HOME": "/h"]) == "/h/.cache/zoo")
        #expect(Cache.torchCheckpoints(["TORCH_HOME": "/t", "HOME": "/h"]) == "/t/hub/checkpoints")
        #expect(Cache.torchCheckpoints(["XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/x/torch/hub/checkpoints")
        #expect(Cache.torchCheckpoints(["HOME": "/h"]) == "/h/.cache/torch/hub/checkpoints")
    }
}

@Suite struct CacheTests {
    @Test func layoutAndTag() throws {
        let scratch = try Scratch()
        let cache = try Cache(root: scratch.path + "/c")
        for folder in ["originals", "native", "references", "downloads", "locks"] {
            #expect(FileManager.default.fileExists(atPath: cache.root + "/" + folder))
        }
        let tag = try String(contentsOfFile: cache.root + "/CACHEDIR.TAG", encoding: .utf8)
        #expect(tag.hasPrefix("Signature: 8a477f597d28d172789f06886806bc55"))
    }

    @Test func concurrentIndexUpdatesAreAllKept() throws {
        // Forty writers at once, each through its own lock file descriptor: none is lost.
        let scratch = try Scratch()
        let cache = try Cache(root: scratch.path + "/c")
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            try? cache.updateIndex { index in
                let entry = CacheEntry(name: "m\(i)", source: "test", original: "originals/m\(i)", sha256: String(i), native: nil,
                                       nativeSHA256: nil, architecture: "resnet18", resnet: nil, numClasses: 10, importedAt: "now",
                                       probeShape: nil, reference: nil, referenceSource: nil, verification: nil)
                index.models["m\(i)"] = entry
            }
        }
        #expect(try cache.index().models.count == 40)
    }

    @Test func lockIsExclusive() throws {
        let scratch = try Scratch()
        let cache = try Cache(root: scratch.path + "/c")
        let counter = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            try? cache.withLock("model") {
                counter.enter()
                usleep(2000)
                counter.leave()
            }
        }
        #expect(counter.maximum == 1)
    }

    @Test func damagedIndexIsReportedNotOverwritten() throws {
        let scratch = try Scratch()
        let cache = try Cache(root: scratch.path + "/c")
        try Data("{".utf8).write(to: URL(fileURLWithPath: cache.root + "/index.json"))
        let error = #expect(throws: ZooError.self) { try cache.index() }
        #expect(error?.description.contains("damaged") == true)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var current = 0
    private(set) var maximum = 0
    func enter() { lock.withLock { current += 1; maximum = max(maximum, current) } }
    func leave() { lock.withLock { current -= 1 } }
}

@Suite struct DownloadTests {
    func withServer(_ body: (TestHTTPServer, Scratch) throws -> Void) throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        try body(server, try Scratch())
    }

    static let payload: [UInt8] = (0 ..< 300_000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
    static var sha: String {
        let h = SHA256Hasher()
        h.update(payload)
        return h.finalize()
    }

    @Test func normalTransfer() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            let result = try Downloader(progress: false).fetch(URL(string: server.base + "/f.bin")!, to: scratch.path + "/f.bin",
                                                                 partial: scratch.path + "/f.bin.partial", expectedHash: String(Self.sha.prefix(8)))
            #expect(result.sha256 == Self.sha && result.bytes == Self.payload.count && result.requests == 1)
            #expect(try Repo.bytes(scratch.path + "/f.bin") == Self.payload)
            #expect(!FileManager.default.fileExists(atPath: scratch.path + "/f.bin.partial"))
        }
    }

    @Test func interruptedTransferResumesWithRange() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            server.dropNext("/f.bin", after: 100_000)
            let result = try Downloader(progress: false).fetch(URL(string: server.base + "/f.bin")!, to: scratch.path + "/f.bin",
                                                                 partial: scratch.path + "/f.bin.partial", expectedHash: Self.sha)
            #expect(result.requests == 2)
            #expect(server.requests.map(\.range) == [nil, "bytes=100000-"])
            #expect(try Repo.bytes(scratch.path + "/f.bin") == Self.payload)
        }
    }

    @Test func partialFromAnEarlierRunIsResumed() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            _ = try scratch.write("f.bin.partial", Array(Self.payload.prefix(123_456)))
            let result = try Downloader(progress: false).fetch(URL(string: server.base + "/f.bin")!, to: scratch.path + "/f.bin",
                                                                 partial: scratch.path + "/f.bin.partial", expectedHash: Self.sha)
            #expect(result.resumedFrom == 123_456)
            #expect(server.requests.map(\.range) == ["bytes=123456-"])
            #expect(try Repo.bytes(scratch.path + "/f.bin") == Self.payload)
        }
    }

    @Test func notFound() throws {
        try withServer { _, scratch in
            let server404 = try TestHTTPServer()
            defer { server404.stop() }
            let error = #expect(throws: ZooError.self) {
                try Downloader(progress: false).fetch(URL(string: server404.base + "/missing.pth")!, to: scratch.path + "/m",
                                                      partial: scratch.path + "/m.partial", expectedHash: nil)
            }
            #expect(error?.description.contains("HTTP 404") == true)
            #expect(!FileManager.default.fileExists(atPath: scratch.path + "/m"))
        }
    }

    @Test func wrongHashDeletesTheDownload() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            let error = #expect(throws: ZooError.self) {
                try Downloader(progress: false).fetch(URL(string: server.base + "/f.bin")!, to: scratch.path + "/f.bin",
                                                      partial: scratch.path + "/f.bin.partial", expectedHash: "00000000")
            }
            #expect(error?.kind == .failed && error?.description.contains("not the expected 00000000") == true)
            let left = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
            #expect(left.isEmpty)
        }
    }

    @Test func offlineNeverConnects() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            var downloader = Downloader(progress: false)
            downloader.offline = true
            #expect(throws: ZooError.self) {
                try downloader.fetch(URL(string: server.base + "/f.bin")!, to: scratch.path + "/f", partial: scratch.path + "/f.partial", expectedHash: nil)
            }
            #expect(server.requests.isEmpty)
        }
    }
}

/// Pull, import and verify end to end, on the demo checkpoint served over real HTTP.
@Suite struct ZooTests {
    static var demoBytes: [UInt8] { (try? Repo.bytes(Repo.demoCheckpoint)) ?? [] }
    static let demoSHA = "d40edd31f3670ac5a54f020e5e5dabac1f6203d7ae8e35a90760aadcd166c35f"

    func catalog(_ base: String, _ scratch: Scratch, prefix: String = String(demoSHA.prefix(8))) throws -> Catalog {
        let path = try scratch.write("catalog.json", Array(#"""
        {"version": 1, "models": [{"name": "served", "resnet": {"block": "basic", "layers": [1,1,1,1], "groups": 1, "widthPerGroup": 64,
          "replaceStrideWithDilation": [false,false,false], "numClasses": 10, "planes": [16,32,64,128], "stemWidth": 16},
          "file": "digits-\#(prefix).pth", "url": "\#(base)/models/digits-\#(prefix).pth", "sha256_prefix": "\#(prefix)", "input_shape": [3, 16, 16]}]}
        """#.utf8))
        return try Catalog.load(path: path)
    }

    @Test func pullImportsVerifiesAndLoads() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let scratch = try Scratch()
        server.serve("/models/digits-d40edd31.pth", Self.demoBytes)
        let zoo = try makeZoo(scratch, extra: try catalog(server.base, scratch))
        let report = try zoo.pull("served")
        #expect(report.origin == "download" && report.downloadedBytes == Self.demoBytes.count)
        #expect(report.verification?.ok == true)
        #expect(report.entry.sha256 == Self.demoSHA)
        // Cached now: a second pull makes no request.
        #expect(try zoo.pull("served").origin == "cache")
        #expect(server.requests.count == 1)
        let model = try zoo.pretrained("served")
        #expect(try model.forward(Synthetic.input([1, 3, 16, 16])).shape == [1, 10])
        #expect(try zoo.list("served").first?.verified == true)
    }

    @Test func mirrorServingOtherBytesIsRefused() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let scratch = try Scratch()
        var forged = Self.demoBytes
        forged[forged.count / 2] ^= 1
        server.serve("/mirror/digits-d40edd31.pth", forged)
        let zoo = try makeZoo(scratch, extra: try catalog("https://unreachable.invalid", scratch), environment: ["ZOO_MIRROR": server.base + "/mirror/"])
        let error = #expect(throws: ZooError.self) { try zoo.pull("served") }
        #expect(error?.kind == .failed)
        #expect(server.requests.map(\.path) == ["/mirror/digits-d40edd31.pth"])
        #expect(try zoo.cache.index().models.isEmpty)
    }

    @Test func offlineSaysWhatIsMissing() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch, extra: try catalog("http://127.0.0.1:9", scratch), environment: ["ZOO_OFFLINE": "1"])
        let error = #expect(throws: ZooError.self) { try zoo.pull("served") }
        #expect(error?.description.contains("ZOO_OFFLINE=1") == true && error?.description.contains("not cached") == true)
    }

    /// An offline zoo whose catalog serves the demo as `served`, and a PyTorch cache
    /// (`$TORCH_HOME/hub/checkpoints`, returned as `torch`) that holds its file.
    func zooWithTorchCache(_ scratch: Scratch) throws -> (Zoo, torch: String) {
        let torch = scratch.path + "/torch/hub/checkpoints"
        try FileManager.default.createDirectory(atPath: torch, withIntermediateDirectories: true)
        _ = try scratch.write("torch/hub/checkpoints/digits-d40edd31.pth", Self.demoBytes)
        let zoo = try makeZoo(scratch, extra: try catalog("http://127.0.0.1:9", scratch), environment: ["TORCH_HOME": scratch.path + "/torch", "ZOO_OFFLINE": "1"])
        return (zoo, torch)
    }

    @Test func torchCacheIsReused() throws {
        let scratch = try Scratch()
        let (zoo, torch) = try zooWithTorchCache(scratch)
        let report = try zoo.pull("served")
        #expect(report.origin == "torch cache" && report.verification?.ok == true)
        // One file system here: zoo's original is PyTorch's file, hard-linked, not a copy.
        let original = zoo.cache.path(try #require(report.entry.original))
        #expect(AtomicFile.sameFile(original, torch + "/digits-d40edd31.pth"))
        #expect(try zoo.bytesSharedWithTorch() == Self.demoBytes.count)
        #expect(try FileManager.default.contentsOfDirectory(atPath: zoo.cache.downloads).isEmpty)
    }

    /// `zoo import` of a file in PyTorch's cache links it as pull does; any other file is copied.
    @Test func importFromTorchCacheIsLinked() throws {
        let scratch = try Scratch()
        let (zoo, torch) = try zooWithTorchCache(scratch)
        let linked = try zoo.importFile(torch + "/digits-d40edd31.pth", name: "t")
        #expect(linked.verification?.ok == true)
        #expect(AtomicFile.sameFile(zoo.cache.path(try #require(linked.original)), torch + "/digits-d40edd31.pth"))
        #expect(try zoo.bytesSharedWithTorch() == Self.demoBytes.count)
        let copied = try zoo.importFile(Repo.demoCheckpoint, name: "c")
        #expect(!AtomicFile.sameFile(zoo.cache.path(try #require(copied.original)), Repo.demoCheckpoint))
    }

    @Test func torchCopyIsCopiedWhenItCannotBeLinked() throws {
        let scratch = try Scratch()
        let source = try scratch.write("digits-d40edd31.pth", Self.demoBytes)
        try FileManager.default.createDirectory(atPath: scratch.path + "/to", withIntermediateDirectories: true)
        let destination = scratch.path + "/to/digits-d40edd31.pth"
        var tried = 0
        let copied = try Zoo.linkOrCopy(source, to: destination, expected: String(Self.demoSHA.prefix(8))) { _, _ in
            tried += 1
            errno = EXDEV  // another file system
            return -1
        }
        #expect(tried == 1 && !copied.linked && copied.sha256 == Self.demoSHA)
        #expect(try !AtomicFile.sameFile(source, destination) && Repo.bytes(destination) == Self.demoBytes)
        // Linked or copied, a file that is not the expected one never reaches its name.
        try FileManager.default.removeItem(atPath: destination)
        for makeLink in [{ (a: String, b: String) in link(a, b) }, { _, _ in Int32(-1) }] {
            let error = #expect(throws: ZooError.self) { try Zoo.linkOrCopy(source, to: destination, expected: "00000000", makeLink: makeLink) }
            #expect(error?.kind == .failed)
            #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path + "/to").isEmpty)
        }
        let linked = try Zoo.linkOrCopy(source, to: destination, expected: Self.demoSHA)
        #expect(linked.linked && AtomicFile.sameFile(source, destination))
    }

    @Test func noOriginalKeepsOnlyTheNativeFile() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let entry = try zoo.importFile(Repo.demoCheckpoint, name: "d", keepOriginal: false)
        #expect(entry.original == nil && entry.verification?.ok == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: zoo.cache.originals).isEmpty)
        let report = try zoo.verify("d")
        #expect(report.ok && report.verification.checks.contains { $0.name == "integrity: original" && $0.detail.hasPrefix("skipped: not kept") })
        #expect(try zoo.pretrained("d").model.architecture.numClasses == 10)
        #expect(try zoo.checkpointPath("d").hasSuffix(".safetensors"))
        let error = #expect(throws: ZooError.self) { try zoo.verify("d", againstTorch: true) }
        #expect(error?.message.contains("d's original") == true)
        #expect(error?.fix?.hasPrefix("zoo import \(Repo.demoCheckpoint) --name d") == true, "\(String(describing: error?.fix))")
        let row = try #require(try zoo.list("d").first { $0.name == "d" })
        #expect(row.cached && row.originalBytes == nil && (row.nativeBytes ?? 0) > 0)
        #expect(try zoo.remove("d").count == 2)
    }

    /// `pretrained` lays the weights out for the kernels on another thread; `prepare: false` does not.
    @Test func pretrainedPreparesTheWeights() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        _ = try zoo.importFile(Repo.demoCheckpoint, name: "d")
        let bare = try zoo.pretrained("d", prepare: false)
        let prepared = try zoo.pretrained("d")
        let deadline = Date().addingTimeInterval(20)
        while prepared.model.layouts.made == 0 && prepared.model.layouts.kernels && Date() < deadline { usleep(10_000) }
        #expect(prepared.model.layouts.kernels ? prepared.model.layouts.made > 0 : prepared.model.layouts.made == 0)
        #expect(bare.model.layouts.made == 0)
    }

    @Test func pruneOriginalsAndPullAgain() throws {
        let scratch = try Scratch()
        let (zoo, torch) = try zooWithTorchCache(scratch)
        // --no-original reads PyTorch's copy in place, and neither links nor removes it.
        let bare = try zoo.pull("served", keepOriginal: false)
        #expect(bare.entry.original == nil && bare.verification?.ok == true)
        #expect(FileManager.default.fileExists(atPath: torch + "/digits-d40edd31.pth"))
        #expect(try zoo.pull("served", keepOriginal: false).origin == "cache")
        // A plain pull fetches the original again.
        let full = try zoo.pull("served")
        #expect(full.origin == "torch cache" && full.entry.original != nil)
        // --no-original on a model cached with its original drops it, and only its.
        _ = try zoo.importFile(Repo.demoCheckpoint, name: "d")
        let dropped = try zoo.pull("served", keepOriginal: false)
        let models = try zoo.cache.index().models
        #expect(dropped.origin == "cache" && dropped.entry.original == nil && models["served"]?.original == nil && dropped.originalKept == nil)
        #expect(!FileManager.default.fileExists(atPath: zoo.cache.path(try #require(full.entry.original))))
        #expect(try models["d"]?.original != nil && zoo.verify("served").ok)
        _ = try zoo.pull("served")
        // While another pull or import holds the work lock, the original stays and the report says why.
        let busy = try zoo.cache.withLock(Cache.workLock, shared: true) { try zoo.pull("served", keepOriginal: false) }
        #expect(busy.entry.original != nil && busy.originalKept?.contains("a pull or import is running") == true)
        #expect(FileManager.default.fileExists(atPath: zoo.cache.path(try #require(busy.entry.original))))
        let planned = try zoo.pruneOriginals(dryRun: true)
        #expect(planned.count == 2)
        #expect(try zoo.cache.index().models.values.allSatisfy { $0.original != nil })  // dry run: nothing changed
        #expect(try zoo.pruneOriginals() == planned)
        #expect(planned.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
        #expect(try zoo.cache.index().models.values.allSatisfy { $0.original == nil })
        #expect(try zoo.verify("d").ok && zoo.verify("served").ok)
        #expect(try zoo.pruneOriginals().isEmpty)
    }

    @Test func importChecksTheHashInTheFileName() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let wrong = try scratch.write("digits-deadbeef.pth", Self.demoBytes)
        let error = #expect(throws: ZooError.self) { try zoo.importFile(wrong) }
        #expect(error?.description.contains("--force") == true)
        #expect(try zoo.cache.index().models.isEmpty)
        let forced = try zoo.importFile(wrong, force: true)
        #expect(forced.name == "digits-deadbeef" && forced.verification?.ok == true)
        let right = try scratch.write("digits-d40edd31.pth", Self.demoBytes)
        #expect(try zoo.importFile(right, name: "mine").verification?.ok == true)
    }

    @Test func namesCannotLeaveTheCache() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let file = try scratch.write("digits-d40edd31.pth", Self.demoBytes)
        for name in ["../../escape", "a/b", ".hidden", ""] {
            let error = #expect(throws: ZooError.self) { try zoo.importFile(file, name: name) }
            #expect(error?.kind == .usage && error?.description.contains("cannot name a cached model") == true)
            #expect(throws: ZooError.self) { try zoo.pull(name, url: "http://127.0.0.1:9/digits-d40edd31.pth") }
        }
        #expect(throws: ZooError.self) { try zoo.pull("fine", url: "http://127.0.0.1:9/models/..") }
        #expect(try zoo.cache.index().models.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/escape"))
    }

    @Test func againstTorchNeedsATorchWithoutCVE202532434() {
        #expect(Zoo.loadsSafely(torchVersion: "2.6.0"))
        #expect(Zoo.loadsSafely(torchVersion: "2.15.0+cu128"))
        #expect(Zoo.loadsSafely(torchVersion: "3.0.0a0"))
        #expect(!Zoo.loadsSafely(torchVersion: "2.5.1+cpu"))
        #expect(!Zoo.loadsSafely(torchVersion: "1.13.1"))
        #expect(!Zoo.loadsSafely(torchVersion: "garbage"))
    }

    @Test func aFlippedByteInTheCacheIsCaught() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let entry = try zoo.importFile(Repo.demoCheckpoint, name: "d")
        #expect(try zoo.verify("d").ok)
        for file in [try #require(entry.native), try #require(entry.original)] {
            let path = zoo.cache.path(file)
            var bytes = try Repo.bytes(path)
            bytes[bytes.count - 100] ^= 0x10
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let report = try zoo.verify("d")
            #expect(!report.ok)
            #expect(report.verification.checks.contains { !$0.ok && $0.name.hasPrefix("integrity") })
            bytes[bytes.count - 100] ^= 0x10
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        #expect(try zoo.verify("d").ok)
        #expect(try zoo.cache.entry("d")?.verification?.ok == true)  // the last result is recorded
    }

    @Test func verifyWithExpectAndRemoveAndPrune() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        _ = try zoo.importFile(Repo.demoCheckpoint, name: "d")
        let input = Synthetic.input([2, 3, 16, 16])
        let model = try zoo.pretrained("d")
        let inputPath = scratch.path + "/x.npy", expectPath = scratch.path + "/y.npy"
        try NPY.write(input, to: inputPath)
        try NPY.write(try model.forward(input), to: expectPath)
        #expect(try zoo.verify("d", input: inputPath, expect: expectPath).ok)
        var scalars = try model.forward(input).scalars
        scalars[3] += 1
        try NPY.write(try Tensor(shape: try model.forward(input).shape, scalars: scalars), to: expectPath)
        #expect(try !zoo.verify(Repo.demoCheckpoint, input: inputPath, expect: expectPath).ok)

        _ = try scratch.write("cache/downloads/x.pth.partial", [1, 2, 3])
        #expect(try zoo.prune() == [zoo.cache.downloads + "/x.pth.partial"])
        #expect(try zoo.remove("d").count == 3)
        #expect(try zoo.cache.index().models.isEmpty)
        #expect(throws: ZooError.self) { try zoo.remove("d") }
    }

    @Test func demoPredictionsEqualPyTorchs() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let model = try zoo.pretrained("digits_resnet")
        let inputs = try NPY.read(path: Repo.root + "/demo/test_inputs.npy")
        let torch = try NPY.read(path: Repo.root + "/demo/torch_logits.npy")
        let logits = try model.forward(inputs)
        #expect(logits.maxDifference(torch) <= 1e-4 * torch.maxMagnitude)
        #expect(logits.argmax() == torch.argmax())
    }
}
