import Checkpoint
import Foundation
import ZooKit

/// One line on stderr when a checkpoint names symbols outside torch's weights-only allow-list:
/// zoo never imports them, but the original file would under `torch.load(weights_only=False)`.
func warnForeignSymbols(_ checkpoint: CheckpointFile) {
    let foreign = checkpoint.foreignSymbols
    guard !foreign.isEmpty else { return }
    let names = foreign.prefix(3).map { String($0.name.prefix(80)) }.joined(separator: ", ") + (foreign.count > 3 ? ", ..." : "")
    FileHandle.standardError.write(Data(("zoo: warning: \(checkpoint.path) names \(foreign.count) foreign symbol\(foreign.count == 1 ? "" : "s") "
        + "(\(names)): inert in zoo, but torch.load(weights_only=False) of this file would import them (zoo inspect lists them)\n").utf8))
}

/// The same line for a cached model, from the foreign symbols its index entry records.
func warnForeignSymbols(_ entry: CacheEntry) {
    guard let foreign = entry.foreignSymbols, !foreign.isEmpty else { return }
    let names = foreign.prefix(3).map { String($0.prefix(80)) }.joined(separator: ", ") + (foreign.count > 3 ? ", ..." : "")
    FileHandle.standardError.write(Data(("zoo: warning: \(entry.name)'s original names \(foreign.count) foreign symbol\(foreign.count == 1 ? "" : "s") "
        + "(\(names)): inert in zoo, but torch.load(weights_only=False) of it would import them\n").utf8))
}
