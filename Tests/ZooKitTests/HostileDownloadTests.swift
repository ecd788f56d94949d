import Checkpoint
import Foundation
import Testing
@testable import ZooKit
#if canImport(Glibc)
import Glibc
#endif

/// Servers that try to make a download unbounded (SECURITY.md, "Downloads"): each is a real HTTP
/// server on 127.0.0.1 (`HTTPServer.swift`) that misbehaves in one way, and the download must stop
/// within its limits, say why, and leave nothing it refused on disk.
@Suite struct HostileDownloadTests {
    static let payload = DownloadTests.payload  // 300,000 bytes
    static var sha: String { DownloadTests.sha }

    /// A downloader with limits small enough for a test.
    func downloader(maximumSize: Int = 1 << 20, minimumRate: Int = 1_000, grace: TimeInterval = 1, deadline: TimeInterval = 30) -> Downloader {
        var d = Downloader(progress: false)
        d.maximumSize = maximumSize
        d.minimumRate = minimumRate
        d.grace = grace
        d.deadline = deadline
        d.timeout = 10
        return d
    }

    func fetch(_ d: Downloader, _ server: TestHTTPServer, _ path: String, _ scratch: Scratch,
               hash: String? = nil, size: Int? = nil) throws -> Downloader.Result {
        try d.fetch(URL(string: server.base + path)!, to: scratch.path + "/f.bin", partial: scratch.path + "/f.bin.partial",
                    expectedHash: hash, expectedSize: size)
    }

    func size(_ path: String) -> Int {
        var info = stat()
        return lstat(path, &info) == 0 ? Int(info.st_size) : -1
    }

