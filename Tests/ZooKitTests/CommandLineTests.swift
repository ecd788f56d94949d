import Foundation
import Testing
@testable import ZooKit

/// Names and patterns as people type them (issue 15).
@Suite struct NameTests {
    @Test func globsAndWords() {
        #expect(Names.matches("resnet50.imagenet1k_v2", "resnet*"))
        #expect(!Names.matches("wide_resnet50_2", "resnet*"))
        #expect(Names.matches("vgg16_bn", "*_bn"))
        #expect(Names.matches("wide_resnet50_2", "wide_*"))
        #expect(Names.matches("wide_resnet50_2", "resnet"))     // a plain word: substring
        #expect(Names.matches("resnet50", "ResNet"))            // case-insensitive
        #expect(Names.matches("vgg16", "vgg1?"))
    }

    @Test func didYouMeanByEditDistance() throws {
        let catalog = try Catalog.load(path: Repo.root + "/catalog.json")
        let error = #expect(throws: ZooError.self) { try catalog.entry("resnt50") }
        #expect(error?.fix?.hasPrefix("did you mean resnet50") == true, "\(String(describing: error?.fix))")
        #expect(Names.closest(to: "resnt50", among: ["resnet50", "resnet18", "resnet152", "vgg16"]) == ["resnet50"])
        let far = #expect(throws: ZooError.self) { try catalog.entry("mobilenet_v3") }
        #expect(far?.fix == "zoo list shows every model")
    }

    @Test func namesAreCaseInsensitive() throws {
        let catalog = try Catalog.load(path: Repo.root + "/catalog.json")
        #expect(try catalog.entry("resnet50.IMAGENET1K_V2").name == "resnet50.imagenet1k_v2")
        #expect(try catalog.entry("ResNet50").name == "resnet50.imagenet1k_v2")
    }

    @Test func listTakesGlobs() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let resnets = try zoo.list("resnet*")
        #expect(!resnets.isEmpty)
        #expect(resnets.allSatisfy { $0.name.hasPrefix("resnet") || $0.architecture.hasPrefix("resnet") || $0.aliases.contains { $0.hasPrefix("resnet") } })
        #expect(try zoo.list("*_bn").allSatisfy { $0.name.contains("_bn") })
        #expect(try zoo.list("*_bn").count > 0)
        #expect(try zoo.list("resnet").count >= resnets.count)  // substring: also wide_resnet
    }
}

/// Arguments that name a missing file or a directory are usage errors (exit 2), and say so.
@Suite struct ArgumentTests {
    @Test func missingFilesAndDirectories() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let missing = #expect(throws: ZooError.self) { try zoo.importFile("/no/such/file.pth") }
        #expect(missing?.kind == .usage)
        #expect(missing?.message.contains("no such file") == true)
        let directory = #expect(throws: ZooError.self) { try zoo.importFile(scratch.path) }
        #expect(directory?.kind == .usage)
        #expect(directory?.message.contains("is a directory") == true)
        let notCached = #expect(throws: ZooError.self) { try zoo.checkpointPath("resnet18") }
        #expect(notCached?.fix == "zoo pull resnet18.imagenet1k_v1")
    }

    @Test func cachedNamesNameTheirFiles() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        _ = try zoo.importFile(Repo.demoCheckpoint, name: "digits")
        let path = try zoo.checkpointPath("Digits")  // case-insensitive in the cache too
        #expect(path.hasPrefix(zoo.cache.root) && path.hasSuffix(".safetensors"))
        #expect(try zoo.checkpointPath(Repo.demoCheckpoint) == Repo.demoCheckpoint)
    }
}

