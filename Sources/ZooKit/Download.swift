import Checkpoint
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// HTTP(S) downloads into `downloads/<file>.partial`, resumed with a Range request when a
/// previous attempt left a partial file or the connection drops, checked against the expected
/// SHA-256 (or prefix), then renamed to the destination. A destination already there with the
/// expected hash is used as it is. One process at a time per file: callers hold a lock
/// (`Cache.downloadLock`), as `Zoo.pull` does.
public struct Downloader: Sendable {
    /// Print a progress bar on stderr (only when stderr is a terminal).
    public var progress: Bool
    /// Attempts per download, each resuming where the last stopped.
    public var attempts = 3
    public var timeout: TimeInterval = 60
    /// Never touch the network (`ZOO_OFFLINE=1`).
    public var offline = false

    public init(progress: Bool = true) { self.progress = progress }

    /// What a download did.
    public struct Result: Sendable {
        public var sha256: String
        public var bytes: Int
        /// Bytes that were already present and resumed from.
        public var resumedFrom: Int
        public var requests: Int
    }

    /// Fetches `url` to `destination` through `partial`.
    /// - Parameter expectedHash: a full SHA-256 or a prefix; a mismatch deletes the download.
    public func fetch(_ url: URL, to destination: String, partial: String, expectedHash: String?) throws -> Result {
        if offline {
            throw ZooError(.network, "offline (ZOO_OFFLINE=1): not downloading \(url.absoluteString)",
                           fix: "unset ZOO_OFFLINE, or put the file in the cache with zoo import FILE")
        }
        // A complete download an earlier pull left here (it was stopped before moving it on).
        if FileManager.default.fileExists(atPath: destination) {
            if let expected = expectedHash?.lowercased(), expected.count >= 8,
               let sha = try? SHA256.file(destination), sha.hasPrefix(expected) {
                let size = fileSize(destination)
                return Result(sha256: sha, bytes: size, resumedFrom: size, requests: 0)
            }
            unlink(destination)
        }
        let resumedFrom = fileSize(partial)
        var requests = 0
        var lastError: Error?
        for _ in 0 ..< attempts {
            requests += 1
            do {
                try transfer(url, to: partial)
                lastError = nil
                break
            } catch let error as ZooError where error.kind != .network {
                throw error
            } catch {
                lastError = error  // a dropped connection: resume from what arrived
            }
        }
        if let lastError { throw lastError }
        if progress && isatty(2) != 0 { FileHandle.standardError.write(Data("\n".utf8)) }

        let sha = try SHA256.file(partial)
        if let expected = expectedHash?.lowercased(), !sha.hasPrefix(expected) {
            unlink(partial)
            throw ZooError(.failed, "\(url.absoluteString) served a file whose SHA-256 is \(sha), not the expected \(expected)...; deleted it",
                           fix: "the server (or mirror) holds other bytes under this name; check ZOO_MIRROR or --url")
        }
        guard rename(partial, destination) == 0 else {
            throw ZooError(.io, "cannot move the download to \(destination): \(String(cString: strerror(errno)))")
        }
        return Result(sha256: sha, bytes: fileSize(destination), resumedFrom: resumedFrom, requests: requests)
    }

    private func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    /// One request, appending to `partial` (Range from its current size).
    private func transfer(_ url: URL, to partial: String) throws {
        if !FileManager.default.fileExists(atPath: partial) {
            guard FileManager.default.createFile(atPath: partial, contents: nil) else {
                throw ZooError(.io, "cannot create \(partial): \(String(cString: strerror(errno)))")
            }
        }
        guard let handle = FileHandle(forUpdatingAtPath: partial) else {
            throw ZooError(.io, "cannot open \(partial): \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        let existing = Int(try handle.seekToEnd())
        var request = URLRequest(url: url, timeoutInterval: timeout)
        if existing > 0 { request.setValue("bytes=\(existing)-", forHTTPHeaderField: "Range") }
        let delegate = TransferDelegate(handle: handle, existing: existing, url: url,
                                        showProgress: progress && isatty(2) != 0, name: url.lastPathComponent)
        let session = URLSession(configuration: .ephemeral, delegate: delegate, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: request).resume()
        delegate.done.wait()
        try delegate.result()
    }
}

/// Receives one response and appends its body to the partial file.
final class TransferDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let handle: FileHandle
    let url: URL
    let showProgress: Bool
    let name: String
    let done = DispatchSemaphore(value: 0)
    private var written: Int
    private var total: Int?
    private var failure: Error?
    private var status = 0
    private var lastDraw = Date.distantPast
    private let started = Date()
    private let startBytes: Int

    init(handle: FileHandle, existing: Int, url: URL, showProgress: Bool, name: String) {
        self.handle = handle
        self.written = existing
        self.startBytes = existing
        self.url = url
        self.showProgress = showProgress
        self.name = name
    }

    func result() throws {
        if let failure { throw failure }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let http = response as? HTTPURLResponse
        status = http?.statusCode ?? 0
        switch status {
        case 200:
            // A full body: the server ignored or did not get a Range; start over.
            handle.truncateFile(atOffset: 0)
            written = 0
            total = response.expectedContentLength >= 0 ? Int(response.expectedContentLength) : nil
            completionHandler(.allow)
        case 206:
            let range = http?.value(forHTTPHeaderField: "Content-Range") ?? ""
            // "bytes START-END/TOTAL": only a continuation of what we have may be appended.
            let numbers = range.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            guard numbers.first == written else {
                failure = ZooError(.network, "\(url.absoluteString) resumed at the wrong place (\(range), have \(written) bytes)")
                handle.truncateFile(atOffset: 0)
                completionHandler(.cancel)
                return
            }
            total = numbers.count >= 3 ? numbers[2] : nil
            completionHandler(.allow)
        case 416:
            // Nothing left to send: the partial file is already complete (the hash decides).
            completionHandler(.cancel)
        default:
            failure = ZooError(.failed, "\(url.absoluteString): HTTP \(status)"
                + (status == 404 ? " (not found)" : ""), fix: status == 404 ? "check the URL, or ZOO_MIRROR" : nil)
            completionHandler(.cancel)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        do {
            try handle.write(contentsOf: data)
            written += data.count
        } catch {
            failure = ZooError(.io, "cannot write the download: \(error.localizedDescription)")
            dataTask.cancel()
        }
        drawProgress()
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if failure == nil, let error, status != 416 {
            failure = ZooError(.network, "\(url.absoluteString): \(error.localizedDescription) after \(written) bytes")
        }
        if failure == nil, let total, written < total, status != 416 {
            failure = ZooError(.network, "\(url.absoluteString): the connection closed after \(written) of \(total) bytes")
        }
        done.signal()
    }

    private func drawProgress() {
        guard showProgress, Date().timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = Date()
        let mb = Double(written) / 1_048_576
        let rate = Double(written - startBytes) / 1_048_576 / max(Date().timeIntervalSince(started), 0.001)
        var line = String(format: "\r%@  %.1f MB", name, mb)
        if let total, total > 0 {
            let fraction = Double(written) / Double(total)
            let bar = String(repeating: "#", count: Int(fraction * 30)) + String(repeating: ".", count: 30 - Int(fraction * 30))
            line = String(format: "\r%@ [%@] %3.0f%% %.1f/%.1f MB", name, bar, fraction * 100, mb, Double(total) / 1_048_576)
        }
        FileHandle.standardError.write(Data((line + String(format: " %.1f MB/s  ", rate)).utf8))
    }
}