    func withServer(_ body: (TestHTTPServer, Scratch) throws -> Void) throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        try body(server, try Scratch())
    }

    @Test func endlessBodyStopsAtTheCatalogSize() throws {
        try withServer { server, scratch in
            server.behave("/f.bin", .endless(limit: 64 << 20))
            let start = Date()
            let error = #expect(throws: ZooError.self) { try fetch(downloader(), server, "/f.bin", scratch, size: Self.payload.count) }
            #expect(error?.message.contains("sent more than the 300000 bytes expected") == true)
            #expect(size(scratch.path + "/f.bin.partial") <= Self.payload.count)
            #expect(!FileManager.default.fileExists(atPath: scratch.path + "/f.bin"))
            #expect(Date().timeIntervalSince(start) < 20)
            #expect(server.requests.count == 1)  // refused, not retried
        }
    }

    @Test func endlessBodyWithoutAnyStatedSizeStopsAtTheMaximum() throws {
        try withServer { server, scratch in
            server.behave("/f.bin", .endless(limit: 64 << 20))
            let error = #expect(throws: ZooError.self) { try fetch(downloader(maximumSize: 1 << 20), server, "/f.bin", scratch) }
            #expect(error?.message.contains("more than the 1048576 bytes expected") == true)
            #expect(error?.fix?.contains("--max-size") == true)
            #expect(size(scratch.path + "/f.bin.partial") <= 1 << 20)
        }
    }

    @Test func trickleFallsBelowTheMinimumRate() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            server.behave("/f.bin", .trickle(chunk: 1, interval: 0.2))
            let start = Date()
            let error = #expect(throws: ZooError.self) { try fetch(downloader(minimumRate: 1_000, grace: 1), server, "/f.bin", scratch) }
            #expect(error?.message.contains("below the minimum of 1000") == true)
            #expect(Date().timeIntervalSince(start) < 20)
            #expect(server.requests.count == 1)
        }
    }

    @Test func theWholeTransferHasADeadline() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            // 20 kB/s passes the rate check; the file would take 15 s.
            server.behave("/f.bin", .trickle(chunk: 2_000, interval: 0.1))
            let start = Date()
            let error = #expect(throws: ZooError.self) {
                try fetch(downloader(minimumRate: 1, grace: 10, deadline: 3), server, "/f.bin", scratch, hash: Self.sha)
            }
            #expect(error?.message.contains("did not finish within its deadline") == true,
                    "\(String(describing: error)) after \(server.requests.map(\.path))")
            #expect(Date().timeIntervalSince(start) < 20)
            // What arrived is kept for the next pull to resume.
            #expect(size(scratch.path + "/f.bin.partial") > 0)
        }
    }

    @Test func contentLengthThatDisagreesWithTheCatalogIsRefusedBeforeTheBody() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            server.behave("/f.bin", .contentLength(10 * Self.payload.count))
            let error = #expect(throws: ZooError.self) { try fetch(downloader(), server, "/f.bin", scratch, size: Self.payload.count) }
            #expect(error?.message.contains("announces 3000000 bytes; the catalog's file has 300000") == true)
            #expect(size(scratch.path + "/f.bin.partial") == 0)
        }
    }

    @Test func contentLengthAboveTheMaximumIsRefusedBeforeTheBody() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            server.behave("/f.bin", .contentLength(5 << 20))
            let error = #expect(throws: ZooError.self) { try fetch(downloader(maximumSize: 1 << 20), server, "/f.bin", scratch) }
            #expect(error?.message.contains("announces 5242880 bytes, more than the 1048576 allowed") == true)
            #expect(size(scratch.path + "/f.bin.partial") == 0)
        }
    }

    @Test func shortContentLengthFailsTheHash() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            server.behave("/f.bin", .contentLength(1_000))
            let error = #expect(throws: ZooError.self) { try fetch(downloader(), server, "/f.bin", scratch, hash: Self.sha) }
            #expect(error?.kind == .failed)
            #expect(!FileManager.default.fileExists(atPath: scratch.path + "/f.bin"))
        }
    }

    @Test func wrongContentRangeOnResumeIsNeverWritten() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            server.behave("/f.bin", .wrongRange)
            let kept = Array(Self.payload.prefix(100_000))
            _ = try scratch.write("f.bin.partial", kept)
            let error = #expect(throws: ZooError.self) { try fetch(downloader(), server, "/f.bin", scratch, hash: Self.sha) }
            #expect(error?.message.contains("resumed at the wrong place") == true)
            #expect(try Repo.bytes(scratch.path + "/f.bin.partial") == kept)
            #expect(server.requests.count == 1)
        }
    }

    @Test func redirectLoopStopsAfterFive() throws {
        try withServer { server, scratch in
            server.behave("/loop", .redirect(location: "/loop"))
            let error = #expect(throws: ZooError.self) { try fetch(downloader(), server, "/loop", scratch) }
            #expect(error?.message.contains("more than 5 redirects") == true)
            #expect(server.requests.count == 6)
        }
    }

    @Test func redirectsWithinHTTPAreFollowed() throws {
        try withServer { server, scratch in
            server.serve("/f.bin", Self.payload)
            server.behave("/a", .redirect(location: "/b"))
            server.behave("/b", .redirect(location: server.base + "/f.bin"))
            let result = try #require(try? fetch(downloader(), server, "/a", scratch, hash: Self.sha, size: Self.payload.count),
                                      "requests: \(server.requests.map(\.path))")
            #expect(result.sha256 == Self.sha)
        }
    }

    @Test(arguments: ["file:///etc/passwd", "ftp://127.0.0.1/f.bin", "gopher://127.0.0.1/f.bin"])
    func redirectToAnotherSchemeIsRefused(_ location: String) throws {
        try withServer { server, scratch in
            server.behave("/f.bin", .redirect(location: location))
            let error = #expect(throws: ZooError.self) { try fetch(downloader(), server, "/f.bin", scratch) }
            // Foundation turns a `file:` location into a path on the same server (which 404s here);
            // other schemes reach the redirect check. Either way no local file is read.
            let asPath = server.requests.map(\.path).contains("/etc/passwd")
            #expect(error?.message.contains("refused a redirect") == true || asPath)
            #expect(size(scratch.path + "/f.bin.partial") <= 0)
        }
    }

    @Test func redirectRules() {
        let https = URL(string: "https://example.org/a"), http = URL(string: "http://example.org/a")
        #expect(Downloader.allowsRedirect(from: http, to: https))
        #expect(Downloader.allowsRedirect(from: https, to: https))
        #expect(Downloader.allowsRedirect(from: http, to: http))
        #expect(!Downloader.allowsRedirect(from: https, to: http))
        #expect(!Downloader.allowsRedirect(from: http, to: URL(string: "file:///etc/passwd")))
        #expect(!Downloader.allowsRedirect(from: http, to: nil))
    }

    @Test func onlyHTTPURLsAreFetched() throws {
        let scratch = try Scratch()
        let error = #expect(throws: ZooError.self) {
            try downloader().fetch(URL(string: "file:///etc/passwd")!, to: scratch.path + "/f", partial: scratch.path + "/f.partial", expectedHash: nil)
        }
        #expect(error?.kind == .usage)
    }

    @Test func limitsComeFromTheEnvironment() throws {
        let d = try Downloader(progress: false, environment: ["ZOO_DOWNLOAD_DEADLINE": "60", "ZOO_DOWNLOAD_MIN_RATE": "5", "ZOO_MAX_DOWNLOAD": "1000"])
        #expect(d.deadline == 60 && d.minimumRate == 5 && d.maximumSize == 1000)
        #expect(throws: ZooError.self) { try Downloader(progress: false, environment: ["ZOO_MAX_DOWNLOAD": "-1"]) }
    }
}