/// The built `zoo` binary (swift test builds it beside the tests), run with a scratch cache.
struct ZooBinary {
    static var path: String? {
        let folder = Bundle.allBundles.map(\.bundlePath).first { $0.hasSuffix(".xctest") }.map { ($0 as NSString).deletingLastPathComponent }
        return [folder, Repo.root + "/.build/debug"].compactMap { $0 }.map { $0 + "/zoo" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ arguments: [String], home: String, executable: String? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable ?? path!)
        process.arguments = arguments
        process.environment = ["ZOO_HOME": home + "/cache", "HOME": home, "ZOO_OFFLINE": "1", "PATH": "/usr/bin:/bin"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}

@Suite(.enabled(if: ZooBinary.path != nil, "the zoo binary is not built"))
struct CommandLineTests {
    @Test func missingFilesExitTwoEverywhere() throws {
        let scratch = try Scratch()
        for command in [["import"], ["verify"], ["convert"], ["run", "--input", "x.npy", "--output", "y.npy"], ["inspect"]] {
            let result = try ZooBinary.run(command + ["/no/such/file.pth"], home: scratch.path)
            #expect(result.status == 2, "\(command): \(result.stderr)")
        }
        let directory = try ZooBinary.run(["import", scratch.path], home: scratch.path)
        #expect(directory.status == 2)
        #expect(directory.stderr.contains("is a directory"), "\(directory.stderr)")
    }

    @Test func jsonErrorsGoToStdout() throws {
        let scratch = try Scratch()
        let result = try ZooBinary.run(["import", "/no/such/file.pth", "--json"], home: scratch.path)
        #expect(result.status == 2)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let error = object?["error"] as? [String: Any]
        #expect(error?["kind"] as? String == "usage")
        #expect(error?["file"] as? String == "/no/such/file.pth")
        #expect(error?.keys.sorted() == ["file", "fix", "kind", "message"])
        let usage = try ZooBinary.run(["list", "--json", "--no-such-flag"], home: scratch.path)
        #expect(usage.status == 2)
        #expect(((try JSONSerialization.jsonObject(with: Data(usage.stdout.utf8)) as? [String: Any])?["error"]) != nil)
    }

    @Test func pullDoesNotSuggestAMissingFlag() throws {
        let scratch = try Scratch()
        let result = try ZooBinary.run(["pull", "../x", "--url", "https://example.invalid/x.pth"], home: scratch.path)
        #expect(result.status == 2)
        #expect(!result.stderr.contains("--name"), "\(result.stderr)")
    }

    @Test func commandsTakeCachedNames() throws {
        let scratch = try Scratch()
        let imported = try ZooBinary.run(["import", Repo.demoCheckpoint, "--name", "digits"], home: scratch.path)
        #expect(imported.status == 0, "\(imported.stderr)")
        let summary = try ZooBinary.run(["summary", "digits", "--input-size", "3,32,32"], home: scratch.path)
        #expect(summary.status == 0, "\(summary.stderr)")
        let output = scratch.path + "/digits.safetensors"
        let convert = try ZooBinary.run(["convert", "digits", "-o", output], home: scratch.path)
        #expect(convert.status == 0, "\(convert.stderr)")
        #expect(FileManager.default.fileExists(atPath: output))
        let bench = try ZooBinary.run(["bench", "digits", "--load", "--iterations", "1"], home: scratch.path)
        #expect(bench.status == 0, "\(bench.stderr)")
        // Text list and cache show each cached model's size: original, native, total.
        let list = try ZooBinary.run(["list", "digits"], home: scratch.path).stdout
        #expect(list.contains("original 1.2 MB + native 1.2 MB = 2.4 MB"), "\(list)")
        let cache = try ZooBinary.run(["cache"], home: scratch.path).stdout
        #expect(cache.contains("digits") && cache.contains("original 1.2 MB + native"), "\(cache)")
        let help = try ZooBinary.run(["info", "--help"], home: scratch.path)
        #expect(help.stdout.contains("A catalog name or alias"))
    }
}

/// Files are never lost by surprise.
@Suite(.enabled(if: ZooBinary.path != nil, "the zoo binary is not built"))
struct CarefulFileTests {
    @Test func convertRefusesToReplaceAFileUnlessForced() throws {
        let scratch = try Scratch()
        let existing = try scratch.write("mine.safetensors", Array("precious".utf8))
        let refused = try ZooBinary.run(["convert", Repo.demoCheckpoint, "-o", existing], home: scratch.path)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "precious")
        let forced = try ZooBinary.run(["convert", Repo.demoCheckpoint, "-o", existing, "--force"], home: scratch.path)
        #expect(forced.status == 0, "\(forced.stderr)")
    }

    @Test func removeSeveralAndDryRun() throws {
        let scratch = try Scratch()
        for name in ["a", "b"] {
            #expect(try ZooBinary.run(["import", Repo.demoCheckpoint, "--name", name], home: scratch.path).status == 0)
        }
        let dry = try ZooBinary.run(["rm", "a", "b", "--dry-run", "--json"], home: scratch.path)
        #expect(dry.status == 0, "\(dry.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any]
        #expect((report?["bytes"] as? Int ?? 0) > 0)
        #expect(report?["dry_run"] as? Bool == true)
        #expect(try ZooBinary.run(["list", "a", "--json"], home: scratch.path).stdout.contains("\"cached\" : true"))
        let typo = try ZooBinary.run(["rm", "a", "nosuch"], home: scratch.path)
        #expect(typo.status == 2)
        #expect(try ZooBinary.run(["list", "a", "--json"], home: scratch.path).stdout.contains("\"cached\" : true"))  // nothing went
        let removed = try ZooBinary.run(["rm", "a", "b"], home: scratch.path)
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(try ZooBinary.run(["list", "--json"], home: scratch.path).stdout.contains("\"cached\" : true") == false)
        let prune = try ZooBinary.run(["prune", "--dry-run"], home: scratch.path)
        #expect(prune.status == 0 && prune.stdout.contains("would be removed"), "\(prune.stdout) \(prune.stderr)")
    }
}

/// A model cached without its original says what that costs, and what needs it fails clearly.
@Suite(.enabled(if: ZooBinary.path != nil, "the zoo binary is not built"))
struct NoOriginalTests {
    @Test func infoVerifyAndPrune() throws {
        let scratch = try Scratch()
        #expect(try ZooBinary.run(["import", Repo.demoCheckpoint, "--name", "bare", "--no-original"], home: scratch.path).status == 0)
        let info = try ZooBinary.run(["info", "bare"], home: scratch.path).stdout
        #expect(info.contains("original: not kept") && info.contains("verify --against-torch"), "\(info)")
        #expect(try ZooBinary.run(["verify", "bare"], home: scratch.path).status == 0)
        for command in [["list", "bare"], ["cache"]] {
            let text = try ZooBinary.run(command, home: scratch.path).stdout
            #expect(text.contains("original not kept + native"), "zoo \(command.joined(separator: " ")): \(text)")
        }
        let torch = try ZooBinary.run(["verify", "bare", "--against-torch"], home: scratch.path)
        #expect(torch.status == 2 && torch.stderr.contains("bare's original") && torch.stderr.contains("fix: zoo import"), "\(torch.stderr)")
        #expect(try ZooBinary.run(["convert", "bare", "-o", scratch.path + "/b.safetensors"], home: scratch.path).status == 0)

        #expect(try ZooBinary.run(["import", Repo.demoCheckpoint, "--name", "kept"], home: scratch.path).status == 0)
        let dry = try ZooBinary.run(["prune", "--originals", "--dry-run"], home: scratch.path)
        #expect(dry.stdout.contains("would remove") && dry.stdout.contains("/originals/"), "\(dry.stdout)")
        let pruned = try ZooBinary.run(["prune", "--originals", "--json"], home: scratch.path)
        let report = try JSONSerialization.jsonObject(with: Data(pruned.stdout.utf8)) as? [String: Any]
        #expect((report?["removed"] as? [String])?.count == 1 && (report?["bytes"] as? Int ?? 0) > 1_000_000, "\(pruned.stdout)")
        #expect(try ZooBinary.run(["info", "kept"], home: scratch.path).stdout.contains("original: not kept"))
    }
}

/// Every `--json` output parses, and every key is snake_case (docs/json.md lists them).
@Suite(.enabled(if: ZooBinary.path != nil, "the zoo binary is not built"))
struct JSONOutputTests {
    /// Keys whose values are maps keyed by data (tensor names, metadata entries), not by zoo.
    static let dataMaps: Set<String> = ["aliases", "metadata"]

