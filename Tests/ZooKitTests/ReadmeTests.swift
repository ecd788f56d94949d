import Foundation
import Testing

/// The README's Swift snippet is the one `scripts/check-consumer` compiles in a package that
/// depends on zoo by version, and the one the DocC articles show.
@Suite struct ReadmeTests {
    /// The first ```swift block after `heading` in the Markdown file at `path`.
    func snippet(_ path: String, after heading: String) throws -> String {
        let text = try String(contentsOfFile: Repo.root + "/" + path, encoding: .utf8)
        let section = try #require(text.range(of: heading), "\(path) has no \(heading)")
        let start = try #require(text.range(of: "```swift\n", range: section.upperBound ..< text.endIndex))
        let end = try #require(text.range(of: "```\n", range: start.upperBound ..< text.endIndex))
        return String(text[start.upperBound ..< end.lowerBound])
    }

    @Test func theSnippetIsTheOneThatIsCompiled() throws {
        let compiled = try String(contentsOfFile: Repo.root + "/Examples/Consumer/Sources/Snippet/main.swift", encoding: .utf8)
        #expect(try snippet("README.md", after: "## From Swift") == compiled)
        #expect(try snippet("Sources/ZooKit/ZooKit.docc/GettingStarted.md", after: "## Load a model") == compiled)
        #expect(try snippet("Sources/ZooKit/ZooKit.docc/ZooKit.md", after: "## Overview") == compiled)
    }
}
