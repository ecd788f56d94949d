import Foundation

/// Every way a checkpoint can be refused. Each case names the file and says what was
/// expected and what was found, so that a message alone is enough to act on.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    /// The broad class of a failure, for callers that treat them differently (a refused file
    /// versus an unreadable one).
    public enum Kind: String, Sendable, Codable {
        /// The file references a symbol that only a malicious file would (os.system, eval, ...).
        case security
        /// Bytes that break the format's own rules: truncation, bad lengths, bad opcodes.
        case corrupt
        /// A well-formed file of a kind zoo does not read (quantized tensors, a preview format, ...).
        case unsupported
        /// The file could not be opened or read at all.
        case io
    }

    /// Which class of failure this is.
    public var kind: Kind
    /// The file the error is about (may be empty for in-memory data).
    public var path: String
    /// Where in the file, or in which record, the problem was found: "data.pkl byte 1234", "key conv1.weight".
    public var location: String?
    /// What was expected and what was found, and what to do when there is something to do.
    public var message: String

    /// An error of `kind` about the file at `path`.
    ///
    /// - Parameters:
    ///   - kind: The class of failure.
    ///   - path: The file the error is about (empty for in-memory data; `with(path:)` fills it in later).
    ///   - location: Where in the file: a record and byte offset, or a key; nil when it is the whole file.
    ///   - message: What was expected and what was found.
    public init(_ kind: Kind, path: String, at location: String? = nil, _ message: String) {
        self.kind = kind
        self.path = path
        self.location = location
        self.message = message
    }

    public var description: String {
        var text = path.isEmpty ? "" : "\(path): "
        if let location { text += "\(location): " }
        return text + message
    }

    /// The same error, re-attributed to `path` when it was raised without one.
    func with(path newPath: String) -> CheckpointError {
        var copy = self
        if copy.path.isEmpty { copy.path = newPath }
        return copy
    }
}

extension CheckpointError: LocalizedError {
    /// The file, the place in it and the message, so that `error.localizedDescription` says all three.
    public var errorDescription: String? { description }
}