    static func badKeys(_ value: Any, at path: String = "") -> [String] {
        if let object = value as? [String: Any] {
            return object.flatMap { key, child -> [String] in
                let ok = key.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" } && !key.isEmpty
                return (ok ? [] : [path + "." + key]) + (dataMaps.contains(key) ? [] : badKeys(child, at: path + "." + key))
            }
        }
        if let array = value as? [Any] { return array.flatMap { badKeys($0, at: path + "[]") } }
        return []
    }

    @Test func everyCommandPrintsSnakeCaseJSON() throws {
        let scratch = try Scratch()
        let out = scratch.path
        let commands: [[String]] = [
            ["import", Repo.demoCheckpoint, "--name", "digits"],
            ["pull", "demo"], ["demo"],
            ["list"], ["list", "resnet*"], ["info", "resnet50"], ["info", "digits"], ["cache"],
            ["verify", "digits"], ["verify", Repo.demoCheckpoint],
            ["inspect", Repo.demoCheckpoint],
            ["convert", Repo.demoCheckpoint, "-o", out + "/d.safetensors"],
            ["run", "digits", "--input", Repo.root + "/demo/test_inputs.npy", "--output", out + "/y.npy"],
            ["summary", "resnet18", "--input-size", "3,32,32"],
            ["bench", "resnet18", "--size", "32", "--iterations", "1"],
            ["bench", "digits", "--load", "--iterations", "1"],
            ["rm", "digits", "--dry-run"], ["prune", "--dry-run"], ["prune"], ["rm", "digits"],
            ["import", "/no/such/file.pth"],  // an error is JSON too
        ]
        for command in commands {
            let result = try ZooBinary.run(command + ["--json"], home: scratch.path)
            let parsed = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
            #expect(parsed != nil, "\(command): not JSON (exit \(result.status)): \(result.stdout.prefix(300)) \(result.stderr.prefix(300))")
            if let parsed { #expect(Self.badKeys(parsed).isEmpty, "\(command): \(Self.badKeys(parsed))") }
        }
    }
}

/// The README's command list is `zoo --help`'s: the same subcommands in the same order, and every
/// option it shows is one the subcommand takes.
@Suite(.enabled(if: ZooBinary.path != nil, "the zoo binary is not built"))
struct CommandListTests {
    @Test func commandListMatchesHelp() throws {
        let scratch = try Scratch()
        let help = try ZooBinary.run(["--help"], home: scratch.path).stdout
        let subcommands = help.components(separatedBy: "SUBCOMMANDS:").last!.split(separator: "\n")
            .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }.compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0 != "See" }
        let readme = try String(contentsOfFile: Repo.root + "/README.md", encoding: .utf8)
        let block = readme.components(separatedBy: "## Commands").last!.components(separatedBy: "```")[1]
        let lines = block.split(separator: "\n").filter { $0.hasPrefix("zoo ") }
        #expect(lines.map { String($0.split(separator: " ")[1]) } == subcommands)
        for line in lines {
            let name = String(line.split(separator: " ")[1])
            let usage = try ZooBinary.run([name, "--help"], home: scratch.path).stdout
            let options = line.split(whereSeparator: { " [|]".contains($0) }).filter { $0.hasPrefix("-") }
            for option in options { #expect(usage.contains(option), "README shows \(option) for zoo \(name); zoo \(name) --help does not") }
        }
    }
}

/// Shell completion: file arguments complete files, model arguments model names, --dtype its values.
@Suite(.enabled(if: ZooBinary.path != nil, "the zoo binary is not built"))
struct CompletionTests {
    @Test func scriptsAndCustomCompletions() throws {
        let scratch = try Scratch()
        for shell in ["bash", "zsh", "fish"] {
            let script = try ZooBinary.run(["--generate-completion-script", shell], home: scratch.path)
            #expect(script.status == 0)
            #expect(script.stdout.contains("float16") && script.stdout.contains("bfloat16"), "\(shell): --dtype values")
            #expect(script.stdout.contains("---completion info"), "\(shell): model names for info")
        }
        let bash = try ZooBinary.run(["--generate-completion-script", "bash"], home: scratch.path).stdout
        let importFunction = bash.components(separatedBy: "_zoo_import()").last!.components(separatedBy: "\n}\n").first!
        #expect(importFunction.contains("__zoo_add_completions -f"))  // zoo import FILE completes file names

        // What the scripts call: `zoo ---completion SUBCOMMAND -- ARGUMENT CWORD CURSOR WORDS...`.
        let models = try ZooBinary.run(["---completion", "info", "--", "positional@0", "2", "4", "zoo", "info", "resn"], home: scratch.path)
        #expect(models.stdout.split(separator: "\n").contains("resnet50.imagenet1k_v2"))
        let prefix = Repo.root + "/demo/digits_res"
        let files = try ZooBinary.run(["---completion", "verify", "--", "positional@0", "2", "\(prefix.count)", "zoo", "verify", prefix], home: scratch.path)
        #expect(files.stdout.split(separator: "\n").contains(Substring(Repo.demoCheckpoint)), "\(files.stdout)")
    }
}

@Suite struct CompletionNameTests {
    @Test func modelAndFileNames() throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        #expect(zoo.modelNames(prefix: "VGG16").contains("vgg16_bn"))
        #expect(!zoo.modelNames(prefix: "vgg").contains { !$0.hasPrefix("vgg") })
        _ = try scratch.write("net.pth", [0])
        try FileManager.default.createDirectory(atPath: scratch.path + "/nested", withIntermediateDirectories: true)
        #expect(Zoo.fileNames(prefix: scratch.path + "/n") == [scratch.path + "/nested/", scratch.path + "/net.pth"])
    }
}

