import Foundation

/// Every way putting weights into a network, or data through it, can fail.
public enum ModelError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A state-dict key whose shape differs from the network's.
    public struct Mismatch: Sendable, Equatable {
        /// The dotted state-dict key (`layer1.0.conv1.weight`).
        public var key: String
        /// The shape the network has for the key.
        public var expected: [Int]
        /// The shape the source has for it.
        public var found: [Int]
    }

    /// The state dict does not fit the architecture: each list names dotted keys.
    case stateDictMismatch(architecture: String, missing: [String], unexpected: [String], mismatched: [Mismatch])
    /// An input the network cannot take (rank, channels, size).
    case badInput(String)
    /// An architecture name zoo does not know.
    case unknownArchitecture(String, known: [String])
    /// Detection found no architecture, or several, for a state dict; each candidate says why it failed.
    case undetectedArchitecture(String)

    public var description: String {
        switch self {
        case .stateDictMismatch(let arch, let missing, let unexpected, let mismatched):
            var lines = ["the state dict does not fit \(arch):"]
            func list(_ title: String, _ keys: [String]) {
                guard !keys.isEmpty else { return }
                let shown = keys.prefix(8).joined(separator: ", ")
                lines.append("  \(title) (\(keys.count)): \(shown)\(keys.count > 8 ? ", ..." : "")")
            }
            list("missing keys", missing)
            list("unexpected keys", unexpected)
            for m in mismatched.prefix(8) {
                lines.append("  shape mismatch for \(m.key): the network expects \(m.expected), the file has \(m.found)")
            }
            if mismatched.count > 8 { lines.append("  ... and \(mismatched.count - 8) more shape mismatches") }
            return lines.joined(separator: "\n")
        case .badInput(let message):
            return "bad input: \(message)"
        case .unknownArchitecture(let name, let known):
            return "unknown architecture '\(name)'; known: \(known.joined(separator: ", "))"
        case .undetectedArchitecture(let message):
            return message
        }
    }
}

extension ModelError: LocalizedError {
    /// The whole message, so that `error.localizedDescription` says what `description` says.
    public var errorDescription: String? { description }
}
