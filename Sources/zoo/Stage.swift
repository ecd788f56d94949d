import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A stage line with elapsed time (`importing resnet50: hashing, converting, verifying 3.2 s`),
/// redrawn on stderr while `body` runs, and erased when it ends; only when stderr is a terminal
/// and not --quiet, so that logs and pipes never see it.
func stage<T>(_ label: String, quiet: Bool = false, _ body: () throws -> T) rethrows -> T {
    guard !quiet, isatty(2) != 0 else { return try body() }
    let ticker = StageTicker(label)
    ticker.start()
    defer { ticker.stop() }
    return try body()
}

final class StageTicker: @unchecked Sendable {
    let label: String
    let started = Date()
    let lock = NSLock()
    var running = true
    let finished = DispatchSemaphore(value: 0)

    init(_ label: String) { self.label = label }

    func start() {
        Thread.detachNewThread { [self] in
            while true {
                lock.lock()
                let go = running
                lock.unlock()
                guard go else { break }
                FileHandle.standardError.write(Data(String(format: "\r%@ %.1f s ", label, Date().timeIntervalSince(started)).utf8))
                usleep(200_000)
            }
            finished.signal()
        }
    }

    func stop() {
        lock.lock()
        running = false
        lock.unlock()
        finished.wait()
        FileHandle.standardError.write(Data(("\r" + String(repeating: " ", count: label.count + 12) + "\r").utf8))
    }
}
