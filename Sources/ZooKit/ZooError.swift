import Foundation

/// Every way a zoo operation can fail, with what to do about it when there is something to do.
public struct ZooError: Error, CustomStringConvertible, Sendable {
    /// The class of a failure, which decides the CLI's exit status.
    public enum Kind: String, Sendable, Codable {
        /// A name, option or file the user gave that zoo cannot use (exit 2).
        case usage
        /// A check that failed: a hash, a structure, a forward pass (exit 1).
        case failed
        /// The network or a server (exit 1).
        case network
        /// The cache or the file system (exit 1).
        case io
    }

    /// Which class of failure this is.
    public var kind: Kind
    /// What went wrong, in one sentence.
    public var message: String
    /// What to do, when something can be done.
    public var fix: String?
    /// The file the error is about, when there is one.
    public var file: String?

    /// An error of `kind`.
    ///
    /// - Parameters:
    ///   - kind: The class of failure.
    ///   - message: What went wrong.
    ///   - fix: What to do about it, when something can be done.
    ///   - file: The file the error is about, when there is one.
    public init(_ kind: Kind, _ message: String, fix: String? = nil, file: String? = nil) {
        self.kind = kind
        self.message = message
        self.fix = fix
        self.file = file
    }

    public var description: String { fix.map { "\(message)\n  fix: \($0)" } ?? message }
}

extension ZooError: LocalizedError {
    /// The message and the fix, so that `error.localizedDescription` says both.
    public var errorDescription: String? { description }
    public var failureReason: String? { message }
    public var recoverySuggestion: String? { fix }
}
