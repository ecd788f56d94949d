import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct CacheInfo: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cache", abstract: "Where the cache is and how big.",
            discussion: """
                Originals that zoo pull found in PyTorch's cache ($TORCH_HOME/hub/checkpoints), or that zoo import took from it, are hard links to \
                PyTorch's files when both caches are on one file system (copies otherwise). "Shared with PyTorch" \
                counts the bytes of cached originals that are the same file (device and inode) as one in PyTorch's \
                cache: they are counted in the cache's size but take no space beyond PyTorch's copy, and removing \
                them frees nothing while PyTorch keeps its file.
                """)
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        struct Report: Encodable {
            var location: String
            var bytes: Int
            var models: Int
            var torchCache: String
            /// Bytes of cached originals that are PyTorch's files too (hard links).
            var sharedWithTorchBytes: Int
            var cached: [Zoo.ListRow]
            enum CodingKeys: String, CodingKey {
                case location, bytes, models, cached
                case torchCache = "torch_cache"
                case sharedWithTorchBytes = "shared_with_torch_bytes"
            }
        }

        func run() throws {
            let zoo = try zoo.zoo()
            let report = Report(location: zoo.cache.root, bytes: zoo.cache.totalBytes(), models: try zoo.cache.index().models.count,
                                torchCache: Cache.torchCheckpoints(zoo.environment), sharedWithTorchBytes: try zoo.bytesSharedWithTorch(),
                                cached: try zoo.list().filter(\.cached))
            try options.emit(report) { r in
                "\(r.location): \(r.models) models, \(String(format: "%.1f", Double(r.bytes) / 1_048_576)) MB\n"
                    + r.cached.map { "  \($0.name.padding(40))  \(sizes(original: $0.originalBytes, native: $0.nativeBytes ?? 0, total: $0.cachedBytes ?? 0))\n" }.joined()
                    + "PyTorch's cache (reused): \(r.torchCache); shared with PyTorch (hard links): \(String(format: "%.1f", Double(r.sharedWithTorchBytes) / 1_048_576)) MB\n"
            }
        }
    }
}
