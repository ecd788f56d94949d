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
            enum CodingKeys: String, CodingKey { case location, bytes, models, torchCache = "torch_cache" }
        }

        func run() throws {
            let zoo = try zoo.zoo()
            let report = Report(location: zoo.cache.root, bytes: zoo.cache.totalBytes(), models: try zoo.cache.index().models.count,
                                torchCache: Cache.torchCheckpoints())
            try options.emit(report) {
                "\($0.location): \($0.models) models, \(String(format: "%.1f", Double($0.bytes) / 1_048_576)) MB\nPyTorch's cache (reused): \($0.torchCache)\n"
            }
        }
    }
}