/// The download bar, as tqdm users read it.
@Suite struct ProgressLineTests {
    @Test func barWithEtaAndRate() {
        let mb = 1_048_576
        let half = TransferDelegate.progressLine(name: "r.pth", written: 20 * mb, total: 40 * mb, resumedFrom: 10 * mb, elapsed: 5)
        // 10 MB in 5 s this run: 2.0 MB/s, 20 MB left: 10 s.
        #expect(half == "r.pth  50%|###############...............| 20.0/40.0 MB [00:05<00:10, 2.0 MB/s]")
        let done = TransferDelegate.progressLine(name: "r.pth", written: 40 * mb, total: 40 * mb, resumedFrom: 0, elapsed: 3725)
        #expect(done.contains("100%|##############################| 40.0/40.0 MB [1:02:05<00:00"))
        #expect(TransferDelegate.progressLine(name: "x", written: mb, total: nil, resumedFrom: 0, elapsed: 1) == "x  1.0 MB [00:01, 1.0 MB/s]")
        // The same bar counts classify's images.
        let images = ProgressBar.line("classify", done: 50, total: 200, unit: "images", elapsed: 2, rate: 25, rateText: "25.0 images/s")
        #expect(images == "classify  25%|#######.......................| 50/200 images [00:02<00:06, 25.0 images/s]")
    }
}

