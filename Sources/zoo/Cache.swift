import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct CacheInfo: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cache", abstract: "Where the cache is and how big.")
        @OptionGroup var zoo: ZooOptions
        @OptionGroup var options: OutputOptions

        struct Report: Encodable {
            var location: String
            var bytes: Int
            var models: Int
            var torchCache: String
            var cached: [Zoo.ListRow]
            enum CodingKeys: String, CodingKey { case location, bytes, models, cached, torchCache = "torch_cache" }
        }

        func run() throws {
            let zoo = try zoo.zoo()
            let report = Report(location: zoo.cache.root, bytes: zoo.cache.totalBytes(), models: try zoo.cache.index().models.count,
                                torchCache: Cache.torchCheckpoints(), cached: try zoo.list().filter(\.cached))
            try options.emit(report) { r in
                "\(r.location): \(r.models) models, \(String(format: "%.1f", Double(r.bytes) / 1_048_576)) MB\n"
                    + r.cached.map { "  \($0.name.padding(40))  \(sizes(original: $0.originalBytes ?? 0, native: $0.nativeBytes ?? 0, total: $0.cachedBytes ?? 0))\n" }.joined()
                    + "PyTorch's cache (reused): \(r.torchCache)\n"
            }
        }
    }
}
