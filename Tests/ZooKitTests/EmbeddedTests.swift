import Checkpoint
import Foundation
import Models
import Testing
@testable import ZooKit

/// What Plugins/Embed builds into the library is the repository's files, and the Python zoo
/// starts for `--against-torch` sees nothing of the caller's environment.
@Suite struct EmbeddedTests {
    @Test func shippedCatalogIsTheRepositoryFile() throws {
        let text = try String(contentsOfFile: Repo.root + "/catalog.json", encoding: .utf8)
        #expect(Embedded.catalogJSON == text)
        #expect(try Catalog.shipped().entries == Catalog.load(path: Repo.root + "/catalog.json").entries)
        let demo = try Catalog.shipped().entry("digits_resnet")
        #expect(try Catalog.shipped().bundledPath(demo).map { FileManager.default.fileExists(atPath: $0) } == true)
    }

    @Test func torchScriptIsTheRepositoryFile() throws {
        #expect(Zoo.torchScript == (try String(contentsOfFile: Repo.root + "/Sources/ZooKit/Resources/torch_check.py", encoding: .utf8)))
    }

    @Test func torchSpecCarriesTheReadersLists() throws {
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Zoo.TorchSpec(try Architecture.named("resnet18")))) as? [String: Any]
        #expect(json?["wrapperKeys"] as? [String] == StateDict.wrapperKeys)
        #expect(json?["prefixes"] as? [String] == StateDict.strippablePrefixes)
        #expect(StateDict.wrapperKeys.count == 13)
    }

    @Test func pythonSeesOnlyPathAndLocale() {
        let env = Zoo.pythonEnvironment(["PATH": "/usr/bin", "LANG": "C.UTF-8", "PYTHONPATH": "/evil", "PYTHONSTARTUP": "/evil/s.py",
                                         "PYTHONHOME": "/evil", "LD_PRELOAD": "/evil.so", "HOME": "/home/u", "ZOO_PYTHON": "python3"],
                                        home: "/tmp/zoo-torch-x")
        #expect(env == ["PATH": "/usr/bin", "LANG": "C.UTF-8", "HOME": "/tmp/zoo-torch-x", "TMPDIR": "/tmp/zoo-torch-x"])
    }

    @Test func pythonIsNeverLookedUpInARelativeFolder() throws {
        let scratch = try Scratch()
        let relativePath = try makeZoo(scratch, environment: ["PATH": "bin:.:"])
        #expect(throws: ZooError.self) { try relativePath.pythonExecutable() }
        let relativeName = try makeZoo(scratch, environment: ["ZOO_PYTHON": "venv/bin/python"])
        #expect(try relativeName.pythonExecutable() == FileManager.default.currentDirectoryPath + "/venv/bin/python")
    }

    @Test func privateFolderIsNewAndPrivate() throws {
        let a = try Zoo.privateFolder(), b = try Zoo.privateFolder()
        defer { for f in [a, b] { try? FileManager.default.removeItem(atPath: f) } }
        #expect(a != b)
        let mode = try FileManager.default.attributesOfItem(atPath: a)[.posixPermissions] as? Int
        #expect(mode == 0o700)
    }
}
