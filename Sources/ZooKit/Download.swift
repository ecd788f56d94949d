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
///
/// A server cannot make a download run without bound: the body may not pass the expected size
/// (the catalog's, else the server's `Content-Length`, else `maximumSize`), the whole transfer
/// has a deadline and a minimum average rate, redirects are few, http(s) only and never from
/// https down to http, and a body the checks refuse is never written.
public struct Downloader: Sendable {
    /// Print a progress bar on stderr (only when stderr is a terminal).
    public var progress: Bool
    /// Attempts per download, each resuming where the last stopped.
    public var attempts = 3
    /// The longest wait for the connection or for the next bytes of a body.
    public var timeout: TimeInterval = 60
    /// The whole download, every attempt included, ends within this many seconds
    /// (`ZOO_DOWNLOAD_DEADLINE`; 6 hours: 550 MB at 25 kB/s).
    public var deadline: TimeInterval = 6 * 3600
    /// Below this average rate, in bytes per second over a request's first `grace` seconds and
    /// onwards, the request is given up (`ZOO_DOWNLOAD_MIN_RATE`; 10 kB/s, far below a slow home link).
    public var minimumRate = 10_000
    /// Seconds of a request before its average rate is held to `minimumRate`.
    public var grace: TimeInterval = 30
    /// The largest body accepted when neither the catalog nor the server states the size
    /// (`ZOO_MAX_DOWNLOAD`, `zoo pull --max-size`; 4 GiB).
    public var maximumSize = 4 << 30
    /// Redirects followed per request.
    public static let maximumRedirects = 5
    /// Never touch the network (`ZOO_OFFLINE=1`).
    public var offline = false
    /// Called with the bytes so far as a download proceeds (at most ten times a second), on a
    /// background thread.
    public var onProgress: (@Sendable (DownloadProgress) -> Void)?
    /// Set to stop a download: it ends with `CancellationError`, keeping its partial file for
    /// the next attempt to resume.
    public var cancellation: CancellationFlag?

    /// A downloader with the default limits, ignoring the environment.
    public init(progress: Bool = true) { self.progress = progress }

