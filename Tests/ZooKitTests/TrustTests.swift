import Checkpoint
import Foundation
import Testing
@testable import ZooKit

/// Catalog names cannot be taken over, and full hashes are pinned (SECURITY.md, "Names and hashes").
@Suite struct TrustTests {
    static let demoSHA = ZooTests.demoSHA

    /// A catalog entry like the official ones: a file with only torch.hub's prefix known.
    func prefixOnlyCatalog(_ base: String, _ scratch: Scratch, size: Int? = nil) throws -> Catalog {
        let sizeField = size.map { #", "size": \#($0)"# } ?? ""
        let path = try scratch.write("catalog.json", Array(#"""
        {"version": 1, "models": [{"name": "served.v1", "aliases": ["served"], "resnet": {"block": "basic", "layers": [1,1,1,1], "groups": 1,
          "widthPerGroup": 64, "replaceStrideWithDilation": [false,false,false], "numClasses": 10, "planes": [16,32,64,128], "stemWidth": 16},
          "file": "digits-d40edd31.pth", "url": "\#(base)/models/digits-d40edd31.pth", "sha256_prefix": "d40edd31"\#(sizeField),
          "input_shape": [3, 16, 16]}]}
        """#.utf8))
        return try Catalog.load(path: path)
    }

    @Test func pullUnderACatalogNameFromAnotherURLMustBeTheCatalogsFile() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let scratch = try Scratch()
        var forged = ZooTests.demoBytes
        forged[forged.count / 2] ^= 1
        server.serve("/evil/resnet18.pth", forged)
        let zoo = try makeZoo(scratch)
        for name in ["digits_resnet", "demo", "DIGITS_RESNET"] {
            let error = #expect(throws: ZooError.self) { try zoo.pull(name, url: server.base + "/evil/resnet18.pth") }
            #expect(error?.message.contains("a catalog name, which holds only the catalog's file") == true)
            #expect(error?.fix?.contains("zoo pull my-\(name) --url") == true)
        }
        #expect(try zoo.cache.index().models.isEmpty)
        // Under a name of its own the same file is welcome (it only has to be a checkpoint).
        server.serve("/mine/digits.pth", ZooTests.demoBytes)
        #expect(try zoo.pull("my-digits", url: server.base + "/mine/digits.pth").entry.name == "my-digits")
    }

    @Test func importUnderACatalogNameMustBeTheCatalogsFileEvenWithForce() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let other = Repo.root + "/Tests/Fixtures/tiny_net.pth"
        for name in ["digits_resnet", "demo", "resnet18.imagenet1k_v1", "RESNET18"] {
            let error = #expect(throws: ZooError.self) { try zoo.importFile(other, name: name, force: true) }
            #expect(error?.message.contains("a catalog name holds only the catalog's file") == true, "\(name)")
            #expect(error?.fix?.contains("--name my-\(name)") == true)
        }
        #expect(try zoo.cache.index().models.isEmpty)
        // The catalog's own file is fine under its name.
        #expect(try zoo.importFile(Repo.demoCheckpoint, name: "digits_resnet").sha256 == Self.demoSHA)
    }

    @Test func aCachedCatalogNameIsCheckedAgainstTheCatalog() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        _ = try zoo.pull("digits_resnet")
        #expect(try zoo.verify("digits_resnet").verification.checks.contains { $0.name == "catalog" && $0.ok })
        // An index that says otherwise (an older zoo, a hand edit) is not believed.
        try zoo.cache.updateIndex { index in
            for key in index.models.keys { index.models[key]?.sha256 = String(repeating: "0", count: 64) }
        }
        let error = #expect(throws: ZooError.self) { try zoo.pretrained("digits_resnet") }
        #expect(error?.fix?.contains("zoo rm digits_resnet") == true)
        #expect(throws: ZooError.self) { try zoo.pull("digits_resnet") }
        let report = try zoo.verify("digits_resnet")
        #expect(!report.ok && report.verification.checks.contains { $0.name == "catalog" && !$0.ok })
    }

    @Test func firstUsePinsTheFullHashAndLaterFetchesMustMatchIt() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let scratch = try Scratch()
        server.serve("/models/digits-d40edd31.pth", ZooTests.demoBytes)
        let zoo = try makeZoo(scratch, extra: try prefixOnlyCatalog(server.base, scratch))
        #expect(try zoo.hashPin(of: "served") == .prefix)
        _ = try zoo.pull("served")
        #expect(try zoo.cache.index().pins["digits-d40edd31.pth"] == Self.demoSHA)
        #expect(try zoo.hashPin(of: "served") == .firstUse)
        #expect(try zoo.hashPin(of: "digits_resnet") == .catalog)
        #expect(try zoo.hashPin(of: "my-own") == nil)

        // A mirror that serves a prefix collision is refused by the pin (simulated: the pin is
        // another 64-digit hash with the same prefix, which the real file then fails).
        _ = try zoo.remove("served")
        let collision = "d40edd31" + String(repeating: "0", count: 56)
        try zoo.cache.updateIndex { $0.pins["digits-d40edd31.pth"] = collision }
        let error = #expect(throws: ZooError.self) { try zoo.pull("served") }
        #expect(error?.message.contains("not the expected \(collision)") == true)
        let imported = #expect(throws: ZooError.self) { try zoo.importFile(Repo.demoCheckpoint, name: "served") }
        #expect(imported?.message.contains("pinned at its first download or import is \(collision)") == true)
    }

    @Test func theCatalogsSizeBoundsTheDownload() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let scratch = try Scratch()
        server.serve("/models/digits-d40edd31.pth", ZooTests.demoBytes)
        let size = ZooTests.demoBytes.count - 1
        let zoo = try makeZoo(scratch, extra: try prefixOnlyCatalog(server.base, scratch, size: size))
        let error = #expect(throws: ZooError.self) { try zoo.pull("served") }
        #expect(error?.message.contains("the catalog's file has \(size)") == true)
    }

    @Test func catalogHashesAreCheckedWhenTheCatalogIsRead() throws {
        let scratch = try Scratch()
        let bad = try scratch.write("c.json", Array(#"""
        {"version": 1, "models": [{"name": "x", "architecture": "resnet18", "file": "resnet18-f37072fd.pth",
          "sha256_prefix": "f37072fd", "sha256": "\#(String(repeating: "a", count: 64))"}]}
        """#.utf8))
        let error = #expect(throws: ZooError.self) { try Catalog.load(path: bad) }
        #expect(error?.message.contains("does not start with its prefix f37072fd") == true)
        // The shipped catalog pins 18 official files by their full hash (shared/OFFICIAL_HASHES.md).
        let shipped = try Catalog.shipped()
        #expect(shipped.entries.filter { $0.sha256 != nil && $0.url != nil }.count == 18)
        #expect(shipped.entries.filter { $0.size != nil }.count == 13)
    }
}
