import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real HTTP/1.1 server on 127.0.0.1 for download tests: GET with Range, 404, a connection
/// dropped part-way to test resuming, and hostile behaviours (`Behaviour`). One connection at a
/// time, `Connection: close`.
final class TestHTTPServer: @unchecked Sendable {
    struct Request {
        var path: String
        var range: String?
    }

    /// What a hostile server does instead of serving a file.
    enum Behaviour {
        /// 200 without a length, then bytes until the client hangs up (at most `limit`).
        case endless(limit: Int)
        /// The file, announced with its true length, one `chunk` every `interval` seconds.
        case trickle(chunk: Int, interval: TimeInterval)
        /// The file's bytes under a `Content-Length` of `length`.
        case contentLength(Int)
        /// A Range request answered with 206 and a Content-Range that starts at 0.
        case wrongRange
        /// `302 Found` to `location`.
        case redirect(location: String)
    }

    private let listener: Int32
    let port: UInt16
    private let lock = NSLock()
    private var files: [String: [UInt8]] = [:]
    private var drops: [String: Int] = [:]
    private var behaviours: [String: Behaviour] = [:]
    private var log: [Request] = []
    private let stopped = DispatchSemaphore(value: 0)

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EIO) }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            _ = $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread { [self] in serve() }
    }

    var base: String { "http://127.0.0.1:\(port)" }

    func serve(_ path: String, _ bytes: [UInt8]) { lock.withLock { files[path] = bytes } }

    /// The next request for `path` sends `bytes` of the body, then closes the connection.
    func dropNext(_ path: String, after bytes: Int) { lock.withLock { drops[path] = bytes } }

    func behave(_ path: String, _ behaviour: Behaviour?) { lock.withLock { behaviours[path] = behaviour } }

    var requests: [Request] { lock.withLock { log } }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        stopped.wait()
    }

    private func serve() {
        defer { stopped.signal() }
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            respond(connection)
            close(connection)
        }
    }

    private func respond(_ fd: Int32) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.ends(with: Array("\r\n\r\n".utf8)) && request.count < 65536 {
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { return }
            request += buffer[0 ..< n]
        }
        let lines = String(decoding: request, as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count >= 2 else { return }
        let path = String(parts[1])
        let range = lines.first { $0.lowercased().hasPrefix("range:") }.map { String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces) }
        let (body, drop, behaviour) = lock.withLock { () -> ([UInt8]?, Int?, Behaviour?) in
            log.append(Request(path: path, range: range))
            let drop = drops.removeValue(forKey: path)
            return (files[path], drop, behaviours[path])
        }
        if let behaviour, misbehave(fd, behaviour, body: body ?? [], range: range) { return }
        guard let body else {
            send(fd, Array("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found".utf8))
            return
        }
        var start = 0
        var status = "200 OK"
        var extra = ""
        if let range, range.hasPrefix("bytes="), let from = Int(range.dropFirst(6).prefix { $0.isNumber }) {
            guard from < body.count else {
                send(fd, Array("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */\(body.count)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
                return
            }
            start = from
            status = "206 Partial Content"
            extra = "Content-Range: bytes \(from)-\(body.count - 1)/\(body.count)\r\n"
        }
        let content = Array(body[start...])
        send(fd, Array("HTTP/1.1 \(status)\r\nContent-Length: \(content.count)\r\n\(extra)Connection: close\r\n\r\n".utf8))
        send(fd, drop.map { Array(content.prefix($0)) } ?? content)
    }

    /// Acts out `behaviour`; false when it does not apply to this request (serve normally).
    private func misbehave(_ fd: Int32, _ behaviour: Behaviour, body: [UInt8], range: String?) -> Bool {
        switch behaviour {
        case .endless(let limit):
            guard send(fd, Array("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".utf8)) else { return true }
            let block = [UInt8](repeating: 0x5a, count: 1 << 16)
            var sent = 0
            while sent < limit, send(fd, block) { sent += block.count }
        case .trickle(let chunk, let interval):
            guard send(fd, Array("HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)) else { return true }
            var at = 0
            while at < body.count, send(fd, Array(body[at ..< min(body.count, at + chunk)])) {
                at += chunk
                Thread.sleep(forTimeInterval: interval)
            }
        case .contentLength(let length):
            _ = send(fd, Array("HTTP/1.1 200 OK\r\nContent-Length: \(length)\r\nConnection: close\r\n\r\n".utf8) + body)
        case .wrongRange:
            guard range != nil else { return false }
            _ = send(fd, Array("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-\(body.count - 1)/\(body.count)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body)
        case .redirect(let location):
            _ = send(fd, Array("HTTP/1.1 302 Found\r\nLocation: \(location)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
        }
        return true
    }

    /// Writes all of `bytes`; false once the client has gone (no SIGPIPE: MSG_NOSIGNAL).
    @discardableResult
    private func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