    /// The limits set in `environment` (`ZOO_DOWNLOAD_DEADLINE` and `ZOO_DOWNLOAD_MIN_RATE` in
    /// seconds and bytes per second, `ZOO_MAX_DOWNLOAD` in bytes), else the defaults.
    public init(progress: Bool = true, environment: [String: String]) throws {
        self.init(progress: progress)
        offline = environment["ZOO_OFFLINE"] == "1"
        func number(_ name: String) throws -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text), value > 0 else {
                throw ZooError(.usage, "\(name)=\(text) is not a positive whole number", fix: "unset \(name) or give it a number")
            }
            return value
        }
        if let seconds = try number("ZOO_DOWNLOAD_DEADLINE") { deadline = TimeInterval(seconds) }
        if let rate = try number("ZOO_DOWNLOAD_MIN_RATE") { minimumRate = rate }
        if let bytes = try number("ZOO_MAX_DOWNLOAD") { maximumSize = bytes }
    }

    /// What a download did.
    public struct Result: Sendable {
        /// The SHA-256 of the complete file, 64 lowercase hex digits.
        public var sha256: String
        /// Size of the complete file in bytes.
        public var bytes: Int
        /// Bytes that were already present and resumed from.
        public var resumedFrom: Int
        /// HTTP requests made, retries included; 0 when the file was already complete.
        public var requests: Int
    }

    /// Fetches `url` to `destination` through `partial`.
    /// - Parameters:
    ///   - url: an http or https URL.
    ///   - destination: where the complete, checked file goes.
    ///   - partial: where the bytes go while they arrive (kept for a resume when the download stops).
    ///   - expectedHash: a full SHA-256 or a prefix; a mismatch deletes the download.
    ///   - expectedSize: the file's size when known (the catalog's): a larger body is refused.
    public func fetch(_ url: URL, to destination: String, partial: String, expectedHash: String?,
                      expectedSize: Int? = nil) throws -> Result {
        if offline {
            throw ZooError(.network, "offline (ZOO_OFFLINE=1): not downloading \(url.absoluteString)",
                           fix: "unset ZOO_OFFLINE, or put the file in the cache with zoo import FILE")
        }
        try Self.checkScheme(url)
        // A complete download an earlier pull left here (it was stopped before moving it on).
        // Only a regular file counts: a link planted there is removed, never followed.
        if let kind = Cache.fileType(destination) {
            if kind == S_IFREG, let expected = expectedHash?.lowercased(), expected.count >= 8,
               let sha = try? SHA256Hasher.file(destination), sha.hasPrefix(expected) {
                let size = fileSize(destination)
                return Result(sha256: sha, bytes: size, resumedFrom: size, requests: 0)
            }
            unlink(destination)
        }
        let limit = Limits(size: expectedSize, maximum: maximumSize, minimumRate: minimumRate, grace: grace,
                           deadline: Date().addingTimeInterval(deadline))
        var resumedFrom: Int?
        var requests = 0
        var lastError: Error?
        for _ in 0 ..< attempts {
            requests += 1
            do {
                let existing = try transfer(url, to: partial, limits: limit)
                resumedFrom = resumedFrom ?? existing
                lastError = nil
                break
            } catch TransferError.dropped(let error, let existing) {
                resumedFrom = resumedFrom ?? existing
                lastError = error  // a dropped connection: resume from what arrived
            } catch TransferError.final(let error) {
                throw error
            }
        }
        if let lastError { throw lastError }
        if progress && isatty(2) != 0 { FileHandle.standardError.write(Data("\n".utf8)) }

        let sha = try SHA256Hasher.file(partial)
        if let expected = expectedHash?.lowercased(), !sha.hasPrefix(expected) {
            unlink(partial)
            throw ZooError(.failed, "\(url.absoluteString) served a file whose SHA-256 is \(sha), not the expected \(expected)...; deleted it",
                           fix: "the server (or mirror) holds other bytes under this name; check ZOO_MIRROR or --url")
        }
        guard rename(partial, destination) == 0 else {
            throw ZooError(.io, "cannot move the download to \(destination): \(String(cString: strerror(errno)))")
        }
        return Result(sha256: sha, bytes: fileSize(destination), resumedFrom: resumedFrom ?? 0, requests: requests)
    }

    /// Whether a redirect from `from` to `to` may be followed: http(s) only, never from https to http.
    public static func allowsRedirect(from: URL?, to: URL?) -> Bool {
        guard let scheme = to?.scheme?.lowercased(), scheme == "http" || scheme == "https" else { return false }
        return !(from?.scheme?.lowercased() == "https" && scheme == "http")
    }

    static func checkScheme(_ url: URL) throws {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw ZooError(.usage, "\(url.absoluteString): zoo downloads over http or https only", fix: "give an http(s) URL")
        }
    }

    private func fileSize(_ path: String) -> Int {
        var info = stat()
        return lstat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    /// One request, appending to `partial` (Range from its current size). Returns the size it resumed from.
    private func transfer(_ url: URL, to partial: String, limits: Limits) throws -> Int {
        let handle: FileHandle
        let existing: Int
        do {
            let fd = Cache.openRegularFile(partial)
            guard fd >= 0 else { throw ZooError(.io, "cannot open \(partial): \(String(cString: strerror(errno)))") }
            handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            existing = Int(try handle.seekToEnd())
        } catch {
            throw TransferError.final(error)
        }
        defer { try? handle.close() }
        if cancellation?.isCancelled == true { throw TransferError.final(CancellationError()) }
        guard Date() < limits.deadline else {
            throw TransferError.final(ZooError(.network, "\(url.absoluteString): the download did not finish within its deadline",
                                  fix: "raise ZOO_DOWNLOAD_DEADLINE (seconds); the partial file is kept for the next pull"))
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        if existing > 0 { request.setValue("bytes=\(existing)-", forHTTPHeaderField: "Range") }
        let delegate = TransferDelegate(handle: handle, existing: existing, url: url, limits: limits,
                                        showProgress: progress && isatty(2) != 0, onProgress: onProgress, name: url.lastPathComponent)
        let session = URLSession(configuration: .ephemeral, delegate: delegate, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let task = session.dataTask(with: request)
        task.resume()
        // The watchdog: the deadline and the minimum rate hold even when no byte arrives.
        while delegate.done.wait(timeout: .now() + 0.25) == .timedOut {
            if delegate.checkPace(cancelled: cancellation?.isCancelled == true) { task.cancel() }
        }
        try delegate.result(existing: existing)
        return existing
    }
}

/// How far a download is.
public struct DownloadProgress: Sendable, Equatable {
    /// The file's name.
    public var file: String
    /// Bytes of the file present so far, resumed ones included.
    public var bytes: Int
    /// The file's size, when the server or the catalog states it.
    public var total: Int?
    /// Bytes that were already present when this request started.
    public var resumedFrom: Int
}

/// A flag that stops downloads: `Zoo.pretrained(_:progress:)` sets it when its task is cancelled.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    /// A flag not yet set.
    public init() {}

    /// Whether `cancel()` was called.
    public var isCancelled: Bool { lock.withLock { cancelled } }

    /// Stops the downloads that use this flag, within a quarter of a second.
    public func cancel() { lock.withLock { cancelled = true } }
}

/// What one download may cost.
struct Limits: Sendable {
    /// The expected size of the whole file, when known.
    var size: Int?
    /// The largest file accepted when no size is known.
    var maximum: Int
    var minimumRate: Int
    var grace: TimeInterval
    var deadline: Date
}

/// How a request ended badly: `dropped` is resumed by the next attempt, `final` is not.
enum TransferError: Error {
    case dropped(Error, existing: Int)
    case final(Error)
}

/// Receives one response and appends its body to the partial file, within the limits.
final class TransferDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let handle: FileHandle
    let url: URL
    let limits: Limits
    let showProgress: Bool
    let onProgress: (@Sendable (DownloadProgress) -> Void)?
    let name: String
    let done = DispatchSemaphore(value: 0)
    /// Guards everything below: the delegate queue and the watchdog both touch it.
    private let lock = NSLock()
    private var written: Int
    private var total: Int?
    /// The size this response may bring the file to.
    private var ceiling: Int
    private var failure: Error?
    /// Whether `failure` ends the download (the next attempt would meet the same refusal).
    private var final = false
    private var status = 0
    private var redirects = 0
    private var lastDraw = Date.distantPast
    private let started = Date()
    private let startBytes: Int

    init(handle: FileHandle, existing: Int, url: URL, limits: Limits, showProgress: Bool,
         onProgress: (@Sendable (DownloadProgress) -> Void)?, name: String) {
        self.onProgress = onProgress
        self.handle = handle
        self.written = existing
        self.startBytes = existing
        self.url = url
        self.limits = limits
        self.ceiling = limits.size ?? limits.maximum
        self.showProgress = showProgress
        self.name = name
    }

    func result(existing: Int) throws {
        lock.lock()
        defer { lock.unlock() }
        guard let failure else { return }
        throw final ? TransferError.final(failure) : TransferError.dropped(failure, existing: existing)
    }

    /// Records the first failure; later ones are consequences of it.
    private func fail(_ error: ZooError, final: Bool) {
        if failure == nil {
            failure = error
            self.final = final
        }
    }

    /// The watchdog's check: true when the transfer was cancelled, passed its deadline or fell
    /// below the minimum rate.
    func checkPace(cancelled: Bool) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil else { return false }
        if cancelled {
            failure = CancellationError()
            final = true
            return true
        }
        let now = Date()
        if now >= limits.deadline {
            fail(ZooError(.network, "\(url.absoluteString): the download did not finish within its deadline (\(written) bytes so far)",
                          fix: "raise ZOO_DOWNLOAD_DEADLINE (seconds); the partial file is kept for the next pull"), final: true)
            return true
        }
        let elapsed = now.timeIntervalSince(started)
        let rate = Double(written - startBytes) / elapsed
        if elapsed > limits.grace && rate < Double(limits.minimumRate) {
            fail(ZooError(.network, String(format: "%@: the server sent %.0f bytes/s on average over %.0f s, below the minimum of %d",
                                           url.absoluteString, rate, elapsed, limits.minimumRate),
                          fix: "try again later or from a mirror (ZOO_MIRROR); ZOO_DOWNLOAD_MIN_RATE lowers the minimum"), final: true)
            return true
        }
        return false
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        lock.lock()
        redirects += 1
        let from = response.url ?? task.currentRequest?.url
        let allowed = redirects <= Downloader.maximumRedirects && Downloader.allowsRedirect(from: from, to: request.url)
        if !allowed {
            let reason = redirects > Downloader.maximumRedirects ? "more than \(Downloader.maximumRedirects) redirects"
                : "a redirect from \(from?.absoluteString ?? "?") to \(request.url?.absoluteString ?? "?") (http(s) only, never https to http)"
            fail(ZooError(.network, "\(url.absoluteString): refused \(reason)", fix: "check the URL, or ZOO_MIRROR"), final: true)
        }
        lock.unlock()
        if allowed { completionHandler(request) } else {
            completionHandler(nil)
            task.cancel()
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let http = response as? HTTPURLResponse
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil else {
            completionHandler(.cancel)
            return
        }
        status = http?.statusCode ?? 0
        let length = response.expectedContentLength >= 0 ? Int(response.expectedContentLength) : nil
        switch status {
        case 200:
            // A full body: the server ignored or did not get a Range; start over.
            handle.truncateFile(atOffset: 0)
            written = 0
            total = length
        case 206:
            let range = http?.value(forHTTPHeaderField: "Content-Range") ?? ""
            // "bytes START-END/TOTAL": only a continuation of what we have may be appended.
            let numbers = range.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            guard numbers.count >= 2, numbers[0] == written, numbers[1] >= numbers[0] else {
                // The partial file stays as it was: this body is not written.
                fail(ZooError(.network, "\(url.absoluteString) resumed at the wrong place (Content-Range '\(range)', have \(written) bytes)",
                              fix: "delete the .partial file in the cache's downloads/ folder, or use another mirror"), final: true)
                completionHandler(.cancel)
                return
            }
            total = numbers.count >= 3 ? numbers[2] : length.map { written + $0 }
        case 416:
            // Nothing left to send: the partial file is already complete (the hash decides).
            completionHandler(.cancel)
            return
        default:
            fail(ZooError(.failed, "\(url.absoluteString): HTTP \(status)" + (status == 404 ? " (not found)" : ""),
                          fix: status == 404 ? "check the URL, or ZOO_MIRROR" : nil), final: true)
            completionHandler(.cancel)
            return
        }
        // The size this file may reach: the catalog's, else the server's, else the default maximum.
        if let total {
            if let size = limits.size, total != size {
                fail(ZooError(.failed, "\(url.absoluteString) announces \(total) bytes; the catalog's file has \(size)",
                              fix: "the server holds another file under this name; check ZOO_MIRROR or --url"), final: true)
                completionHandler(.cancel)
                return
            }
            if total > limits.maximum && limits.size == nil {
                fail(ZooError(.failed, "\(url.absoluteString) announces \(total) bytes, more than the \(limits.maximum) allowed",
                              fix: "pass --max-size BYTES (or set ZOO_MAX_DOWNLOAD) if the file is really that large"), final: true)
                completionHandler(.cancel)
                return
            }
            ceiling = total
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        guard failure == nil else {
            lock.unlock()
            return
        }
        // Overflow-safe: both are below Int.max / 2 on any real file system.
        guard data.count <= ceiling - written else {
            fail(ZooError(.failed, "\(url.absoluteString) sent more than the \(ceiling) bytes expected; the excess was not written",
                          fix: limits.size == nil ? "if the file is really larger, pass --max-size BYTES" : "the server holds another file under this name"),
                 final: true)
            lock.unlock()
            dataTask.cancel()
            return
        }
        do {
            try handle.write(contentsOf: data)
            written += data.count
        } catch {
            fail(ZooError(.io, "cannot write the download: \(error.localizedDescription)"), final: true)
            lock.unlock()
            dataTask.cancel()
            return
        }
        lock.unlock()
        drawProgress()
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        if let error, status != 416 {
            fail(ZooError(.network, "\(url.absoluteString): \(error.localizedDescription) after \(written) bytes"), final: false)
        }
        if let total, written < total, status != 416 {
            fail(ZooError(.network, "\(url.absoluteString): the connection closed after \(written) of \(total) bytes"), final: false)
        }
        let complete = error == nil && (total.map { written >= $0 } ?? true)
        lock.unlock()
        if complete { drawProgress(final: true) }  // the bar ends at 100%, whatever the throttle skipped
        done.signal()
    }

    private func drawProgress(final: Bool = false) {
        lock.lock()
        let (written, total) = (self.written, self.total)
        guard showProgress || onProgress != nil, final || Date().timeIntervalSince(lastDraw) > 0.1 else {
            lock.unlock()
            return
        }
        lastDraw = Date()
        lock.unlock()
        onProgress?(DownloadProgress(file: name, bytes: written, total: total, resumedFrom: startBytes))
        guard showProgress else { return }
        let line = Self.progressLine(name: name, written: written, total: total, resumedFrom: startBytes,
                                     elapsed: Date().timeIntervalSince(started))
        FileHandle.standardError.write(Data(("\r" + line + "  ").utf8))
    }

    /// One frame of the download bar (`ProgressBar.line` in MB):
    /// `resnet18-f37072fd.pth  45%|#############.................| 20.1/44.7 MB [00:03<00:04, 6.2 MB/s]`.
    /// The rate and the time left count only this run's bytes (not those resumed from).
    static func progressLine(name: String, written: Int, total: Int?, resumedFrom: Int, elapsed: Double) -> String {
        let rate = Double(written - resumedFrom) / max(elapsed, 0.001)
        return ProgressBar.line(name, done: written, total: total, unit: "MB", elapsed: elapsed, rate: rate,
                                rateText: String(format: "%.1f MB/s", rate / 1_048_576)) { String(format: "%.1f", Double($0) / 1_048_576) }
    }
}

/// A progress bar as tqdm draws it, for `zoo pull`'s download and `zoo classify`'s images:
/// `label  45%|#############.................| 20.1/44.7 MB [00:03<00:04, 6.2 MB/s]`, or without a
/// total `label  20.1 MB [00:03, 6.2 MB/s]`. Callers draw it on stderr only when it is a terminal.
public enum ProgressBar {
    /// - Parameters:
    ///   - label: what is counted, first on the line (a file name, `classify`).
    ///   - done: units done so far.
    ///   - total: all of them, when known.
    ///   - unit: the unit shown after the counts (`MB`, `images`).
    ///   - elapsed: seconds since the start.
    ///   - rate: units per second, for the time left.
    ///   - rateText: the rate as shown (`6.2 MB/s`).
    ///   - amount: how a count is shown (`20.1` for bytes in MB); the count itself by default.
    public static func line(_ label: String, done: Int, total: Int?, unit: String, elapsed: Double, rate: Double, rateText: String,
                            amount: (Int) -> String = { String($0) }) -> String {
        func clock(_ seconds: Double) -> String {
            guard seconds.isFinite, seconds >= 0 else { return "?" }
            let s = Int(seconds.rounded())
            return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
        }
        guard let total, total > 0 else { return "\(label)  \(amount(done)) \(unit) [\(clock(elapsed)), \(rateText)]" }
        let fraction = min(Double(done) / Double(total), 1)
        let filled = Int(fraction * 30)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        let left = rate > 0 ? Double(total - done) / rate : .infinity
        return String(format: "%@ %3.0f%%|%@| %@/%@ %@ [%@<%@, %@]", label, fraction * 100, bar, amount(done), amount(total), unit,
                      clock(elapsed), clock(left), rateText)
    }
}
