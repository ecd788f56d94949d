import Foundation
import Testing
@testable import ZooKit

/// `try await Zoo.pretrained(name, progress:)`: progress reports, cancellation that keeps the
/// partial download, and the resume that follows.
@Suite struct AsyncTests {
    final class Seen: @unchecked Sendable {
        private let lock = NSLock()
        private var reports: [DownloadProgress] = []
        func add(_ p: DownloadProgress) { lock.withLock { reports.append(p) } }
        var last: DownloadProgress? { lock.withLock { reports.last } }
    }

    @Test func cancelledPullKeepsItsPartialFileAndTheNextPullResumes() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let scratch = try Scratch()
        let path = "/models/digits-d40edd31.pth"
        server.serve(path, ZooTests.demoBytes)
        server.behave(path, .trickle(chunk: 4_096, interval: 0.05))  // ~80 kB/s: the demo file takes seconds
        let zoo = try makeZoo(scratch, extra: try ZooTests().catalog(server.base, scratch))
        let seen = Seen()
        let task = Task { try await zoo.pretrained("served") { seen.add($0) } }
        while (seen.last?.bytes ?? 0) < 20_000 { try await Task.sleep(for: .milliseconds(20)) }
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
        let partial = zoo.cache.downloads + "/digits-d40edd31.pth.partial"
        let kept = (try FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0
        #expect(kept >= 20_000 && kept < ZooTests.demoBytes.count)
        #expect(seen.last?.total == ZooTests.demoBytes.count)

        server.behave(path, nil)
        let model = try await zoo.pretrained("served")
        #expect(try model.forward(Synthetic.input([1, 3, 16, 16])).shape == [1, 10])
        #expect(server.requests.last?.range == "bytes=\(kept)-")
    }

    @Test func aCancelledTaskNeverStarts() async throws {
        let scratch = try Scratch()
        let zoo = try makeZoo(scratch)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await zoo.pretrained("resnet18")
        }
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}