/// Links planted in the cache are replaced, never written through (SECURITY.md, "The cache").
@Suite struct CacheLinkTests {
    @Test func partialDownloadLinkIsNotFollowed() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let scratch = try Scratch()
        let victim = try scratch.write("victim", Array("precious".utf8))
        server.serve("/f.bin", DownloadTests.payload)
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/f.bin.partial", withDestinationPath: victim)
        let result = try Downloader(progress: false).fetch(URL(string: server.base + "/f.bin")!, to: scratch.path + "/f.bin",
                                                             partial: scratch.path + "/f.bin.partial", expectedHash: DownloadTests.sha)
        #expect(result.sha256 == DownloadTests.sha)
        #expect(try Repo.bytes(victim) == Array("precious".utf8))
        #expect(server.requests.map(\.range) == [nil])  // the link's target was not resumed from
    }

    @Test func completedDownloadLinkIsReplaced() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let scratch = try Scratch()
        // A link to a file with the right bytes must not become the download: its target can change later.
        let elsewhere = try scratch.write("elsewhere", DownloadTests.payload)
        server.serve("/f.bin", DownloadTests.payload)
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/f.bin", withDestinationPath: elsewhere)
        _ = try Downloader(progress: false).fetch(URL(string: server.base + "/f.bin")!, to: scratch.path + "/f.bin",
                                                  partial: scratch.path + "/f.bin.partial", expectedHash: DownloadTests.sha)
        #expect(Cache.fileType(scratch.path + "/f.bin") == S_IFREG)
        #expect(server.requests.count == 1)
    }

    @Test func lockLinkIsNotFollowed() throws {
        let scratch = try Scratch()
        let cache = try Cache(root: scratch.path + "/cache")
        let victim = try scratch.write("victim", Array("precious".utf8))
        try FileManager.default.createSymbolicLink(atPath: cache.root + "/locks/model.x.lock", withDestinationPath: victim)
        try cache.withLock(Cache.modelLock("x")) {}
        #expect(Cache.fileType(cache.root + "/locks/model.x.lock") == S_IFREG)
        #expect(try Repo.bytes(victim) == Array("precious".utf8))
    }
}