/// classify's bar only on a terminal, never with --json or --quiet, never on a pipe.
@Suite(.enabled(if: ZooBinary.path != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs zoo and script(1)"))
struct ClassifyProgressTests {
    @Test func onlyOnATerminalWithoutJSONOrQuiet() throws {
        let scratch = try Scratch()
        let images = Repo.root + "/Tests/Fixtures/images"
        let arguments = ["classify", images, "--model", Repo.demoCheckpoint, "--top", "1"]
        let piped = try ZooBinary.run(arguments, home: scratch.path)
        #expect(piped.status == 0 && !piped.stderr.contains("\r"), "\(piped.stderr)")
        let command = "'\(ZooBinary.path!)' " + arguments.map { "'\($0)'" }.joined(separator: " ")
        let tty = try ZooBinary.run(["-qc", command, "/dev/null"], home: scratch.path, executable: "/usr/bin/script")
        #expect(tty.stdout.contains("\rclassify ") && tty.stdout.contains("images/s"), "\(tty.stdout.debugDescription)")
        for flag in ["--json", "--quiet"] {
            let quiet = try ZooBinary.run(["-qc", command + " " + flag, "/dev/null"], home: scratch.path, executable: "/usr/bin/script")
            #expect(!quiet.stdout.contains("\rclassify"), "\(flag): \(quiet.stdout.debugDescription)")
        }
    }
}

/// Stage lines with elapsed time only on a terminal (script(1) gives the command one), never on a pipe.
@Suite(.enabled(if: ZooBinary.path != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs zoo and script(1)"))
struct StageLineTests {
    @Test func onlyOnATerminal() throws {
        let scratch = try Scratch()
        let piped = try ZooBinary.run(["import", Repo.demoCheckpoint, "--name", "a"], home: scratch.path)
        #expect(piped.status == 0 && !piped.stderr.contains("\r"), "\(piped.stderr)")
        let command = "'\(ZooBinary.path!)' verify a"
        let tty = try ZooBinary.run(["-qc", command, "/dev/null"], home: scratch.path, executable: "/usr/bin/script")
        #expect(tty.stdout.contains("\rverifying a ") && tty.stdout.contains(" s "), "\(tty.stdout.debugDescription)")
        let quiet = try ZooBinary.run(["-qc", command + " --quiet", "/dev/null"], home: scratch.path, executable: "/usr/bin/script")
        #expect(!quiet.stdout.contains("\rverifying"))
    }
}
